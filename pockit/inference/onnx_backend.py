"""ONNX Runtime backend (CPU, or CUDA with onnxruntime-gpu)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendUnavailable, Detector, parse_names
from .postprocess import NMS4_NAMES

log = logging.getLogger(__name__)

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _providers(device: str) -> list[Any]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    dev = device.lower().strip()
    if dev in ("cpu", ""):
        return ["CPUExecutionProvider"]
    if dev.startswith("cuda") or dev.isdigit() or dev in ("gpu", "auto"):
        idx = int(dev.split(":")[1]) if ":" in dev else int(dev) if dev.isdigit() else 0
        if "CUDAExecutionProvider" in available:
            return [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
        if dev != "auto":
            log.warning(
                "device %r asked for CUDA but onnxruntime has only %s (install onnxruntime-gpu); running on CPU",
                device, available,
            )
        return ["CPUExecutionProvider"]
    raise ValueError(f"model.device: {device!r} is not a device ONNX Runtime knows; use 'cpu', 'cuda' or 'cuda:N'")


class OnnxDetector(Detector):
    """YOLO-family ONNX model through ONNX Runtime.

    Reads class names from the ONNX metadata ``names`` (Ultralytics writes a dict literal), handles
    fixed or dynamic batch (a model fixed at batch 1 is run frame by frame) and fp16 inputs.
    """

    backend = "onnx"

    def __init__(self, path: str | Path, **kw) -> None:
        super().__init__(path, **kw)
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - a core dependency
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from e
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=_providers(self.device))
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: ONNX Runtime cannot load this model: {e}") from e
        self.providers = self.session.get_providers()
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.metadata = dict(meta)
        self.model_names = parse_names(meta.get("names"))
        if "stride" in meta:
            try:
                self.stride = int(float(meta["stride"]))
            except ValueError:
                pass

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(
                f"{self.path}: expected one image input, the model has {len(inputs)}: {[i.name for i in inputs]}"
            )
        inp = inputs[0]
        self.input_name = inp.name
        if len(inp.shape) != 4:
            raise ValueError(f"{self.path}: input {inp.name!r} has shape {inp.shape}; expected (B, 3, H, W)")
        b, c, h, w = inp.shape
        if isinstance(c, int) and c != 3:
            raise ValueError(f"{self.path}: input {inp.name!r} has {c} channels; pockit feeds 3-channel RGB")
        self.model_batch = b if isinstance(b, int) and b > 0 else None
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            self.input_hw = (h, w)
            if self.imgsz not in (h, w):
                log.info("%s has a fixed %dx%d input; imgsz=%d ignored", self.path.name, w, h, self.imgsz)
        self.input_dtype = _ORT_TYPES.get(inp.type, np.float32)
        self.output_names = [o.name for o in self.session.get_outputs()]
        if all(n in self.output_names for n in NMS4_NAMES):
            self._fetch = list(NMS4_NAMES)
        else:
            self._fetch = self.output_names
        self._finish_init()

    def _forward(self, batch: np.ndarray) -> Any:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        outs = self.session.run(self._fetch, {self.input_name: x})
        if self._fetch == list(NMS4_NAMES):
            return dict(zip(NMS4_NAMES, outs))
        return outs

    def close(self) -> None:
        super().close()
        self.session = None
