"""Fine-tune smoke run: 1 epoch at 64 px on the sample set, exported to ONNX and loaded by pockit's ONNX backend."""
import cv2
import numpy as np
import pytest

from pockit.data import leakage, read_voc, split
from pockit.paths import REPO_ROOT

pytest.importorskip("ultralytics", reason="needs the [ml] extra")

SAMPLES = REPO_ROOT / "datasets" / "samples"


@pytest.mark.ml
@pytest.mark.slow
def test_finetune_smoke_exports_onnx_for_pockit(tmp_path):
    from pockit.inference import load_detector
    from pockit.train import finetune

    ds = split(read_voc(SAMPLES / "voc"), val=0.34, chunk_s=1000)  # cam1 -> one split, cam2 -> the other
    assert leakage(ds, chunk_s=1000) == []
    val_files = sorted(im.file for im in ds if im.split == "val")
    res = finetune(ds, "person-yolov8s-pt", epochs=1, imgsz=64, batch=2, device="cpu", out_dir=tmp_path, name="smoke",
                   class_map={"person": "Normal", "car": None, "bag": None}, progress=False, mosaic=0.0)
    assert res.class_names == ["Normal", "Fall"]
    assert res.best_pt.exists() and res.onnx.exists() and res.base_onnx.exists()
    assert (res.run_dir / "finetune.json").exists() and (res.run_dir / "results.csv").exists()
    assert res.settings["keep_head"] is True and res.settings["amp"] is False and res.settings["plots"] is False
    # both evaluations ran on the held-out images with the same ground truth
    n_val_people = sum(int((im.class_ids == 0).sum()) for im in ds if im.split == "val")
    for rep in (res.before, res.after):
        assert rep.images == len(val_files) and rep.gt_boxes == n_val_people
        assert 0.0 <= rep.map50 <= 1.0 and 0.0 <= rep.map50_95 <= rep.map50 + 1e-9
    df = res.metrics()
    assert list(df["model"].unique()) == ["before", "after"] and set(df.columns) >= {"mAP50", "mAP50-95", "precision", "recall"}
    # the exported weights run in pockit's runtime
    det = load_detector(str(res.onnx), imgsz=64, conf=0.0001)
    assert det.backend == "onnx" and det.class_names == {0: "Normal", 1: "Fall"}
    img = cv2.imread(str(SAMPLES / "images" / "cam1_000050.jpg"))
    out = det.detect([img])[0]
    assert out.xyxy.shape[1] == 4 and np.isfinite(out.xyxy).all() and set(out.class_ids.tolist()) <= {0, 1}


@pytest.mark.ml
def test_finetune_rejects_non_pt_base(tmp_path):
    from pockit.train import finetune

    with pytest.raises(ValueError, match="person-yolov8s-pt"):
        finetune(read_voc(SAMPLES / "voc"), "person-yolov8s", epochs=1, out_dir=tmp_path, progress=False)
