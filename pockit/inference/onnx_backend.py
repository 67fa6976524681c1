"""ONNX Runtime backend (CPU, or CUDA with onnxruntime-gpu)."""
from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendUnavailable, Detector
from .postprocess import NMS4_NAMES
from .rectangular import anchor_count

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


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads share one core's vector units: more threads only contend)."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001 - psutil missing or the platform hides the topology
        n = None
    return max(1, int(n or os.cpu_count() or 1))


def session_options(threads: int | None = None):
    """ONNX Runtime CPU session options: all graph optimisations, sequential execution, one op at a time
    on ``threads`` (default: physical cores) intra-op threads, and no spin-waiting between runs (spinning
    threads take cores from decode and tracking on a small box)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or physical_cores())
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class OnnxDetector(Detector):
    """YOLO-family ONNX model through ONNX Runtime.

    Reads class names from the ONNX metadata ``names`` (Ultralytics writes a dict literal), handles
    fixed or dynamic batch (a model fixed at batch 1 is run frame by frame) and fp16 inputs. With
    ``rect`` (default in ModelConfig), a fixed-size YOLOv8 export is rewritten once per input size
    (:mod:`pockit.inference.rectangular`, cached) and run at Ultralytics' minimal rectangle.
    """

    backend = "onnx"

    def __init__(self, path: str | Path, *, threads: int | None = None, **kw) -> None:
        super().__init__(path, **kw)
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - a core dependency
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from e
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.threads = threads
        self._ort = ort
        self._provider_list = _providers(self.device)
        # concurrent session.run calls are safe; on the CPU provider they overlap one another's operators
        self.requests = self._resolve_requests(self._provider_list == ["CPUExecutionProvider"])
        # the pipeline's request calls run on sessions of their own with the cores shared out between them (two
        # 1-thread calls on 2 cores: 10.1-10.9 frames/s end to end against 8.7-10.3 with two calls on the
        # 2-thread session, four alternating runs); detect() keeps the session with every core
        cores = physical_cores()
        self._request_threads = (max(1, cores // self.requests)
                                 if self.requests > 1 and threads is None and cores // self.requests < cores else None)
        self._twins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.session = self._load(self.path)
        self.providers = self.session.get_providers()
        self._apply_metadata(self.session.get_modelmeta().custom_metadata_map or {})

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
        out_shape = self.session.get_outputs()[0].shape
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            self.input_hw = (h, w)
            if self.imgsz not in (h, w):
                log.info("%s has a fixed %dx%d input; imgsz=%d ignored", self.path.name, w, h, self.imgsz)
            # a fixed YOLOv8 detect export (output (B, 4+nc, anchors of HxW)) can be rewritten per size
            self.supports_rect = len(out_shape) == 3 and out_shape[2] == anchor_count(h, w) and self.model_batch == 1
        else:
            self.supports_rect = True  # dynamic H/W: any stride multiple runs as is
        self._sessions: dict[tuple[int, int], Any] = {}
        if self.input_hw:
            self._sessions[self.input_hw] = self.session
        self.input_dtype = _ORT_TYPES.get(inp.type, np.float32)
        from . import is_quantized

        self.precision = "int8" if is_quantized(self.path) else ("fp16" if self.input_dtype == np.float16 else "fp32")
        self.output_names = [o.name for o in self.session.get_outputs()]
        if all(n in self.output_names for n in NMS4_NAMES):
            self._fetch = list(NMS4_NAMES)
        else:
            self._fetch = self.output_names
        self._finish_init()

    def _load(self, path: Path):
        so = session_options(self.threads) if self._provider_list == ["CPUExecutionProvider"] else None
        if so is None:
            so = self._ort.SessionOptions()
            so.log_severity_level = 3
        try:
            session = self._ort.InferenceSession(str(path), sess_options=so, providers=self._provider_list)
            if self._request_threads is not None:  # made now, not inside the first timed frames
                self._twins[session] = self._ort.InferenceSession(
                    str(path), sess_options=session_options(self._request_threads), providers=self._provider_list)
            return session
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: ONNX Runtime cannot load this model: {e}") from e

    def input_size_for(self, shapes) -> tuple[int, int]:
        return self._fixed_model_variant(super().input_size_for(shapes), self._sessions, self._load)

    def _forward(self, batch: np.ndarray) -> Any:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        session = self._sessions.get(tuple(x.shape[2:]), self.session)
        if self.in_request():
            session = self._twins.get(session, session)
        outs = session.run(self._fetch, {self.input_name: x})
        if self._fetch == list(NMS4_NAMES):
            return dict(zip(NMS4_NAMES, outs))
        return outs

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "threads": self.threads or physical_cores(), "precision": self.precision,
                "requests": self.requests, "request_threads": self._request_threads or self.threads or physical_cores()}

    def close(self) -> None:
        super().close()
        self.session = None
        self._sessions.clear()
        self._twins.clear()
