"""TensorRT (>= 10) backend for serialized engines (``.engine`` / ``.plan``).

Uses the named-tensor API: ``engine.num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode`` /
``get_tensor_shape`` / ``get_tensor_profile_shape``, ``context.set_input_shape``,
``context.set_tensor_address`` and ``context.execute_async_v3(stream)``. Device buffers come from
torch (CUDA build) or cuda-python, whichever is installed. Engines written by Ultralytics carry a
JSON metadata header (4-byte little-endian length + JSON) that is read for class names.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendUnavailable, Detector, parse_names
from .postprocess import NMS4_NAMES

log = logging.getLogger(__name__)


def import_tensorrt():
    """Import ``tensorrt`` (>= 10) or raise :class:`BackendUnavailable` saying what to install."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailable(
            "the TensorRT backend needs the 'tensorrt' Python package (>= 10): on Jetson it comes with "
            "JetPack (python3-libnvinfer), on x86 'pip install tensorrt-cu12'. Or run the .onnx model with "
            "backend: onnx."
        ) from e
    version = str(getattr(trt, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 10:
        raise BackendUnavailable(f"TensorRT {version} is installed; pockit needs TensorRT >= 10 (named-tensor API)")
    return trt


def read_engine_file(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """(metadata, engine bytes). Ultralytics prepends ``len(json)`` (4 bytes, little endian) + JSON."""
    data = Path(path).read_bytes()
    if len(data) > 4:
        n = int.from_bytes(data[:4], "little")
        if 0 < n <= min(len(data) - 4, 1 << 20):
            try:
                meta = json.loads(data[4:4 + n].decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                meta = None
            if isinstance(meta, dict):
                return meta, data[4 + n:]
    return {}, data


@dataclass
class TensorSpec:
    """One I/O tensor of an engine. ``shape`` has -1 for dynamic dims; ``profile`` = (min, opt, max)."""

    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


def inspect_engine(trt, engine, profile_index: int = 0) -> list[TensorSpec]:
    """All I/O tensors of a deserialized engine, in engine order."""
    specs = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        prof = None
        if is_input and any(d < 0 for d in shape):
            mn, opt, mx = engine.get_tensor_profile_shape(name, profile_index)
            prof = (tuple(int(d) for d in mn), tuple(int(d) for d in opt), tuple(int(d) for d in mx))
        specs.append(TensorSpec(name, is_input, dtype, shape, prof))
    return specs


def order_outputs(names: Sequence[str]) -> list[str]:
    """EfficientNMS outputs in (num_dets, det_boxes, det_scores, det_classes) order, else sorted by
    name (``output0`` = detections before ``output1`` = mask protos, as Ultralytics does)."""
    if all(n in names for n in NMS4_NAMES):
        return list(NMS4_NAMES)
    return sorted(names)


def max_batch_of(spec: TensorSpec) -> tuple[int | None, int | None]:
    """(fixed batch, max dynamic batch) of an image input."""
    b = spec.shape[0]
    if b > 0:
        return b, None
    if spec.profile is None:
        raise ValueError(f"input {spec.name!r} has a dynamic batch but the engine has no optimization profile")
    return None, spec.profile[2][0]


def plan_input_shape(spec: TensorSpec, batch: int, imgsz: int) -> tuple[int, int, int, int]:
    """Concrete (B, 3, H, W) for a batch: fixed dims as built, dynamic H/W = imgsz; checked against the profile."""
    if len(spec.shape) != 4:
        raise ValueError(f"engine input {spec.name!r} has shape {spec.shape}; expected (B, 3, H, W)")
    want = [batch, 3, imgsz, imgsz]
    shape = tuple(d if d > 0 else want[i] for i, d in enumerate(spec.shape))
    if spec.shape[0] > 0 and batch > spec.shape[0]:
        raise ValueError(f"engine input {spec.name!r} is built for batch {spec.shape[0]}, got {batch} frames")
    if spec.profile is not None:
        mn, _, mx = spec.profile
        for i, (lo, v, hi) in enumerate(zip(mn, shape, mx)):
            if not lo <= v <= hi:
                axis = ("batch", "channels", "height", "width")[i]
                raise ValueError(
                    f"engine input {spec.name!r}: {axis} {v} is outside the optimization profile "
                    f"[{lo}, {hi}] (min {mn}, max {mx}); change model.batch/imgsz or rebuild the engine"
                )
    return shape  # type: ignore[return-value]


# -- device memory -----------------------------------------------------------------------------

class TorchCudaMemory:
    """Device buffers and a stream from torch (CUDA build)."""

    name = "torch"

    def __init__(self, device_index: int = 0) -> None:
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable("torch is installed but sees no CUDA device")
        self.torch = torch
        self.device = torch.device("cuda", device_index)
        self.stream = torch.cuda.Stream(self.device)

    @property
    def stream_handle(self) -> int:
        return int(self.stream.cuda_stream)

    def alloc(self, nbytes: int):
        return self.torch.empty(max(1, nbytes), dtype=self.torch.uint8, device=self.device)

    def ptr(self, buf) -> int:
        return int(buf.data_ptr())

    def h2d(self, buf, arr: np.ndarray) -> None:
        src = self.torch.from_numpy(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(self.stream):
            buf[: src.numel()].copy_(src)

    def d2h(self, buf, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        with self.torch.cuda.stream(self.stream):
            host = buf[:n].cpu()  # waits for the stream's work
        return host.numpy().view(dtype).reshape(shape).copy()

    def synchronize(self) -> None:
        self.stream.synchronize()

    def free(self, buf) -> None:
        del buf


class CudaPythonMemory:
    """Device buffers and a stream from cuda-python (``cuda.bindings.runtime`` or ``cuda.cudart``)."""

    name = "cuda-python"

    def __init__(self, device_index: int = 0) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        self.cudart = cudart
        self._call(cudart.cudaSetDevice(device_index))
        self.stream = self._call(cudart.cudaStreamCreate())

    def _call(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return rest[0] if len(rest) == 1 else rest or None

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def alloc(self, nbytes: int):
        return self._call(self.cudart.cudaMalloc(max(1, nbytes)))

    def ptr(self, buf) -> int:
        return int(buf)

    def h2d(self, buf, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self.cudart.cudaMemcpyAsync(int(buf), arr.ctypes.data, arr.nbytes, kind, self.stream))
        self.synchronize()  # arr may be freed after return

    def d2h(self, buf, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
        out = np.empty(tuple(shape), dtype)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self.cudart.cudaMemcpyAsync(out.ctypes.data, int(buf), out.nbytes, kind, self.stream))
        self.synchronize()
        return out

    def synchronize(self) -> None:
        self._call(self.cudart.cudaStreamSynchronize(self.stream))

    def free(self, buf) -> None:
        self._call(self.cudart.cudaFree(buf))


def default_memory(device_index: int = 0):
    errors = []
    for cls in (TorchCudaMemory, CudaPythonMemory):
        try:
            return cls(device_index)
        except ImportError as e:
            errors.append(f"{cls.name}: {e}")
        except BackendUnavailable as e:
            errors.append(f"{cls.name}: {e}")
    raise BackendUnavailable(
        "the TensorRT backend needs CUDA device memory from torch (CUDA build) or cuda-python "
        "(pip install cuda-python); " + "; ".join(errors)
    )


class TensorRTDetector(Detector):
    """Serialized TensorRT engine (``.engine``/``.plan``) with one image input (B, 3, H, W).

    Dynamic batch engines run up to ``min(model.batch, profile max batch)`` frames per call.
    ``memory``: device-memory provider (default: torch, else cuda-python).
    """

    backend = "tensorrt"

    def __init__(self, path: str | Path, *, memory: Any = None, profile_index: int = 0, **kw) -> None:
        super().__init__(path, **kw)
        trt = import_tensorrt()
        if not self.path.is_file():
            raise FileNotFoundError(f"TensorRT engine not found: {self.path}")
        self.metadata, blob = read_engine_file(self.path)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise ValueError(
                f"{self.path}: TensorRT could not deserialize this engine. Engines only load on the TensorRT "
                f"version ({getattr(trt, '__version__', '?')} here) and GPU model they were built with; rebuild "
                "it from the .onnx on this device (pockit deploy)."
            )
        self.context = self.engine.create_execution_context()
        specs = inspect_engine(trt, self.engine, profile_index)
        ins = [s for s in specs if s.is_input]
        if len(ins) != 1:
            raise ValueError(f"{self.path}: expected one image input, the engine has {[s.name for s in ins]}")
        self.input_spec = ins[0]
        self.output_specs = {s.name: s for s in specs if not s.is_input}
        self.output_order = order_outputs(list(self.output_specs))
        self.model_batch, self.max_model_batch = max_batch_of(self.input_spec)
        h, w = self.input_spec.shape[2:4] if len(self.input_spec.shape) == 4 else (-1, -1)
        if h > 0 and w > 0:
            self.input_hw = (h, w)
        self.input_dtype = self.input_spec.dtype
        self.model_names = parse_names(self.metadata.get("names"))
        if not self.model_names:
            # write_engine's sidecar is <engine>.json (model.engine.json); also accept model.json
            side = next((f for f in (Path(str(self.path) + ".json"), self.path.with_suffix(".json")) if f.is_file()),
                        self.path.with_suffix(".json"))
            if side.is_file():
                try:
                    self.model_names = parse_names(json.loads(side.read_text("utf-8")).get("names"))
                except (ValueError, AttributeError):
                    log.warning("%s: cannot read class names", side)
        if "stride" in self.metadata:
            self.stride = int(self.metadata["stride"])
        self.providers = ["TensorrtExecution"]
        dev = self.device.lower()
        idx = int(dev.split(":")[1]) if dev.startswith("cuda:") else int(dev) if dev.isdigit() else 0
        self.memory = memory if memory is not None else default_memory(idx)
        self._buffers: dict[str, Any] = {}
        self._allocate()
        self._finish_init()

    # -- buffers ------------------------------------------------------------------------------
    def plan_buffers(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Largest shape (and dtype) each I/O tensor takes for this detector's batch and imgsz."""
        in_shape = plan_input_shape(self.input_spec, self.chunk_size, self.imgsz)
        self.context.set_input_shape(self.input_spec.name, in_shape)
        plan = {self.input_spec.name: (tuple(in_shape), self.input_spec.dtype)}
        for name, spec in self.output_specs.items():
            shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ValueError(
                    f"{self.path}: output {name!r} has a data-dependent shape {shape}; pockit needs outputs "
                    "whose shape follows from the input shape"
                )
            plan[name] = (shape, spec.dtype)
        return plan

    def _allocate(self) -> None:
        self._plan = self.plan_buffers()
        for name, (shape, dtype) in self._plan.items():
            buf = self.memory.alloc(int(np.prod(shape)) * np.dtype(dtype).itemsize)
            self._buffers[name] = buf
            self.context.set_tensor_address(name, self.memory.ptr(buf))
        if self.input_hw is None:
            self.input_hw = tuple(self._plan[self.input_spec.name][0][2:4])  # type: ignore[assignment]

    def _forward(self, batch: np.ndarray) -> Any:
        name = self.input_spec.name
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        max_shape = self._plan[name][0]
        if x.shape[0] > max_shape[0] or x.shape[1:] != tuple(max_shape[1:]):
            raise ValueError(f"batch of shape {x.shape} does not fit engine input buffer {max_shape}")
        if not self.context.set_input_shape(name, x.shape):
            raise ValueError(f"{self.path}: TensorRT refused input shape {x.shape} for {name!r}")
        self.memory.h2d(self._buffers[name], x)
        if not self.context.execute_async_v3(self.memory.stream_handle):
            raise RuntimeError(f"{self.path}: TensorRT execution failed (see the TensorRT log above)")
        outs = {}
        for out in self.output_order:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(out))
            outs[out] = self.memory.d2h(self._buffers[out], shape, self.output_specs[out].dtype)
        self.memory.synchronize()
        if self.output_order == list(NMS4_NAMES):
            return outs
        return [outs[n] for n in self.output_order]

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        for buf in self._buffers.values():
            try:
                self.memory.free(buf)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self._buffers.clear()
        self.context = None
        self.engine = None
