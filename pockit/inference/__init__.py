"""Detectors: one interface over ONNX Runtime, OpenVINO, TensorRT, Ultralytics and torch backends.

``load_detector(model)`` picks the backend from ``ModelConfig.backend`` or the file extension
(.onnx -> openvino on a CPU where OpenVINO is installed, else onnx; .xml -> openvino; .pt/.yaml ->
ultralytics; .engine/.plan -> tensorrt). Pre- and post-processing (letterbox, decode, NMS) are shared,
so identical raw outputs give identical boxes.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..registry import FetchError, fetch_media, resolve_model
from .base import BackendUnavailable, Detector
from .postprocess import batched_nms, decode, detect_layout, nms, postprocess
from .preprocess import LetterboxInfo, letterbox, preprocess_batch, scale_boxes

__all__ = [
    "BackendUnavailable", "Detector", "FetchError", "LetterboxInfo", "backend_for", "batched_nms", "decode",
    "detect_layout", "fetch_media", "letterbox", "load_detector", "nms", "postprocess", "preprocess_batch",
    "resolve_model", "scale_boxes",
]

EXTENSIONS = {
    ".onnx": "onnx",
    ".xml": "openvino",
    ".pt": "ultralytics",
    ".yaml": "ultralytics",
    ".yml": "ultralytics",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".trt": "tensorrt",
}

_BACKENDS = {
    "onnx": ("pockit.inference.onnx_backend", "OnnxDetector"),
    "openvino": ("pockit.inference.openvino_backend", "OpenVinoDetector"),
    "ultralytics": ("pockit.inference.ultralytics_backend", "UltralyticsDetector"),
    "tensorrt": ("pockit.inference.tensorrt_backend", "TensorRTDetector"),
    "torch": ("pockit.inference.torch_backend", "TorchDetector"),
}

_OPTIONS = ("imgsz", "conf", "iou", "classes", "max_det", "device", "batch", "half", "class_names")


def _is_cpu(device: str) -> bool:
    return str(device).lower().strip() in ("cpu", "")


def backend_for(path: str | Path, backend: str = "auto", device: str = "cpu") -> str:
    """The backend name for a model file (``backend`` other than 'auto' wins). On a CPU, an ONNX model
    runs on OpenVINO when it is installed (measured faster than ONNX Runtime on x86: benchmarks/README.md)."""
    if backend and backend != "auto":
        if backend not in _BACKENDS:
            raise ValueError(f"model.backend: unknown backend {backend!r}; expected auto, {', '.join(_BACKENDS)}")
        return backend
    ext = Path(str(path)).suffix.lower()
    if ext == ".onnx" and _is_cpu(device):
        from .openvino_backend import available

        return "openvino" if available() else "onnx"
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    raise ValueError(
        f"cannot tell the backend of model {str(path)!r} from its extension {ext or '(none)'}; known: "
        f"{', '.join(sorted(EXTENSIONS))}. Set model.backend explicitly."
    )


def load_detector(model: Any = "person-yolov8s", **overrides) -> Detector:
    """Build a :class:`Detector` from a :class:`~pockit.config.ModelConfig`, a model name or a path.

    ``overrides`` replace ModelConfig fields (imgsz, conf, iou, classes, max_det, device, batch, half,
    class_names, backend) or pass backend-specific options through.
    """
    from ..config import ModelConfig

    if isinstance(model, ModelConfig):
        opts = model.model_dump()
    elif isinstance(model, (str, Path)):
        opts = ModelConfig(path=str(model)).model_dump()
    else:
        raise TypeError(f"load_detector expects a ModelConfig, a model name or a path, got {type(model).__name__}")
    opts.update(overrides)
    path_arg = opts.pop("path")
    backend = opts.pop("backend", "auto") or "auto"
    path = resolve_model(path_arg)
    name = backend_for(path, backend, opts.get("device", "cpu"))
    if name == "torch":  # TorchDetector letterboxes to the square imgsz on the GPU: no rect option
        opts.pop("rect", None)
    module, cls_name = _BACKENDS[name]
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except ModuleNotFoundError as e:
        if name == "torch" and e.name == module:
            raise BackendUnavailable(
                "backend 'torch' is not available in this pockit build (pockit/inference/torch_backend.py is "
                "missing); use backend: onnx or ultralytics"
            ) from e
        if e.name and e.name.split(".")[0] in ("torch", "ultralytics", "tensorrt", "torchvision", "openvino"):
            raise BackendUnavailable(
                f"backend {name!r} needs {e.name.split('.')[0]!r}, which is not installed: "
                "pip install 'pockit[ml]'"
            ) from e
        raise
    except AttributeError as e:
        raise BackendUnavailable(f"backend {name!r}: {module} has no {cls_name}") from e
    return cls(path, **opts)
