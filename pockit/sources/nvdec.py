"""Hardware video decode (NVDEC) for file sources, through NVIDIA's PyNvVideoCodec (``pip install "pockit[nvdec]"``).

:class:`NvdecCapture` looks like a ``cv2.VideoCapture`` to :class:`pockit.sources.files.VideoFileSource`
(``read``, ``grab``, ``get``, ``set``, ``release``), so timestamps, corrupt-frame handling, truncation
checks and looping stay the file source's own. NVDEC decodes on the GPU (H.264, HEVC, AV1, VP9 ... as the GPU
supports); the NV12 frame comes to page-locked host memory on a CUDA stream of its own and OpenCV converts it into
the frame-pool slot (``nvdec_convert: cpu``, the default), or PyNvVideoCodec converts to RGB on the GPU and the BGR
frame comes over (``gpu``). The CPU no longer decodes, which is what limits many-camera hosts at 1080p.

Selected with the source option ``decoder: nvdec``, or by ``auto`` for video files of 1080p-class frames when the
run's model is on CUDA (``VideoFileSource._choose_decoder``; measured on the lent H200, 64 cameras paced at 25 fps:
1080p 1,222 frames/s vs 739 with CPU decode; 768x576 slower than CPU decode, so smaller files stay on the CPU).
The pipeline reads NVDEC streams in threads of the inference process, in its CUDA context: in separate decode
processes each has a context of its own, which the GPU time-slices against the model's. On a Jetson, use a
GStreamer source with ``nvv4l2decoder`` instead (``pockit.sources.gstreamer``): PyNvVideoCodec is for discrete GPUs.
"""
from __future__ import annotations

import importlib.util
import logging

import cv2
import numpy as np

log = logging.getLogger("pockit.sources")

BATCH = 8


def nvdec_available() -> tuple[bool, str]:
    """(usable, why not): PyNvVideoCodec importable and a CUDA device visible through torch."""
    if importlib.util.find_spec("PyNvVideoCodec") is None:
        return False, "PyNvVideoCodec is not installed (pip install PyNvVideoCodec)"
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed (needed to hold NVDEC frames on the GPU)"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA device"
    except Exception as e:  # pragma: no cover - broken torch
        return False, f"torch: {e}"
    return True, ""


def _current_context() -> int:
    """The CUDA context torch uses (its primary context), so every decoder shares it instead of creating
    one context per camera (64 contexts time-slice the GPU); 0 (the decoder makes its own) if unknown.
    Asked through the driver library itself (``cuCtxGetCurrent``), after torch has made its context current
    on this thread, so no cuda-python package is needed."""
    try:
        import ctypes

        import torch

        torch.zeros(1, device="cuda")  # torch's primary context, current on this thread from here on
        lib = ctypes.CDLL("libcuda.so.1")
        ctx = ctypes.c_void_p()
        if lib.cuCtxGetCurrent(ctypes.byref(ctx)) == 0 and ctx.value:
            return int(ctx.value)
    except Exception:
        pass
    try:
        from cuda.bindings import driver

        err, ctx = driver.cuCtxGetCurrent()
        if int(err) == 0 and ctx is not None and int(ctx) != 0:
            return int(ctx)
    except Exception:
        pass
    return 0


