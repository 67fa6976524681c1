"""INT8 calibration for TensorRT: images and videos of the customer's cameras through pockit's letterbox
(:class:`CalibrationData`), the calibrator TensorRT drives (:func:`make_calibrator`) and its cache file.

Nothing here imports ``tensorrt``: the calibrator's base class comes from the module passed in.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import BuildSpec

log = logging.getLogger("pockit.deploy.tensorrt")

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXT = (".mp4", ".avi", ".mkv", ".mov", ".ts", ".h264", ".h265")


# -- calibration data --------------------------------------------------------------------------
def calibration_files(sources: Sequence[str | Path]) -> list[Path]:
    """Expand folders/globs into image and video files (sorted, de-duplicated)."""
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXT + VIDEO_EXT)
        elif any(ch in str(s) for ch in "*?["):
            out += sorted(q for q in Path().glob(str(s)) if q.suffix.lower() in IMAGE_EXT + VIDEO_EXT)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXT + VIDEO_EXT:
                raise ValueError(f"calibration source {p}: not an image or video ({', '.join(IMAGE_EXT + VIDEO_EXT)})")
            out.append(p)
        else:
            raise FileNotFoundError(f"calibration source not found: {s}")
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


class CalibrationData:
    """Letterboxed (B, 3, H, W) float32 batches from images and videos, in a fixed order.

    Videos contribute up to ``frames_per_video`` frames spread evenly over their length. The last
    partial batch is dropped (TensorRT calibrates with full batches); ``skipped`` lists unreadable files.
    """

    def __init__(self, sources: Sequence[str | Path], batch: int = 8, imgsz: int = 640,
                 max_images: int = 512, frames_per_video: int = 64) -> None:
        if batch < 1:
            raise ValueError("calibration batch must be >= 1")
        self.files = calibration_files(sources)
        self.batch, self.imgsz, self.max_images, self.frames_per_video = batch, imgsz, max_images, frames_per_video
        self.skipped: list[str] = []
        if not self.files:
            raise ValueError(f"no calibration images or videos found in {list(map(str, sources))}")

    def frames(self) -> Iterator[np.ndarray]:
        import cv2

        n = 0
        for f in self.files:
            if n >= self.max_images:
                return
            if f.suffix.lower() in IMAGE_EXT:
                im = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if im is None:
                    self.skipped.append(str(f))
                    continue
                n += 1
                yield im
            else:
                cap = cv2.VideoCapture(str(f))
                total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
                want = min(self.frames_per_video, self.max_images - n)
                picks = set(np.linspace(0, max(total - 1, 0), num=want).astype(int).tolist()) if total else None
                i = got = 0
                while got < want:
                    ok, im = cap.read()
                    if not ok:
                        break
                    if picks is None or i in picks:
                        got += 1
                        n += 1
                        yield im
                    i += 1
                cap.release()
                if got == 0:
                    self.skipped.append(str(f))

    def batches(self) -> Iterator[np.ndarray]:
        from ...inference.preprocess import preprocess_batch

        buf: list[np.ndarray] = []
        for im in self.frames():
            buf.append(im)
            if len(buf) == self.batch:
                x, _ = preprocess_batch(buf, self.imgsz)
                yield np.ascontiguousarray(x, np.float32)
                buf = []
        if buf:
            log.info("calibration: dropped a last partial batch of %d frames", len(buf))

    def __len__(self) -> int:
        return sum(1 for _ in self.batches())


def calibration_cache_path(cache_dir: Path, model_sha256: str, spec: BuildSpec) -> Path:
    """Calibration caches depend on the model, the input size and the algorithm (not on the GPU)."""
    return cache_dir / f"calib-{model_sha256[:16]}-{spec.imgsz}-{spec.calib_algo}.cache"


def make_calibrator(trt, data: CalibrationData, cache_file: str | Path, algo: str = "entropy", memory: Any = None):
    """An ``IInt8EntropyCalibrator2`` / ``IInt8MinMaxCalibrator`` subclass instance over ``data``.

    ``memory``: device-memory helper with alloc/ptr/h2d/synchronize (default: torch or cuda-python).
    An existing cache file is returned to TensorRT and no image is read.
    """
    base = {"entropy": trt.IInt8EntropyCalibrator2, "minmax": trt.IInt8MinMaxCalibrator}[algo]
    cache_file = Path(cache_file)

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.data, self.cache_file = data, cache_file
            self._it: Iterator[np.ndarray] | None = None
            self._mem = memory
            self._buf = None
            self.batches_served = 0

        def get_batch_size(self) -> int:
            return data.batch

        def get_batch(self, names, *args):
            if self._it is None:
                self._it = data.batches()
            try:
                x = next(self._it)
            except StopIteration:
                return None
            if self._mem is None:
                from ...inference.tensorrt_backend import default_memory

                self._mem = default_memory()
            if self._buf is None:
                self._buf = self._mem.alloc(x.nbytes)
            self._mem.h2d(self._buf, x)
            self._mem.synchronize()
            self.batches_served += 1
            return [self._mem.ptr(self._buf)] * len(names)

        def read_calibration_cache(self):
            if self.cache_file.exists() and self.cache_file.stat().st_size > 0:
                log.info("INT8: using calibration cache %s", self.cache_file)
                return self.cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            self.cache_file.write_bytes(bytes(cache))
            log.info("INT8: wrote calibration cache %s", self.cache_file)

    return _Calibrator()


