"""GPU detector backend: PyTorch CUDA (FP16), pre- and post-processing on the GPU.

For machines with an NVIDIA GPU but no TensorRT (the lent data-centre GPUs, a workstation).
It loads the Ultralytics ``.pt`` checkpoint's ``nn.Module`` (or a TorchScript file), and keeps
every per-pixel step on the GPU:

* upload: uint8 BGR frames, pinned host memory, asynchronous copies on a side stream;
* letterbox: bilinear resize + centred 114 padding with the exact geometry of
  :func:`pockit.inference.preprocess.letterbox` (so boxes map back identically);
* model: FP16, channels-last, optionally replayed from a CUDA graph at a fixed batch;
* post-processing: confidence filter, class-aware greedy NMS for the whole batch in one
  ``torchvision.ops.batched_nms`` call, ``max_det`` cut, boxes mapped back to frame pixels.

The detections follow the ONNX backend's semantics (Ultralytics ``non_max_suppression`` with
``multi_label=False``): a box's score is its best class score, boxes with score <= ``conf`` are
dropped, NMS is per class, at most ``max_det`` boxes per frame sorted by score.
torch/torchvision are imported lazily (``[ml]`` extra); importing this module needs neither.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Detections
from ..resolve import resolve_classes
from .preprocess import PAD_VALUE, LetterboxInfo

log = logging.getLogger(__name__)

MAX_WH = 7680  # class offset used by Ultralytics' NMS (boxes of different classes never overlap)


def letterbox_geometry(h: int, w: int, th: int, tw: int) -> LetterboxInfo:
    """Same arithmetic as ``preprocess.letterbox`` without touching pixels."""
    r = min(th / h, tw / w)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (tw - nw) / 2, (th - nh) / 2
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    return LetterboxInfo(ratio=r, pad=(left, top), orig_shape=(h, w), input_shape=(th, tw))


from ..registry import sha256_file as _sha256  # noqa: E402

_CUDART: Any = False  # not looked up yet; None = not available
_CUDART_LOCK = threading.Lock()


def _cudart() -> Any:
    """The CUDA runtime torch loaded, opened with ``ctypes.PyDLL`` (calls keep the GIL), or None.

    Used to enqueue the host-to-device copies of a batch of frames from page-locked pool slots in one
    Python loop: each torch call releases and re-takes the GIL, and with decode threads busy in the same
    process every re-take can wait, which made a 64-frame upload ~10x slower than in isolation.
    ``POCKIT_FAST_UPLOAD=0`` turns it off. Thread-safe: NVDEC sources opening in several decode threads at once
    all ask for it (before the lock, all but the first got None while the first was still opening it, and their
    streams failed: tenth GPU session)."""
    global _CUDART
    if _CUDART is not False:
        return _CUDART
    with _CUDART_LOCK:
        if _CUDART is False:
            _CUDART = _open_cudart()
    return _CUDART


def _open_cudart() -> Any:
    lib = None
    import os

    if os.environ.get("POCKIT_FAST_UPLOAD", "1") == "0":
        return None
    try:
        import ctypes

        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "libcudart.so" in line.split()[-1]})
        if not paths:
            return None
        cudart = ctypes.PyDLL(paths[0])
        cudart.cudaMemcpyAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                           ctypes.c_void_p]
        cudart.cudaMemcpyAsync.restype = ctypes.c_int
        cudart.cudaSetDevice.argtypes = [ctypes.c_int]
        cudart.cudaSetDevice.restype = ctypes.c_int
        lib = cudart
        log.info("host-to-device frame copies through %s", paths[0])
    except Exception as e:  # noqa: BLE001 - the torch path still works
        log.info("fast frame upload unavailable (%s); using torch copies", e)
    return lib


def _import_torch():
    try:
        import torch
        import torchvision  # noqa: F401  (batched_nms)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the torch backend needs PyTorch and torchvision ({e}); install the extra: pip install 'pockit[ml]'"
        ) from e
    return torch


def load_torch_model(path: str | Path, device: Any = "cpu"):
    """Load an Ultralytics checkpoint (``.pt``) or TorchScript file -> (nn.Module, class_names, meta)."""
    torch = _import_torch()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".torchscript", ".ts") or (suffix == ".pt" and _is_torchscript(path)):
        extra = {"config.txt": ""}
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        names = {}
        if extra["config.txt"]:
            import json

            meta = json.loads(extra["config.txt"])
            names = {int(k): v for k, v in (meta.get("names") or {}).items()}
        return module, names, {"format": "torchscript", "stride": 32}
    if suffix != ".pt":
        raise ValueError(f"{path}: the torch backend reads Ultralytics .pt checkpoints or TorchScript files, not {suffix!r}")
    try:
        from ultralytics.nn.tasks import load_checkpoint
    except ImportError as e:
        raise ImportError(f"reading {path} needs ultralytics ({e}); install the extra: pip install 'pockit[ml]'") from e
    try:
        model, _ckpt = load_checkpoint(str(path), device="cpu", inplace=True, fuse=True)
    except Exception as e:  # corrupt file, not an Ultralytics checkpoint ...
        raise ValueError(f"{path}: cannot load as an Ultralytics checkpoint: {e}") from e
    names = {int(k): str(v) for k, v in dict(getattr(model, "names", {}) or {}).items()}
    stride = int(max(getattr(model, "stride", torch.tensor([32])).max().item(), 32))
    task = getattr(model, "task", getattr(model, "args", {}).get("task", "detect"))
    if task not in ("detect", None):
        raise ValueError(f"{path}: task {task!r} is not supported by pockit's detectors (need a detection model)")
    return model.to(device).eval(), names, {"format": "ultralytics", "stride": stride}


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def stream_ok(images: Sequence[Any]) -> bool:
    """All frames are C-contiguous HxWx3 (BGR) or (H*3/2)xW (NV12) uint8 numpy arrays (what the fast upload
    copies byte for byte)."""
    return all(isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.flags.c_contiguous
               and ((im.ndim == 3 and im.shape[2] == 3) or _is_nv12(im)) for im in images)


def _is_nv12(im) -> bool:
    """An NV12 frame: a 2-D (H*3/2, W) uint8 array (or GPU tensor) with H and W even (NVDEC's output, see
    pockit.sources.nvdec: the pipeline hands such frames over as they are when the detector ``accepts_nv12``)."""
    shape = tuple(im.shape)
    return len(shape) == 2 and shape[0] % 3 == 0 and shape[1] % 2 == 0  # H = rows * 2 / 3, even


def nv12_to_rgb(src, dtype, scale: float = 1.0):
    """(N, H*3/2, W) uint8 NV12 tensor -> (N, 3, H, W) RGB of ``dtype`` in 0..255 * ``scale``: ITU-R BT.601, limited
    range, each 2x2 block sharing its chroma: the conversion OpenCV's ``COLOR_YUV2BGR_NV12`` makes (within rounding).

    ``scale`` is folded into the coefficients (1/255 gives the model's 0..1 input with no pass of its own). Every
    kernel here writes whole planes: luma scaled once, the chroma de-interleaved and centred at half size, then
    replicated 2x2 (nearest), then each colour plane in one or two adds. Measured on an H200 (benchmarks/README.md,
    fourteenth session), with the letterbox resize after it: 0.60 ms of GPU a batch of 32 576p frames, against
    0.95 ms for the elementwise version before (eleven kernels on strided views): 12 % of the model's 8.1 ms then."""
    import torch
    import torch.nn.functional as F

    n, h3, w = src.shape
    h = h3 * 2 // 3
    k = 1.164 * scale
    yb = src[:, None, :h].to(dtype).mul_(k).add_(-16.0 * k)
    uv = src[:, h:].reshape(n, h // 2, w // 2, 2).permute(0, 3, 1, 2)
    uv = F.interpolate(uv.to(dtype, memory_format=torch.contiguous_format).sub_(128.0), scale_factor=2, mode="nearest")
    out = torch.empty((n, 3, h, w), dtype=dtype, device=src.device)
    torch.add(yb, uv[:, 1:2], alpha=1.596 * scale, out=out[:, 0:1])
    torch.add(yb, uv[:, 0:1], alpha=-0.391 * scale, out=out[:, 1:2]).add_(uv[:, 1:2], alpha=-0.813 * scale)
    torch.add(yb, uv[:, 0:1], alpha=2.018 * scale, out=out[:, 2:3])
    return out.clamp_(0.0, 255.0 * scale)


class TorchDetector:
    """Batched PyTorch CUDA detector. ``detect(images) -> list[Detections]`` like every pockit backend.

    model: ``.pt`` / TorchScript path, or an ``nn.Module`` returning (B, 4+nc, anchors) in xywh.
    batch: the largest batch one GPU call takes (longer lists are split); CUDA graphs are
    captured at this batch size, smaller batches are padded into it.
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        device: str = "cuda",
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.45,
        classes: Sequence[int | str] | None = None,
        max_det: int = 300,
        half: bool = True,
        batch: int = 32,
        cuda_graph: bool = True,
        channels_last: bool = True,
        class_names: dict[int, str] | None = None,
        max_nms: int = 30000,
    ) -> None:
        torch = _import_torch()
        self.torch = torch
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' asked for but torch sees no CUDA GPU; use backend 'onnx' or device 'cpu'")
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        #: NV12 frames (NVDEC's output, (H*3/2, W) uint8) are taken as they are and converted on the GPU
        self.accepts_nv12 = self.is_cuda
        self.half = bool(half and self.is_cuda)
        self.dtype = torch.float16 if self.half else torch.float32
        self.imgsz = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
        self.conf, self.iou, self.max_det, self.max_nms = float(conf), float(iou), int(max_det), int(max_nms)
        self.batch = int(batch)
        if isinstance(model, (str, Path)):
            path = Path(model)
            module, names, meta = load_torch_model(path, self.device)
            sha = _sha256(path)
        else:
            module, names, meta, path, sha = model, dict(getattr(model, "names", {}) or {}), {"format": "module"}, None, None
        self.memory_format = torch.channels_last if (channels_last and self.is_cuda) else torch.contiguous_format
        module = module.to(self.device)
        if self.half:
            module = module.half()
        if self.memory_format is torch.channels_last and not isinstance(module, torch.jit.ScriptModule):
            module = module.to(memory_format=torch.channels_last)
        self.model = module.eval()
        self.class_names = {int(k): str(v) for k, v in (class_names or names).items()}
        self.class_filter = resolve_classes(classes, self.class_names, field="model.classes",
                                            owner=path.name if path else "the model")
        self.use_graph = bool(cuda_graph and self.is_cuda)
        self._graph = None  # the full-batch graph; self._graphs: batch size -> (graph, its output buffer)
        self._graphs: dict[int, tuple] = {}
        self._graph_keep: list = []  # tensors the captured graphs read (the head's anchors at each size)
        self._static_in = None
        self._static_out = None
        self._copy_stream = torch.cuda.Stream(self.device) if self.is_cuda else None
        self._post_stream = None
        self._pinned: dict[tuple, Any] = {}
        self._post_host: dict[tuple, Any] = {}
        self.last_timings: dict[str, float] = {}
        self.info = {
            "path": str(path) if path else None,
            "backend": "torch",
            "sha256": sha,
            "imgsz": self.imgsz[0],
            "providers": [f"torch-{torch.__version__}", str(self.device), "fp16" if self.half else "fp32"]
            + (["cuda-graph"] if self.use_graph else []),
            "format": meta.get("format"),
        }
        if self.is_cuda:
            torch.backends.cudnn.benchmark = True

    # -- helpers ------------------------------------------------------------------------------
    def _forward(self, x):
        """Raw model output (B, 4+nc, A) for a normalized input batch (B, 3, H, W)."""
        y = self.model(x)
        if isinstance(y, (list, tuple)):
            y = y[0]
        if isinstance(y, dict):  # some heads return dicts in eval mode
            y = next(iter(y.values()))
        return y

    def forward_raw(self, x):
        """Model only, on an already-letterboxed batch (CUDA-graph replay when enabled and the batch fits)."""
        torch = self.torch
        b = x.shape[0]
        with torch.inference_mode():
            if self.use_graph and b <= self.batch and tuple(x.shape[2:]) == self.imgsz:
                if self._graph is None:
                    self._capture()
                size = next(k for k in self._graphs if k >= b)  # the smallest captured batch that fits
                if x.data_ptr() != self._static_in.data_ptr():  # else preprocess_gpu wrote the batch there
                    self._static_in[:b].copy_(x)
                g, out = self._graphs[size]
                g.replay()
                return out[:b]
            return self._forward(x.to(self.dtype).contiguous(memory_format=self.memory_format))

    def graph_sizes(self) -> list[int]:
        """Batch sizes with a CUDA graph of their own. A graph always computes its full batch, so a batch of 6
        frames (a few paced cameras) replayed on the batch-64 graph costs 64 frames of GPU time (measured: 64
        cameras paced at 25 fps kept the H200 97 % busy for 1,600 frames/s, against 4,100 images/s model-only).
        Sizes 1, 2, 4, 8, then every multiple of 8 up to ``batch``, each batch replayed on the smallest that
        fits (measured on the H200, benchmarks/README.md: 64 paced cameras for 10 minutes at 1,599 frames/s with
        the GPU 66 % busy instead of 97 %). ``POCKIT_GRAPH_SIZES=0``: the full batch only (one graph, less
        capture time and memory)."""
        import os

        b = self.batch
        if os.environ.get("POCKIT_GRAPH_SIZES") == "0":
            return [b]
        return sorted({k for k in (1, 2, 4, *range(8, b + 1, 8)) if k <= b} | {b})

    def _capture(self) -> None:
        """Capture one CUDA graph per :meth:`graph_sizes` (largest first, sharing one memory pool and one input
        buffer). Done once, before any other GPU work of this detector runs on another thread."""
        torch = self.torch
        h, w = self.imgsz
        self._static_in = torch.full((self.batch, 3, h, w), PAD_VALUE / 255.0, device=self.device, dtype=self.dtype)
        self._static_in = self._static_in.contiguous(memory_format=self.memory_format)
        sizes = sorted(self.graph_sizes(), reverse=True)
        s = torch.cuda.Stream(self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        self._graphs = {}
        self._graph_keep = []
        pool = None
        for k in sizes:
            # warm-up at this very size on a side stream (cuDNN autotune, lazy init), then capture at once:
            # Ultralytics' Detect head rebuilds its anchors from a CPU stride tensor whenever the input shape
            # changes (batch included), a host-to-device copy that must not happen inside a capture
            with torch.cuda.stream(s), torch.inference_mode():
                for _ in range(2 if k == sizes[0] else 1):
                    self._forward(self._static_in[:k])
            torch.cuda.current_stream(self.device).wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool), torch.inference_mode():
                out = self._forward(self._static_in[:k])
            pool = g.pool() if pool is None else pool
            self._graphs[k] = (g, out)
            # the graph reads the head's anchors at their captured addresses: keep those tensors alive after
            # the next size's warm-up replaces them on the module
            self._graph_keep.append([t for m in self.model.modules() for t in (getattr(m, "anchors", None),
                                     getattr(m, "strides", None)) if isinstance(t, torch.Tensor)])
        self._graphs = dict(sorted(self._graphs.items()))  # smallest first: forward_raw takes the first that fits
        self._graph, self._static_out = self._graphs[self.batch]
        log.info("captured CUDA graphs at batch sizes %s, %dx%d", list(self._graphs), h, w)

    def warmup(self, n: int = 1) -> None:
        """Run ``n`` small batches (cuDNN autotuning), then capture the CUDA graph."""
        h, w = self.imgsz
        img = np.full((h, w, 3), PAD_VALUE, np.uint8)
        for _ in range(max(1, int(n))):
            self.detect([img] * min(self.batch, 2))
        if self.use_graph and self._graph is None:
            self._capture()

    def _pinned_buffer(self, shape: tuple) -> Any:
        buf = self._pinned.get(shape)
        if buf is None:
            if len(self._pinned) > 8:  # bounded: frames of many different sizes
                self._pinned.clear()
            buf = self.torch.empty(shape, dtype=self.torch.uint8, pin_memory=self.is_cuda)
            self._pinned[shape] = buf
        return buf

    # -- the three stages, usable separately by the multi-stream pipeline --------------------
    def upload(self, images: Sequence[Any], pinned: bool = False):
        """Frames (numpy HxWx3 uint8 BGR, or uint8 CUDA tensors) -> list of GPU uint8 HWC tensors.

        ``pinned=True``: the arrays already live in page-locked memory (pockit's frame pool registers its
        block with CUDA), so each is copied to the GPU asynchronously as is, with no staging copy."""
        torch = self.torch
        if pinned and self.is_cuda and stream_ok(images):
            fast = self._upload_pinned(images)
            if fast is not None:
                return fast
        out = []
        stream = self._copy_stream
        ctx = torch.cuda.stream(stream) if stream is not None else _null()
        with ctx:
            # group same-shape frames into one pinned staging copy
            for i, im in enumerate(images):
                if isinstance(im, torch.Tensor):
                    out.append(im.to(self.device, non_blocking=True))
                    continue
                if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or not (
                        (im.ndim == 3 and im.shape[2] == 3) or (self.accepts_nv12 and _is_nv12(im))):
                    raise ValueError(
                        f"image {i}: expected an HxWx3 uint8 BGR numpy array"
                        f"{' (or an NV12 plane)' if self.accepts_nv12 else ''}, got {type(im).__name__} "
                        f"{getattr(im, 'dtype', '')} {getattr(im, 'shape', None)}"
                    )
                if self.is_cuda:
                    t = torch.from_numpy(np.ascontiguousarray(im))
                    if not pinned and not t.is_pinned():
                        staged = torch.empty(t.shape, dtype=torch.uint8, pin_memory=True)
                        staged.copy_(t)
                        t = staged
                    out.append(t.to(self.device, non_blocking=True))
                else:
                    out.append(torch.from_numpy(np.ascontiguousarray(im)))
        if stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(stream)
            for t in out:
                t.record_stream(torch.cuda.current_stream(self.device))
        return out

    def _upload_pinned(self, images: Sequence[np.ndarray]):
        """Frames living in registered page-locked memory -> GPU tensors, one cudaMemcpyAsync each, all
        enqueued without releasing the GIL (see :func:`_cudart`); None when that runtime is unavailable."""
        lib = _cudart()
        if lib is None:
            return None
        torch = self.torch
        stream = self._copy_stream
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape, []).append(i)
        out: list[Any] = [None] * len(images)
        dsts = []
        with torch.cuda.stream(stream):
            for shape, idx in groups.items():
                dst = torch.empty((len(idx), *shape), dtype=torch.uint8, device=self.device)
                dsts.append(dst)
                nbytes = int(np.prod(shape))
                base, handle = dst.data_ptr(), stream.cuda_stream
                if lib.cudaSetDevice(self.device.index or 0) != 0:
                    return None
                for j, i in enumerate(idx):
                    rc = lib.cudaMemcpyAsync(base + j * nbytes, images[i].ctypes.data, nbytes, 1, handle)
                    if rc != 0:
                        raise RuntimeError(f"cudaMemcpyAsync of frame {i} failed with CUDA error {rc}")
                    out[i] = dst[j]
        cur = torch.cuda.current_stream(self.device)
        cur.wait_stream(stream)
        for dst in dsts:
            dst.record_stream(cur)
        return out

    def preprocess_gpu(self, frames, out=None):
        """GPU uint8 HWC BGR frames (or NV12 (H*3/2, W) planes, ``accepts_nv12``) -> (B, 3, H, W) normalized
        RGB letterboxed batch + per-frame info.

        ``out``: a (B, 3, H, W) tensor of the model's dtype and layout to write the batch into (the CUDA graph's
        own input buffer: no channels-last copy and no copy of the batch into it afterwards)."""
        torch = self.torch
        import torch.nn.functional as F

        th, tw = self.imgsz
        b = len(frames)
        infos: list[LetterboxInfo] = []
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            nv12 = f.ndim == 2
            h, w = (int(f.shape[0]) * 2 // 3 if nv12 else int(f.shape[0])), int(f.shape[1])
            infos.append(letterbox_geometry(h, w, th, tw))
            groups.setdefault((h, w, nv12), []).append(i)
        if out is None:
            x = torch.full((b, 3, th, tw), PAD_VALUE / 255.0, device=self.device, dtype=self.dtype)
        else:
            x = out.fill_(PAD_VALUE / 255.0)
        for (h, w, nv12), idx in groups.items():
            info = infos[idx[0]]
            nh, nw = round(h * info.ratio), round(w * info.ratio)
            left, top = info.pad
            src = torch.stack([frames[i] for i in idx]) if len(idx) > 1 else frames[idx[0]][None]
            if nv12:  # NVDEC's planes as they came: colour conversion (and the 1/255) here, on the GPU
                val = nv12_to_rgb(src, self.dtype, 1.0 / 255.0)
            else:
                val = src.permute(0, 3, 1, 2).flip(1).to(self.dtype).mul_(1.0 / 255.0)  # BGR -> RGB, NCHW, 0..1
            if (nh, nw) != (h, w):
                val = F.interpolate(val, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
            if idx == list(range(idx[0], idx[0] + len(idx))):  # the usual case: one frame size, in order
                x[idx[0] : idx[0] + len(idx), :, top : top + nh, left : left + nw] = val
            else:  # the index goes over from page-locked memory: a pageable copy would wait for the GPU
                sel = torch.tensor(idx, dtype=torch.long, pin_memory=self.is_cuda).to(self.device, non_blocking=True)
                x[sel, :, top : top + nh, left : left + nw] = val
        if out is not None:
            return x, infos
        return x.contiguous(memory_format=self.memory_format), infos

    #: batches up to this size are post-processed on the host, larger ones on the GPU (measured on an H200,
    #: benchmarks/README.md: one stream 400 vs 302 frames/s with host NMS; 64 streams 2,015 vs 1,425 with GPU NMS)
    HOST_NMS_MAX_BATCH = 4

    def postprocess(self, pred, infos: Sequence[LetterboxInfo]) -> list[Detections]:
        """Raw predictions -> Detections: small batches on the host, large ones on the GPU
        (``POCKIT_HOST_NMS=1`` / ``0`` forces one or the other)."""
        import os

        force = os.environ.get("POCKIT_HOST_NMS")
        host = force == "1" if force in ("0", "1") else len(infos) <= self.HOST_NMS_MAX_BATCH
        return self.postprocess_host(pred, infos) if host else self.postprocess_gpu(pred, infos)

    def postprocess_host(self, pred, infos: Sequence[LetterboxInfo]) -> list[Detections]:
        """Raw (B, 4+nc, A) predictions -> per-frame Detections, NMS in numpy on the host.

        The GPU reduces the class scores to one (score, class) per anchor and the batch comes over in one
        copy (B x 6 x A floats); thresholding and class-aware NMS then run in numpy with the semantics of
        :func:`pockit.inference.postprocess.postprocess` (Ultralytics': best class per box, ``score > conf``,
        class filter on the best class, at most ``max_nms`` candidates per image). Two dozen small GPU
        calls each release and re-take the GIL; with decode threads in the same process each re-take can
        wait, which made the GPU-side NMS the pipeline's slowest stage."""
        from .postprocess import batched_nms, xywh2xyxy
        from .preprocess import scale_boxes

        torch = self.torch
        p = pred.float()
        sc, cl = p[:, 4:, :].max(1)  # (B, A)
        packed = torch.cat([p[:, :4, :], sc[:, None, :], cl[:, None, :].float()], 1)  # (B, 6, A)
        if self.is_cuda:
            key = tuple(packed.shape)
            host = self._post_host.get(key)
            if host is None:
                host = self._post_host[key] = torch.empty(key, dtype=torch.float32, pin_memory=True)
            host.copy_(packed, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            arr = host.numpy()
        else:
            arr = packed.numpy()
        filt = None if self.class_filter is None else np.asarray(self.class_filter, np.float32)
        out = []
        for i, info in enumerate(infos):
            s = arr[i, 4]
            m = s > self.conf
            if filt is not None:
                m &= np.isin(arr[i, 5], filt)
            idx = np.flatnonzero(m)
            scores = s[idx].astype(np.float32)
            if len(idx) > self.max_nms:
                top = np.argsort(-scores, kind="stable")[: self.max_nms]
                idx, scores = idx[top], scores[top]
            boxes = xywh2xyxy(np.ascontiguousarray(arr[i, :4][:, idx].T, np.float32))
            cls = arr[i, 5, idx].astype(np.int32)
            keep = batched_nms(boxes, scores, cls, self.iou)[: self.max_det]
            out.append(Detections(scale_boxes(boxes[keep], info), scores[keep], cls[keep],
                                  class_names=self.class_names))
        return out

    def postprocess_gpu(self, pred, infos: Sequence[LetterboxInfo]) -> list[Detections]:
        """Raw (B, 4+nc, A) predictions -> per-frame Detections (one batched NMS for the whole batch)."""
        torch = self.torch
        from torchvision.ops import batched_nms

        b = pred.shape[0]
        p = pred.float().transpose(1, 2)  # (B, A, 4+nc)
        boxes_xywh, cls_scores = p[..., :4], p[..., 4:]
        scores, cls = cls_scores.max(-1)  # (B, A): one label per box, its best class
        cand = scores > self.conf
        if self.class_filter is not None:  # filter on the best class, like Ultralytics
            allowed = torch.zeros(cls_scores.shape[-1], dtype=torch.bool, device=p.device)
            allowed[self.class_filter] = True
            cand &= allowed[cls]
        img_idx, anchor_idx = cand.nonzero(as_tuple=True)  # sync point
        sc = scores[img_idx, anchor_idx]
        if sc.numel() > self.max_nms * b:  # Ultralytics caps candidates per image; cap batch-wide as well
            top = sc.topk(self.max_nms * b).indices
            img_idx, anchor_idx, sc = img_idx[top], anchor_idx[top], sc[top]
        xywh = boxes_xywh[img_idx, anchor_idx]
        xyxy = torch.cat([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        cl = cls[img_idx, anchor_idx]
        nc = max(cls_scores.shape[-1], 1)
        keep = batched_nms(xyxy, sc, img_idx * nc + cl, self.iou)  # sorted by score, descending
        img_k = img_idx[keep]
        # max_det per image: rank within image among kept (keep is score-sorted)
        order = torch.argsort(img_k, stable=True)
        keep, img_k = keep[order], img_k[order]
        counts = torch.bincount(img_k, minlength=b)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(keep), device=p.device) - starts[img_k]
        sel = rank < self.max_det
        keep, img_k = keep[sel], img_k[sel]
        bx = xyxy[keep]
        # map back to original pixels: per-image pad/ratio/clip as tensors
        meta = torch.tensor(
            [[i.pad[0], i.pad[1], i.ratio, i.orig_shape[1], i.orig_shape[0]] for i in infos],
            dtype=torch.float32, pin_memory=self.is_cuda,
        ).to(p.device, non_blocking=True)[img_k]
        bx = (bx - meta[:, [0, 1, 0, 1]]) / meta[:, 2:3]
        bx = torch.minimum(bx.clamp(min=0), meta[:, [3, 4, 3, 4]])
        # one device-to-host copy for the whole batch (each copy is a sync and a GIL round trip)
        packed = torch.cat([bx.float(), sc[keep, None].float(), cl[keep, None].float(), img_k[:, None].float()], 1)
        packed = packed.cpu().numpy()
        out_boxes = np.ascontiguousarray(packed[:, :4], np.float32)
        out_scores = np.ascontiguousarray(packed[:, 4], np.float32)
        out_cls = packed[:, 5].astype(np.int32)
        counts = np.bincount(packed[:, 6].astype(np.int64), minlength=b)
        res, s = [], 0
        for i in range(b):
            e = s + int(counts[i])
            res.append(Detections(out_boxes[s:e], out_scores[s:e], out_cls[s:e], class_names=self.class_names))
            s = e
        return res

    # -- two-phase API for pipelines: launch on one thread, finish on another ------------------
    def launch(self, images: Sequence[Any], pinned: bool = False) -> Pending:
        """Enqueue upload + letterbox + model for one batch (<= ``batch`` frames); returns at once.

        The GPU works on it while the caller gathers the next batch; :meth:`finish` (possibly on
        another thread) waits for it and runs NMS on a separate CUDA stream.
        """
        if len(images) > self.batch:
            raise ValueError(f"launch takes at most batch={self.batch} frames, got {len(images)}")
        torch = self.torch
        with torch.inference_mode():
            frames = self.upload(images, pinned=pinned)
            into = None
            if self.use_graph:  # the batch goes straight into the graph's input buffer
                if self._graph is None:
                    self._capture()
                into = self._static_in[: len(images)]
            x, infos = self.preprocess_gpu(frames, out=into)
            pred = self.forward_raw(x)
            if self._graph is not None:
                pred = pred.clone()  # the graph's output buffer is overwritten by the next replay
            event = None
            if self.is_cuda:
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(self.device))
        return Pending(pred, infos, event)

    def finish(self, pending: Pending) -> list[Detections]:
        """Wait for a launched batch and post-process it -> list of Detections (launch order).

        ``last_finish_timings``: seconds spent waiting for the GPU to finish the batch's model ('inference')
        and in NMS + the copy to the host ('postprocess'), for the pipeline's per-stage times."""
        torch = self.torch
        t0 = time.perf_counter()
        if not self.is_cuda:
            with torch.inference_mode():
                out = self.postprocess(pending.pred, pending.infos)
            self.last_finish_timings = {"inference": 0.0, "postprocess": time.perf_counter() - t0}
            return out
        if self._post_stream is None:
            self._post_stream = self._make_post_stream()
        pending.event.synchronize()  # the model has run (the GIL is released while waiting); NMS syncs anyway
        t1 = time.perf_counter()
        with torch.cuda.stream(self._post_stream), torch.inference_mode():
            self._post_stream.wait_event(pending.event)
            pending.pred.record_stream(self._post_stream)
            out = self.postprocess(pending.pred, pending.infos)
        self.last_finish_timings = {"inference": t1 - t0, "postprocess": time.perf_counter() - t1}
        return out

    def _make_post_stream(self):
        """The stream NMS runs on: the highest priority the device has (``POCKIT_POST_PRIORITY=0``: normal).

        While batch N is post-processed, batch N+1's model (one CUDA graph) already fills the GPU; at the same
        priority, NMS's small kernels (and the host syncs between them) queue behind N+1's blocks. A
        higher-priority stream has its kernels scheduled ahead of the model's pending blocks. Measured on an
        H200, same call: 2,723 vs 2,612 frames/s at 64 streams, capture->tracked p50 62 vs 80 ms
        (benchmarks/README.md, sixth session)."""
        import os

        torch = self.torch
        if os.environ.get("POCKIT_POST_PRIORITY") == "0":
            return torch.cuda.Stream(self.device)
        try:  # CUDA: lower is more urgent; the range is (0, -5) on recent GPUs
            hi = min(torch.cuda.Stream.priority_range())
        except Exception:  # noqa: BLE001 - an older torch: the default priority
            return torch.cuda.Stream(self.device)
        return torch.cuda.Stream(self.device, priority=hi)

    # -- the Detector interface ----------------------------------------------------------------
    def detect(self, images: Sequence[Any]) -> list[Detections]:
        """Detect on a list of frames (any sizes); long lists are split into ``batch``-sized calls."""
        if len(images) == 0:
            return []
        torch = self.torch
        out: list[Detections] = []
        tim = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        for s in range(0, len(images), self.batch):
            chunk = images[s : s + self.batch]
            t0 = time.perf_counter()
            with torch.inference_mode():
                x, infos = self.preprocess_gpu(self.upload(chunk))
                self._sync()
                t1 = time.perf_counter()
                pred = self.forward_raw(x)
                self._sync()
                t2 = time.perf_counter()
                out.extend(self.postprocess(pred, infos))
            t3 = time.perf_counter()
            tim["preprocess"] += t1 - t0
            tim["inference"] += t2 - t1
            tim["postprocess"] += t3 - t2
        self.last_timings = tim
        return out

    def __call__(self, images):
        return self.detect(images)

    def _sync(self) -> None:
        if self.is_cuda:
            self.torch.cuda.synchronize(self.device)


class Pending:
    """A launched batch: raw predictions on the GPU, letterbox infos, and the CUDA event to wait on."""

    __slots__ = ("event", "infos", "pred")

    def __init__(self, pred, infos, event) -> None:
        self.pred, self.infos, self.event = pred, infos, event

    def __len__(self) -> int:
        return len(self.infos)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
