"""A class no model has: teacher pseudo-labels (pockit.data.pseudo) and a head extended with it (pockit.train)."""
import cv2
import numpy as np
import pytest

from pockit.core import Detections
from pockit.data import Dataset, ImageRecord, read_voc, split
from pockit.data.pseudo import crop_region, pseudo_label
from pockit.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "datasets" / "samples"


class FakeDetector:
    """Returns the boxes given per call (a list of (xyxy, class_id, score) lists); records the images it saw."""

    def __init__(self, names, calls):
        self.class_names = dict(enumerate(names))
        self.calls = list(calls)
        self.seen = []

    def detect(self, images):
        out = []
        for img in images:
            self.seen.append(img.shape)
            boxes = self.calls.pop(0)
            out.append(Detections(xyxy=np.array([b for b, _, _ in boxes], np.float32).reshape(-1, 4),
                                  scores=np.array([s for _, _, s in boxes], np.float32),
                                  class_ids=np.array([c for _, c, _ in boxes], np.int32), class_names=self.class_names))
        return out


def _frames(tmp_path, n):
    recs = []
    for i in range(n):
        p = tmp_path / f"f{i}.jpg"
        cv2.imwrite(str(p), np.full((240, 320, 3), 100, np.uint8))
        recs.append(ImageRecord(p.name, p, 320, 240, source="cam", frame=i, timestamp=i / 10))
    return Dataset(recs, [], tmp_path, name="frames")


def test_crop_region_is_the_padded_top_of_the_host_clipped_to_the_frame():
    assert crop_region(np.array([100, 50, 200, 250]), 320, 240) == (80, 34, 220, 130)
    assert crop_region(np.array([0, 0, 100, 200]), 320, 240, top=0.5, pad=0.1) == (0, 0, 110, 100)


def test_pseudo_label_keeps_hosts_and_labels_the_teachers_best_box_in_each_crop(tmp_path):
    ds = _frames(tmp_path, 3)
    person = ([100, 50, 200, 250], 0, 0.9)
    hosts = FakeDetector(["Normal", "Fall", "chair"], [
        [person, ([0, 0, 50, 50], 2, 0.8)],                     # frame 0: a person (+ a chair, not a host class)
        [person, ([101, 52, 199, 250], 1, 0.7)],                # frame 1: the same person twice (Normal and Fall)
        [person],                                               # frame 2
    ])
    teacher = FakeDetector(["With Helmet", "Without Helmet"], [
        [([10, 5, 40, 30], 0, 0.6), ([10, 5, 40, 30], 1, 0.3)],  # frame 0: helmet wins -> labelled
        [([10, 5, 40, 30], 0, 0.6)], [([11, 5, 40, 30], 0, 0.5)],  # frame 1: found from both hosts -> one box
        [([10, 5, 40, 30], 0, 0.3), ([10, 5, 40, 30], 1, 0.5)],  # frame 2: 'Without Helmet' wins -> no label
    ])
    out = pseudo_label(ds, teacher, {"With Helmet": "helmet"}, hosts=hosts, host_classes=["Normal", "Fall"], progress=False)
    assert out.class_names == ["Normal", "Fall", "helmet"]
    assert teacher.seen == [(96, 140, 3), (96, 140, 3), (96, 138, 3), (96, 140, 3)]  # one crop per host, none for the chair
    f0, f1, f2 = out.images
    np.testing.assert_allclose(f0.xyxy, [[100, 50, 200, 250], [90, 39, 120, 64]])
    assert f0.class_ids.tolist() == [0, 2] and f0.scores.tolist() == pytest.approx([0.9, 0.6])
    assert f1.class_ids.tolist() == [0, 1, 2] and f1.scores[2] == pytest.approx(0.6)
    assert f2.class_ids.tolist() == [0] and f2.meta["pseudo"] == ["With Helmet"]
    assert len(ds.images[0].xyxy) == 0  # the input is not modified


def test_pseudo_label_without_hosts_uses_the_whole_frame_and_the_conf(tmp_path):
    ds = _frames(tmp_path, 1)
    teacher = FakeDetector(["With Helmet", "Without Helmet"], [[([1, 2, 30, 40], 0, 0.4), ([50, 50, 80, 90], 0, 0.1)]])
    out = pseudo_label(ds, teacher, {"With Helmet": "helmet"}, conf=0.25, progress=False)
    assert teacher.seen == [(240, 320, 3)] and out.class_names == ["helmet"]
    np.testing.assert_allclose(out.images[0].xyxy, [[1, 2, 30, 40]])