class NvdecCapture:
    """A ``cv2.VideoCapture`` stand-in that decodes with NVDEC (see module docstring)."""

    def __init__(self, path: str, gpu_id: int = 0, prefetch: int = 16, convert: str | None = None) -> None:
        import os

        import PyNvVideoCodec as nvc
        import torch

        self._torch = torch
        self.path = path
        self.gpu_id = gpu_id
        # where NV12 becomes BGR: "cpu" (default: the NV12 frame, 1.5 bytes a pixel, comes over and OpenCV
        # converts it into the slot with the GIL released; measured faster in the pipeline) or "gpu"
        # (PyNvVideoCodec's kernel + a flip, then the BGR frame comes over). POCKIT_NVDEC_CONVERT overrides
        # (benchmarks)
        # "model" (opt-in, kept by the pipeline only when its detector takes NV12): a read into a frame-pool slot leaves the
        # NV12 bytes there as they are (no conversion here); the model converts on the GPU, the tracking worker
        # for the outputs. Reads without a slot still get BGR.
        self.convert = (os.environ.get("POCKIT_NVDEC_CONVERT") or convert or "cpu").lower()
        if self.convert not in ("gpu", "cpu", "model"):
            raise ValueError(f"NVDEC colour conversion must be 'gpu', 'cpu' or 'model', got {self.convert!r}")
        self.last_nv12 = False  # the last read() left NV12 in the caller's buffer (convert == "model")
        torch.cuda.init()
        color = nvc.OutputColorType.RGB if self.convert == "gpu" else nvc.OutputColorType.NATIVE
        ctx = _current_context()
        # a stream of its own, created non-blocking by torch: the decoder's copies and ours never wait for the
        # model's kernels, which run on the legacy default stream (PyNvVideoCodec's default, stream 0, would)
        self._stream = torch.cuda.Stream(torch.device("cuda", gpu_id))
        self._dec = nvc.ThreadedDecoder(path, buffer_size=prefetch, gpu_id=gpu_id, use_device_memory=True,
                                        cuda_context=ctx, cuda_stream=self._stream.cuda_stream,
                                        output_color_type=color)
        self._raw: list = []  # convert == "cpu": the current batch of NV12 frames (on the GPU)
        self._staging = None
        self._cudart = None
        if self.convert != "gpu":  # checked here, so a file source falls back to the CPU at open, not mid-run
            from ..inference.torch_backend import _cudart

            self._cudart = _cudart()
            if self._cudart is None:
                self._dec.end()
                raise RuntimeError("NVDEC with nvdec_convert cpu needs the CUDA runtime through ctypes "
                                   "(unset POCKIT_FAST_UPLOAD=0, or use nvdec_convert: gpu)")
        meta = self._dec.get_stream_metadata()
        self.fps = float(getattr(meta, "average_fps", 0) or getattr(meta, "avg_frame_rate", 0) or 0) or 25.0
        self.count = int(getattr(meta, "num_frames", 0) or 0)
        self.width = int(getattr(meta, "width", 0) or 0)
        self.height = int(getattr(meta, "height", 0) or 0)
        self.codec = str(getattr(meta, "codec_name", "") or "nvdec")
        self._gpu = None  # the current batch of BGR frames on the GPU (N x H x W x 3 uint8)
        self._next = 0
        self._pos = 0  # index of the next frame read()/grab() returns
        self._open = True
        self._eof = False

    # -- cv2.VideoCapture interface ---------------------------------------------------------------
    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self._open

    def _fill(self) -> None:
        """The next batch of decoded frames, converted to BGR on the GPU; they stay there until read."""
        if self._eof:
            return
        frames = self._dec.get_batch_frames(BATCH)
        if not frames:
            self._eof = True
            return
        torch = self._torch
        dev = torch.device("cuda", self.gpu_id)
        with torch.cuda.stream(self._stream):
            batch = torch.stack([torch.from_dlpack(f).to(dev) for f in frames])  # N x H x W x 3 RGB
            self._gpu = batch.flip(-1).contiguous()  # BGR, still on the GPU
        self._next = 0

    def _sync(self) -> None:
        """Wait for this source's stream by sleeping on a blocking-sync event instead of a stream synchronize,
        which spin-waits (CUDA's default while contexts < cores). Measured on an H200 (eighth GPU session): with
        NVDEC in 12 decode processes the host stayed 13.7 of 16 cores busy either way, and the throughput did not
        move (2,278 vs 2,249-2,361 frames/s at 32-64 streams): the spinning, if any, is not here."""
        ev = self._torch.cuda.Event(blocking=True)
        ev.record(self._stream)
        ev.synchronize()  # torch lets the GIL go while it waits

    def _copy_batch(self) -> bool:
        """The next batch of NV12 frames, all copied to page-locked host memory with one wait."""
        frames = [] if self._eof else self._dec.get_batch_frames(BATCH)
        self._next = 0
        if not frames:
            self._eof, self._raw = True, []
            return False
        h, w = self.height, self.width
        n = h * w * 3 // 2
        if self._staging is None or self._staging.shape[1] != n or self._staging.shape[0] < len(frames):
            rows = max(BATCH, len(frames))
            self._staging = self._torch.empty((rows, n), dtype=self._torch.uint8, pin_memory=True).numpy()
        for i, f in enumerate(frames):
            got = int(f.framesize())
            if got != n:
                raise RuntimeError(f"NVDEC output of {self.path} is not 8-bit NV12 ({got} bytes for {w}x{h}); "
                                   f"set the source option nvdec_convert: gpu")
            rc = self._cudart.cudaMemcpyAsync(self._staging[i].ctypes.data, int(f.GetPtrToPlane(0)), n, 2,
                                              self._stream.cuda_stream)
            if rc != 0:
                raise RuntimeError(f"copying an NVDEC frame to the host failed (CUDA error {rc})")
        self._sync()
        self._raw = frames
        return True

    def _read_nv12(self, image: np.ndarray | None):
        """convert == "cpu" / "model": the next NV12 frame (copied to page-locked host memory a batch at a time),
        converted to BGR by OpenCV into ``image`` (or a new array); "model" and an ``image`` of the frame's
        shape: the NV12 bytes go into its first H*W*3/2 bytes, unconverted (``last_nv12``)."""
        if self._next >= len(self._raw) and not self._copy_batch():
            return False, None
        i = self._next
        self._next += 1
        h, w = self.height, self.width
        fits = (image is not None and tuple(image.shape) == (h, w, 3) and image.dtype == np.uint8
                and image.flags.c_contiguous)
        self._pos += 1
        if fits and self.convert == "model" and h % 2 == 0 and w % 2 == 0:
            image.reshape(-1)[: self._staging.shape[1]] = self._staging[i]
            self.last_nv12 = True
            return True, image
        self.last_nv12 = False
        out = image if fits else np.empty((h, w, 3), np.uint8)
        cv2.cvtColor(self._staging[i].reshape(h * 3 // 2, w), cv2.COLOR_YUV2BGR_NV12, dst=out)
        return True, out

    def read(self, image: np.ndarray | None = None):
        """The next frame in host memory: copied from the GPU straight into ``image`` when it has the frame's
        shape (a frame-pool slot: page-locked, so the copy is a DMA), else into a new array."""
        if self.convert != "gpu":
            return self._read_nv12(image)
        if self._gpu is None or self._next >= len(self._gpu):
            self._gpu = None
            self._fill()
        if self._gpu is None:
            return False, None
        src = self._gpu[self._next]
        self._next += 1
        self._pos += 1
        torch = self._torch
        if (image is not None and tuple(image.shape) == tuple(src.shape) and image.dtype == np.uint8
                and image.flags.c_contiguous and image.flags.writeable):
            with torch.cuda.stream(self._stream):
                torch.from_numpy(image).copy_(src, non_blocking=True)
            self._sync()
            return True, image
        with torch.cuda.stream(self._stream):
            out = src.cpu().numpy()
        return True, out

    def grab(self) -> bool:
        ok, _ = self.read()
        return ok

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self.count)
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self.width)
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self.height)
        if prop == cv2.CAP_PROP_POS_FRAMES:
            return float(self._pos)
        if prop == cv2.CAP_PROP_POS_MSEC:  # of the last frame read, like OpenCV
            return max(self._pos - 1, 0) * 1000.0 / self.fps
        if prop == cv2.CAP_PROP_FOURCC:
            code = (self.codec.lower() + "    ")[:4]
            return float(int.from_bytes(code.encode("ascii", "replace"), "little"))
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES and int(value) == self._pos:
            return True
        return False  # no seeking: the file source decodes up to its start frame instead

    def rewind(self) -> bool:
        """Start the file again from its first frame on this decoder (a looped file's next pass).

        PyNvVideoCodec's ``reconfigure_decoder`` restarts the ThreadedDecoder on a decoder from its cache instead
        of a new CUVID parser, decoder and surface pool: making a new one took ~225 ms on the lent H200, and while
        it did, the decode process's other streams waited (benchmarks/README.md, fourteenth GPU session). False
        (the caller opens the file anew) without that method or with ``POCKIT_NVDEC_REWIND=0``; a failure here
        also falls back to opening anew. On the H200 (fifteenth GPU session): 1.3-2.5 ms, the same frames."""
        import os

        if (not self._open or os.environ.get("POCKIT_NVDEC_REWIND") == "0"
                or not hasattr(self._dec, "reconfigure_decoder")):
            return False
        self._gpu, self._raw = None, []  # the previous pass's frames live in the decoder's buffers: let go first
        self._dec.reconfigure_decoder(self.path, 0)
        self._next = self._pos = 0
        self._eof = False
        return True

    def release(self) -> None:
        if self._open:
            self._open = False
            self._gpu, self._raw = None, []  # frames of the decoder's buffers: let go before it ends
            try:
                self._dec.end()
            except Exception:
                pass
