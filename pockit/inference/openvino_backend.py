"""OpenVINO backend (Intel's runtime from PyPI: ``pip install 'pockit[openvino]'``), for x86 CPUs.

Runs the same ONNX files as the ONNX Runtime backend (read directly, no conversion step) with the same
letterbox, decode and NMS, so only the network's arithmetic differs. A fixed-size YOLOv8 export is rewritten
per input size like in the ONNX Runtime backend (``rect``, :mod:`pockit.inference.rectangular`).

Precision (``ModelConfig.precision``): ``fp32`` runs in float32 (the ONNX Runtime result to rounding);
``auto``/``bf16`` (or ``half: true``) compute in bfloat16 on CPUs that do so natively (AVX512-BF16 or AMX),
else float32. An INT8 (QDQ) ONNX from :func:`pockit.inference.quantize.quantize_int8` runs as INT8 kernels.
"""
from __future__ import annotations

import logging
import queue
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendUnavailable, Detector
from .onnx_backend import physical_cores
from .rectangular import anchor_count

log = logging.getLogger(__name__)


def import_openvino():
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailable(
            "backend 'openvino' needs the openvino package, which is not installed: pip install 'pockit[openvino]' "
            "(or use backend: onnx)"
        ) from e
    return openvino


def available() -> bool:
    """True when OpenVINO imports and offers a CPU device."""
    try:
        ov = import_openvino()
        return "CPU" in ov.Core().available_devices
    except Exception:  # noqa: BLE001 - a broken install counts as unavailable
        return False


def native_bf16() -> bool:
    """True when OpenVINO is installed and its CPU plugin computes bf16 natively on this machine."""
    try:
        ov = import_openvino()
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - not installed or broken: no bf16
        return False


def _onnx_metadata(path: Path) -> dict[str, str]:
    """The ONNX file's metadata_props (class names, stride) without loading the weights."""
    try:
        import onnx

        m = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in m.metadata_props}
    except Exception as e:  # noqa: BLE001 - metadata is optional: names fall back to ids
        log.warning("%s: cannot read the ONNX metadata (%s); class names will be ids", path.name, e)
        return {}