def test_pseudo_label_names_missing_classes(tmp_path):
    ds = _frames(tmp_path, 1)
    teacher = FakeDetector(["With Helmet"], [])
    with pytest.raises(ValueError, match=r"teacher classes \['With Helmet'\] lack \['hat'\]"):
        pseudo_label(ds, teacher, {"hat": "helmet"}, progress=False)
    with pytest.raises(ValueError, match=r"host detector classes \['Normal'\] lack \['person'\]"):
        pseudo_label(ds, teacher, {"With Helmet": "helmet"}, hosts=FakeDetector(["Normal"], []), host_classes=["person"])
    with pytest.raises(ValueError, match=r"new classes \['Normal'\] are already host classes"):
        pseudo_label(ds, teacher, {"With Helmet": "Normal"}, hosts=FakeDetector(["Normal"], []))


@pytest.mark.ml
def test_extend_head_keeps_the_old_classes_outputs(tmp_path):
    pytest.importorskip("ultralytics", reason="needs the [ml] extra")
    import torch

    from pockit.inference import resolve_model
    from pockit.train import _ultralytics, extend_head

    pt = resolve_model("person-yolov8s-pt")
    out = extend_head(pt, ["helmet"], tmp_path / "ext.pt")
    YOLO = _ultralytics()
    old, new = YOLO(str(pt)).model.float().eval(), YOLO(str(out)).model.float().eval()
    assert new.names == {0: "Normal", 1: "Fall", 2: "helmet"} and new.yaml["nc"] == 3
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = old(x)[0], new(x)[0]
    assert a.shape[1] == 6 and b.shape[1] == 7  # 4 box coordinates + 2 classes, + 1 new class
    assert torch.allclose(a, b[:, :6], atol=1e-5)
    assert float(b[:, 6].max()) < 0.05  # the new class starts silent (Ultralytics' prior bias)
    with pytest.raises(ValueError, match="must be distinct and new"):
        extend_head(pt, ["Fall"], tmp_path / "bad.pt")


@pytest.mark.ml
@pytest.mark.slow
def test_finetune_add_classes_extends_the_head_and_scores_the_base_as_zero(tmp_path):
    pytest.importorskip("ultralytics", reason="needs the [ml] extra")
    from pockit.inference import load_detector
    from pockit.train import finetune

    ds = split(read_voc(SAMPLES / "voc"), val=0.34, chunk_s=1000)
    res = finetune(ds, "person-yolov8s-pt", epochs=1, imgsz=64, batch=2, device="cpu", out_dir=tmp_path, name="add",
                   class_map={"person": "Normal"}, add_classes=True, progress=False, mosaic=0.0)
    assert res.class_names == ["Normal", "Fall", "car", "bag"]
    assert res.settings["added_classes"] == ["car", "bag"] and res.settings["keep_head"] is True
    assert (tmp_path / "add" / "base_extended.pt").exists()
    before = {r["class"]: r for r in res.before.per_class}
    n_val_cars = sum(int((im.class_ids == ds.class_id("car")).sum()) for im in ds if im.split == "val")
    assert n_val_cars > 0 and before["car"]["gt"] == n_val_cars
    assert before["car"]["tp"] == 0 and before["car"]["pred"] == 0 and before["car"]["ap50"] == 0
    assert res.after.images == res.before.images
    assert load_detector(str(res.onnx), imgsz=64).class_names == {0: "Normal", 1: "Fall", 2: "car", 3: "bag"}


def test_split_by_seconds_holds_out_whole_seconds(tmp_path):
    from pockit.data.pseudo import split_by_seconds

    ds = _frames(tmp_path, 25)  # timestamps 0.0 .. 2.4 s
    out = split_by_seconds(ds, [1])
    assert [im.frame for im in out if im.split == "val"] == list(range(10, 20))
    assert all(im.split is None for im in ds)  # a copy
    for im in ds.images:
        im.timestamp = None
    assert [im.frame for im in split_by_seconds(ds, [2], fps=10) if im.split == "val"] == list(range(20, 25))
    with pytest.raises(ValueError, match=r"f0.jpg: no timestamp and no frame number"):
        split_by_seconds(ds, [1])
