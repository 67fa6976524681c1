"""Detectors: one interface over ONNX Runtime, OpenVINO, TensorRT, Ultralytics and torch backends.

``load_detector(model)`` picks the backend from ``ModelConfig.backend`` or the file extension
(.onnx -> onnx, .xml -> openvino, .pt/.yaml -> ultralytics, .engine/.plan -> tensorrt) and the CPU
numerics from ``ModelConfig.precision`` (auto: an ONNX model on a CPU with native bf16 runs on OpenVINO in
bf16 when openvino is installed; on other CPUs a registry model checked in INT8 runs its INT8 build on ONNX
Runtime; int8: a registry model's cached INT8 build). Pre- and post-processing
(letterbox, decode, NMS) are shared, so identical raw outputs give identical boxes.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from ..registry import FetchError, fetch_media, resolve_model
from .base import BackendUnavailable, Detector
from .postprocess import batched_nms, decode, detect_layout, nms, postprocess
from .preprocess import LetterboxInfo, letterbox, preprocess_batch, scale_boxes

__all__ = [
    "BackendUnavailable", "Detector", "FetchError", "LetterboxInfo", "backend_for", "batched_nms", "cpu_bf16", "decode",
    "detect_layout", "fetch_media", "is_quantized", "letterbox", "load_detector", "nms", "postprocess",
    "preprocess_batch", "resolve_model", "resolve_weights", "scale_boxes",
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
    "face": ("pockit.inference.face_backend", "FaceDetector"),
    "ssd": ("pockit.inference.ssd_backend", "SsdDetector"),
}

log = logging.getLogger(__name__)

_OPTIONS = ("imgsz", "conf", "iou", "classes", "max_det", "device", "batch", "half", "class_names")


def _is_cpu(device: str) -> bool:
    return str(device).lower().strip() in ("cpu", "")


def cpu_bf16() -> bool:
    """True when OpenVINO is installed and this CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    from .openvino_backend import native_bf16

    return native_bf16()


def backend_for(path: str | Path, backend: str = "auto", device: str = "cpu", precision: str = "fp32") -> str:
    """The backend name for a model file (``backend`` other than 'auto' wins). A float ONNX model on a CPU
    runs on OpenVINO in bf16 for ``precision`` bf16 (and auto, which :func:`load_detector` resolves to bf16
    for registry models checked in bf16) when the CPU has native bf16 and openvino is installed (about 2x
    ONNX Runtime FP32 at equal accuracy, benchmarks/README.md); otherwise on ONNX Runtime."""
    if backend and backend != "auto":
        if backend not in _BACKENDS:
            raise ValueError(f"model.backend: unknown backend {backend!r}; expected auto, {', '.join(_BACKENDS)}")
        return backend
    ext = Path(str(path)).suffix.lower()
    if ext == ".onnx" and _is_cpu(device) and precision in ("auto", "bf16"):
        if cpu_bf16():
            return "openvino"
        if precision == "bf16":
            raise BackendUnavailable(
                "model.precision bf16 runs on OpenVINO on a CPU with native bf16 (AVX512-BF16/AMX): "
                + ("this CPU has none; use precision fp32 or int8" if _openvino_installed()
                   else "pip install 'pockit[openvino]'"))
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    raise ValueError(
        f"cannot tell the backend of model {str(path)!r} from its extension {ext or '(none)'}; known: "
        f"{', '.join(sorted(EXTENSIONS))}. Set model.backend explicitly."
    )


def _openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def is_quantized(path: str | Path) -> bool:
    """True for an ONNX model with INT8 QDQ or QLinear nodes."""
    if Path(str(path)).suffix.lower() != ".onnx":
        return False
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not a readable ONNX file: the backend that loads it says why
        return False
    return any(n.op_type in ("QuantizeLinear", "QLinearConv", "ConvInteger") for n in m.graph.node)


def resolve_weights(name: str, precision: str = "auto", backend: str = "auto", device: str = "cpu") -> Path:
    """The model file to load for ``model.path``/``precision``: with ``precision: int8``, a registry model on a
    CPU (ONNX backends) becomes its INT8 build (built once, cached); anything else keeps the file."""
    from .quantize import has_int8_recipe, int8_model

    if precision not in ("auto", "fp32", "bf16", "int8"):
        raise ValueError(f"model.precision: {precision!r}; expected auto, fp32, bf16 or int8")
    cpu_onnx = _is_cpu(device) and backend in ("auto", "onnx", "openvino")
    if precision == "int8" and cpu_onnx and has_int8_recipe(name):
        try:
            return int8_model(name)
        except (FetchError, OSError, ValueError) as e:
            raise FetchError(f"model.precision int8: cannot build the INT8 version of {name}: {e}") from e
    path = resolve_model(name)
    if precision == "int8" and not is_quantized(path):
        raise ValueError(
            f"model.precision int8: {path} is a float model and pockit has no INT8 build of it for "
            f"device {device!r} / backend {backend!r} (INT8 runs on the CPU, backend onnx or openvino); quantize it once with "
            f"'pockit models quantize {path} --calib VIDEO_OR_FRAMES -o {Path(str(path)).stem}-int8.onnx' and "
            "point model.path at the result"
        )
    return path


def _int8_or_fp32(name: str, backend: str, device: str) -> tuple[str, Path]:
    """precision auto on a CPU without native bf16, for a registry model checked in INT8: ('int8', its INT8
    build, made once from the shipped range table or the calibration media), or ('fp32', the float model) with a
    warning that says why the build could not be had."""
    try:
        return "int8", resolve_weights(name, "int8", backend, device)
    except (FetchError, OSError, ValueError, ImportError) as e:
        logging.getLogger(__name__).warning(
            "model %s: no INT8 build (%s); running FP32 on ONNX Runtime instead (about 1.6x slower on this CPU, "
            "which has no native bf16). Set model.precision: fp32 to silence this.", name, e)
        return "fp32", resolve_weights(name, "fp32", backend, device)


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
    if backend == "auto":  # a registry model that needs its own backend (face-yunet -> face) says so
        from ..registry import ASSETS

        backend = ASSETS[str(path_arg)].extra.get("backend", "auto") if str(path_arg) in ASSETS else "auto"
    precision = opts.pop("precision", "auto") or "auto"
    device = str(opts.get("device", "cpu"))
    path = None  # set here only by the INT8 branch below
    if precision == "auto":  # bf16 only for models whose bf16 accuracy pockit checked (registry), else fp32
        from ..registry import ASSETS

        extra = ASSETS[str(path_arg)].extra if str(path_arg) in ASSETS else {}
        precision = "auto" if extra.get("cpu_precision") == "bf16" else "fp32"
        if (precision == "auto" and extra.get("cpu_precision_no_bf16") == "int8" and _is_cpu(device)
                and backend in ("auto", "onnx", "openvino") and not cpu_bf16()):
            precision, path = _int8_or_fp32(str(path_arg), backend, device)
    if path is None:
        path = resolve_weights(str(path_arg), precision, backend, device)
    name = backend_for(path, backend, device, "fp32" if is_quantized(path) else precision)
    if name == "openvino":
        opts["precision"] = precision
    elif precision == "bf16":
        raise ValueError(f"model.precision bf16 needs backend openvino (or auto), not {name!r}")
    if name == "torch":  # TorchDetector letterboxes to the square imgsz on the GPU: no rect option
        opts.pop("rect", None)
        opts.pop("min_short_side", None)
        opts.pop("requests", None)  # its launch/finish overlap is the GPU's own
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
