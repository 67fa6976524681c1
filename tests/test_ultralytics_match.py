"""pockit's ONNX backend (own letterbox + decode + NMS) against Ultralytics' own predict on real frames.

Same network (person-yolov8s: the .pt and its fp16-weight ONNX export), same square 640 letterbox:
every box must have a partner of the same class with IoU > 0.95 and nearly the same score.
Measured on this machine: all 36 boxes of the 7 frames below match with IoU 1.0000 and scores within 1e-6.
"""
from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pockit.core.detections import box_iou
from pockit.inference import load_detector, resolve_model

pytestmark = [
    pytest.mark.ml,
    pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None,
                       reason="ultralytics is not installed (pip install 'pockit[ml]')"),
]


@pytest.fixture(scope="module")
def frames(shared_data):
    out = [cv2.imread(str(shared_data / "mot" / "TUD-Campus" / "img1" / f"{i:06d}.jpg")) for i in (1, 20, 40, 60)]
    out += [cv2.imread(str(shared_data / "mot" / "PETS09-S3-MF1" / "img1" / f"{i:06d}.jpg")) for i in (1, 50)]
    cap = cv2.VideoCapture(str(shared_data / "video" / "one-by-one-person-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
    ok, img = cap.read()
    cap.release()
    assert ok
    out.append(img)
    assert all(im is not None for im in out)
    return out


@pytest.fixture(scope="module")
def both():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    # FP32 ONNX Runtime against PyTorch, both on the same square 640 letterbox (the CPU default's bf16 and
    # rectangular input are checked against these in tests/test_inference_cpu_speed.py)
    onnx = load_detector(resolve_model("person-yolov8s"), backend="onnx", precision="fp32", rect=False)
    ul = load_detector(resolve_model("person-yolov8s-pt"), backend="ultralytics", batch=4, rect=False)
    yield onnx, ul
    onnx.close()
    ul.close()


@pytest.mark.slow
def test_onnx_and_ultralytics_give_the_same_boxes(both, frames):
    onnx, ul = both
    assert type(ul).__name__ == "UltralyticsDetector"
    assert onnx.class_names == ul.class_names == {0: "Normal", 1: "Fall"}
    a, b = onnx.detect(frames), ul.detect(frames)
    assert [len(d) for d in a] == [len(d) for d in b]
    assert sum(len(d) for d in a) >= 30  # real people found on these frames
    for i, (x, y) in enumerate(zip(a, b)):
        iou = box_iou(x.xyxy, y.xyxy)
        rows, cols = linear_sum_assignment(-iou)
        assert len(rows) == len(x)
        assert (iou[rows, cols] > 0.95).all(), f"frame {i}: IoUs {iou[rows, cols]}"
        assert (x.class_ids[rows] == y.class_ids[cols]).all(), f"frame {i}: classes differ"
        np.testing.assert_allclose(x.scores[rows], y.scores[cols], atol=2e-3)
    assert set(ul.last_timings) == {"preprocess", "inference", "postprocess"}
    assert ul.last_timings["inference"] > 0


def test_ultralytics_class_filter_and_options(frames):
    fall = load_detector(resolve_model("person-yolov8s-pt"), classes=["Fall"], conf=0.5, rect=False)  # square 640
    try:
        out = fall.detect(frames[4:6])  # PETS frames: one 'Fall' box each (the yellow object on the grass)
        assert [d.class_ids.tolist() for d in out] == [[1], [1]]
        np.testing.assert_allclose(out[0].xyxy, [[60.9, 489.2, 167.8, 534.7]], atol=0.5)  # same as the ONNX backend
        np.testing.assert_allclose([d.scores[0] for d in out], [0.562, 0.592], atol=2e-3)
        assert fall.info["classes"] == [1] and fall.info["backend"] == "ultralytics"
    finally:
        fall.close()
