"""Ultralytics backend: anything ``ultralytics.YOLO`` loads (.pt, .yaml, exported formats).

Returns Ultralytics' own results (its preprocessing, NMS and box scaling) converted to
:class:`Detections`, so its boxes can be compared with pockit's ONNX/TensorRT backends. Needs the
``[ml]`` extra; imported lazily. Runs offline (``YOLO_OFFLINE=1``) and never plots.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.detections import Detections
from .base import BackendUnavailable, Detector

log = logging.getLogger(__name__)


def import_ultralytics():
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no hub/GitHub checks on machines without internet
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics
    except ImportError as e:
        raise BackendUnavailable(
            "the Ultralytics backend needs the [ml] extra: pip install 'pockit[ml]' (torch + ultralytics); "
            "or export the model to ONNX and use backend: onnx"
        ) from e
    return ultralytics


class UltralyticsDetector(Detector):
    """``ultralytics.YOLO`` wrapped as a pockit :class:`Detector`.

    ``rect=False`` (default) letterboxes to the square ``imgsz`` like pockit's other backends, so the
    network sees the same input; ``rect=True`` is Ultralytics' minimal-padding rectangle (faster).
    """

    backend = "ultralytics"
    supports_rect = True  # Ultralytics letterboxes to its own minimal rectangle when asked

    def __init__(self, path: str | Path, *, rect: bool = False, **kw) -> None:
        super().__init__(path, rect=rect, **kw)
        import_ultralytics()
        from ultralytics import YOLO

        local = self.path.exists()
        if not local:
            log.warning(
                "%s is not a local file: Ultralytics will try to download it, which needs internet access "
                "(GitHub). Offline, fetch the weights elsewhere and give a local path.", self.path,
            )
        try:
            self.model = YOLO(str(self.path), task="detect")
        except FileNotFoundError as e:
            raise FileNotFoundError(f"Ultralytics cannot find or download {self.path}: {e}") from e
        self.model_names = {int(k): str(v) for k, v in (self.model.names or {}).items()}
        self.providers = [f"ultralytics:{self.device}"]
        self._finish_init()

    def detect(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Detections]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        images = self._as_list(images)
        timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        out: list[Detections] = []
        n = self.chunk_size
        names = self.class_names
        for start in range(0, len(images), n):
            chunk = images[start:start + n]
            t0 = time.perf_counter()
            results = self.model.predict(
                chunk, imgsz=self.imgsz, conf=self.conf, iou=self.iou, classes=self.classes,
                max_det=self.max_det, device=self.device, half=self.half, agnostic_nms=self.agnostic,
                batch=len(chunk), rect=self.rect, verbose=False, save=False, show=False, stream=False,
            )
            wall = time.perf_counter() - t0
            speed = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
            for r in results:
                b = r.boxes
                out.append(Detections(
                    xyxy=b.xyxy.cpu().numpy(), scores=b.conf.cpu().numpy(),
                    class_ids=b.cls.cpu().numpy().astype(np.int32), class_names=names,
                ))
                for k in speed:
                    speed[k] += float((r.speed or {}).get(k) or 0.0) / 1000.0
            # Ultralytics reports per-image ms; scale to this call's wall time when it reports nothing
            if sum(speed.values()) == 0:
                speed["inference"] = wall
            for k in timings:
                timings[k] += speed[k]
        self.last_timings = timings
        return out

    def close(self) -> None:
        super().close()
        self.model = None
