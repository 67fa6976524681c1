"""TensorFlow object-detection SSD exported to ONNX (``coco-ssd-mobilenet-v2``), on ONNX Runtime.

``model: {path: coco-ssd-mobilenet-v2}`` picks this backend from the registry entry (``backend: ssd`` for a file of
your own). The graph is the TF1 detection API's: it takes whole RGB uint8 frames of any size (NHWC), resizes them to
300x300 itself, and returns boxes after its own per-class NMS: ``detection_boxes`` (B,100,4) as normalised
``ymin, xmin, ymax, xmax``, ``detection_classes`` (B,100) as COCO 91-ids (1 = person ... 90 = toothbrush),
``detection_scores`` (B,100) and ``num_detections`` (B,). So there is no letterbox, no decode and no NMS here:
``conf`` filters the scores (the graph itself returns nothing under 0.3), ``classes``/``max_det`` select, and
``iou``/``imgsz``/``rect`` have no effect (said once in the log when set). Frames of one size go in one call (up to
``batch``); class names come from the ONNX metadata written at conversion, else the standard COCO map below.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.detections import Detections
from .base import BackendUnavailable, Detector
from .onnx_backend import _providers, physical_cores, session_options

log = logging.getLogger(__name__)

#: the COCO 91-id label map of the TF detection model zoo (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 unused)
COCO91_NAMES: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra",
    25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee",
    35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove",
    41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass", 47: "cup", 48: "fork",
    49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich", 55: "orange", 56: "broccoli",
    57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair", 63: "couch",
    64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse",
    75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink",
    82: "refrigerator", 84: "book", 85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear", 89: "hair drier",
    90: "toothbrush",
}
OUTPUTS = ("detection_boxes:0", "detection_classes:0", "detection_scores:0", "num_detections:0")
#: the network's own input size (the graph resizes every frame to it)
NETWORK_HW = (300, 300)


class SsdDetector(Detector):
    """TF object-detection SSD (ONNX, NMS inside); see the module docstring."""

    backend = "ssd"

    def __init__(self, path: str | Path, *, threads: int | None = None, **kw: Any) -> None:
        ignored = {k: kw[k] for k in ("imgsz", "rect") if k in kw}
        super().__init__(path, **kw)
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - a core dependency
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from e
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.threads = threads
        providers = _providers(self.device)
        so = session_options(threads) if providers == ["CPUExecutionProvider"] else None
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: ONNX Runtime cannot load this model: {e}") from e
        self.providers = self.session.get_providers()
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(inputs[0].shape) != 4 \
                or not all(o in outputs for o in OUTPUTS):
            raise ValueError(
                f"{self.path}: not a TensorFlow object-detection SSD export (expected one uint8 NHWC input and "
                f"outputs {', '.join(OUTPUTS)}; it has inputs {[(i.name, i.shape, i.type) for i in inputs]} and "
                f"outputs {outputs}). A YOLO ONNX model runs with backend onnx"
            )
        self.input_name = inputs[0].name
        self._apply_metadata(self.session.get_modelmeta().custom_metadata_map or {})
        if not self.model_names:
            self.model_names = dict(COCO91_NAMES)
        self.input_hw = None  # any frame size: the graph resizes
        self.model_batch = None
        self.input_dtype = np.uint8
        if self.iou != 0.45 or any(v not in (640, True) for v in ignored.values()):
            log.info("%s: NMS and resizing happen inside the SSD graph; iou=%s %s not used", self.path.name,
                     self.iou, " ".join(f"{k}={v}" for k, v in ignored.items()))
        self._finish_init()

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "imgsz": list(NETWORK_HW), "rect": False, "threads": self.threads or physical_cores(),
                "nms": "inside the graph (TF detection API)"}

    def detect(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Detections]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        images = self._as_list(images)
        timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        results: list[Detections] = []
        start = 0
        while start < len(images):  # runs of same-sized frames, up to `batch` per call
            end = start + 1
            while end < len(images) and end - start < self.chunk_size and images[end].shape == images[start].shape:
                end += 1
            results.extend(self._run(images[start:end], timings))
            start = end
        self.last_timings = timings
        return results

    def _run(self, chunk: list[np.ndarray], timings: dict[str, float]) -> list[Detections]:
        t0 = time.perf_counter()
        x = np.stack([cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in chunk])
        hw = tuple(x.shape[1:3])
        if hw not in self.input_shapes_used:
            self.input_shapes_used.append(hw)
        t1 = time.perf_counter()
        boxes, classes, scores, num = self.session.run(list(OUTPUTS), {self.input_name: x})
        t2 = time.perf_counter()
        out = [self._select(boxes[i], classes[i], scores[i], int(num[i]), hw) for i in range(len(chunk))]
        t3 = time.perf_counter()
        timings["preprocess"] += t1 - t0
        timings["inference"] += t2 - t1
        timings["postprocess"] += t3 - t2
        return out

    def _select(self, boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, n: int,
                hw: tuple[int, int]) -> Detections:
        h, w = hw
        b, c, s = boxes[:n], np.rint(classes[:n]).astype(np.int32), scores[:n].astype(np.float32)
        keep = s > self.conf
        if self.classes is not None:
            keep &= np.isin(c, self.classes)
        order = np.argsort(-s[keep], kind="stable")[: self.max_det]
        b, c, s = b[keep][order], c[keep][order], s[keep][order]
        xyxy = np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], axis=1).astype(np.float32)
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32).reshape(-1, 4)
        return Detections(xyxy=xyxy, scores=s, class_ids=c, class_names=self.class_names)

    def warmup(self, n: int = 1) -> None:
        blank = np.full((*NETWORK_HW, 3), 114, np.uint8)
        for _ in range(max(1, n)):
            self.detect([blank])

    def close(self) -> None:
        super().close()
        self.session = None