class OpenVinoDetector(Detector):
    """YOLO-family ONNX (or OpenVINO IR .xml) model through the OpenVINO CPU plugin."""

    backend = "openvino"

    def __init__(self, path: str | Path, *, threads: int | None = None, precision: str = "fp32", **kw) -> None:
        super().__init__(path, **kw)
        ov = import_openvino()
        if not self.path.is_file():
            raise FileNotFoundError(f"model not found: {self.path}")
        dev = self.device.lower().strip()
        if dev not in ("cpu", "", "auto"):
            raise ValueError(f"model.device: {self.device!r}: pockit's OpenVINO backend runs on 'cpu'; use backend: "
                             "onnx or torch for CUDA devices")
        self.device = "cpu"
        self.threads = int(threads or physical_cores())
        self.core = ov.Core()
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": "bf16" if (self.half or precision in ("auto", "bf16")) and native_bf16()
            else "f32",
        }
        if precision == "bf16" and self.config["INFERENCE_PRECISION_HINT"] == "f32":
            raise BackendUnavailable("model.precision bf16: this CPU has no native bf16 (AVX512-BF16/AMX); "
                                     "use precision fp32 or int8")
        self._apply_metadata(_onnx_metadata(self.path) if self.path.suffix.lower() == ".onnx" else {})
        try:
            model = self.core.read_model(str(self.path))
        except Exception as e:  # OpenVINO raises RuntimeError subclasses
            raise ValueError(f"{self.path}: OpenVINO cannot read this model: {e}") from e
        if len(model.inputs) != 1:
            raise ValueError(f"{self.path}: expected one image input, the model has {len(model.inputs)}")
        ps = model.inputs[0].get_partial_shape()
        if ps.rank.is_dynamic or ps.rank.get_length() != 4:
            raise ValueError(f"{self.path}: input has shape {ps}; expected (B, 3, H, W)")
        dims = [d.get_length() if d.is_static else None for d in ps]
        b, c, h, w = dims
        if c is not None and c != 3:
            raise ValueError(f"{self.path}: input has {c} channels; pockit feeds 3-channel RGB")
        self.model_batch = b
        out = model.outputs[0].get_partial_shape()
        out_dims = [d.get_length() if d.is_static else None for d in out]
        if h and w:
            self.input_hw = (h, w)
            self.supports_rect = (self.path.suffix.lower() == ".onnx" and b == 1 and len(out_dims) == 3
                                  and out_dims[2] == anchor_count(h, w))
        else:
            self.supports_rect = True
        self.input_dtype = np.float32
        self._model = model
        # frames in flight in the pipeline (model.requests): auto = 2 with bf16 on 2+ cores, where a second
        # compilation of the model with two CPU streams runs two frames side by side (raw model calls on a 2-core
        # Xeon with AMX, bf16: 352x1088 38-40 -> 48-49 frames/s, 480x640 51-52 -> 60-62); in FP32 the same gained
        # 5 % (13.0-13.6 -> 13.7-14.1), so FP32 keeps one call at a time unless model.requests says otherwise
        bf16 = self.config["INFERENCE_PRECISION_HINT"] == "bf16"
        self.requests = self._resolve_requests(True) if bf16 or self._requests_arg not in (None, "auto") else 1
        # per input size: (the latency model's infer request for detect(), the throughput model for the
        # pipeline's request threads or None)
        self._requests: dict[tuple[int, int] | None, tuple[Any, Any]] = {}
        key = self.input_hw
        self._requests[key] = self._compile(model)
        self.providers = [f"openvino-{ov.__version__}:CPU", f"precision:{self.config['INFERENCE_PRECISION_HINT']}",
                          f"threads:{self.threads}"] + ([f"streams:{self.requests}"] if self.requests > 1 else [])
        self._finish_init()

    def _compile(self, model) -> tuple[Any, Any]:
        """(the latency model's infer request, a queue of ``requests`` infer requests of the two-stream model or
        None). With requests in flight, everything is made and run once here, on one thread (under the detector's
        lock for a new input size): OpenVINO's Python module initialises parts of itself lazily under once-flags,
        and two request threads getting to one at the same time hung (2 runs in 18 when their first calls were
        concurrent)."""
        try:
            latency = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            tput = None
            if self.requests > 1:
                compiled = self.core.compile_model(model, "CPU", {
                    **self.config, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.requests})
                tput = queue.SimpleQueue()
                for _ in range(self.requests):
                    req = compiled.create_infer_request()
                    self._warm(req)
                    tput.put(req)
                self._warm(latency)  # detect() may run beside the request threads
            return latency, tput
        except Exception as e:
            raise ValueError(f"{self.path}: OpenVINO cannot compile this model for the CPU: {e}") from e

    @staticmethod
    def _warm(req) -> None:
        """One call on a blank input of the request's own shape (static shapes only)."""
        try:
            t = req.get_input_tensor(0)
            if all(d > 0 for d in t.shape):
                res = req.infer({0: np.zeros(tuple(t.shape), np.float32)})
                [np.array(res[o]) for o in req.model_outputs]
        except Exception as e:  # noqa: BLE001 - a warm-up only: the first real frame says what is wrong
            log.debug("OpenVINO warm-up call failed: %s", e)

    def input_size_for(self, shapes) -> tuple[int, int]:
        return self._fixed_model_variant(super().input_size_for(shapes), self._requests,
                                         lambda path: self._compile(self.core.read_model(str(path))))

    def _forward(self, batch: np.ndarray) -> Any:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        key = tuple(x.shape[2:]) if self.input_hw else None
        latency, tput = self._requests.get(key) or self._requests[self.input_hw]
        if tput is None or not self.in_request():
            res = latency.infer({0: x})
            return [np.array(res[o]) for o in latency.model_outputs]
        req = tput.get()  # one of the pipeline's requests: an infer request (a CPU stream) of its own
        try:
            res = req.infer({0: x})
            return [np.array(res[o]) for o in req.model_outputs]
        finally:
            tput.put(req)

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "threads": self.threads, "precision": self.config["INFERENCE_PRECISION_HINT"],
                "requests": self.requests}

    def close(self) -> None:
        super().close()
        self._requests.clear()
        self._model = None
