"""Common machinery of all sources: errors, the Source base class, fps sampling, resizing."""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from ..core.frame import Frame

log = logging.getLogger("pockit.sources")

STAT_KEYS = ("read", "yielded", "skipped", "corrupt", "dropped", "reconnects")


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message names the uri and what to check."""


def safe_id(text: str) -> str:
    """A source id usable as a file name: no slashes or spaces."""
    s = re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(text)).strip("_.")
    return s or "source"


class FpsSampler:
    """Keep frames on an even time grid of 1/fps seconds, judged by timestamp (not by index modulo).

    The first frame anchors the grid; a frame is kept when its timestamp reaches the next grid point.
    After a gap (dropped frames) the grid jumps forward by whole periods, keeping its phase.
    """

    EPS = 1e-6

    def __init__(self, fps: float | None):
        if fps is not None and not fps > 0:
            raise SourceError(f"target fps must be > 0, got {fps!r}")
        self.period = None if fps is None else 1.0 / float(fps)
        self.anchor: float | None = None
        self.k = 0

    def keep(self, ts: float) -> bool:
        if self.period is None:
            return True
        if self.anchor is None:
            self.anchor, self.k = ts, 1
            return True
        nxt = self.anchor + self.k * self.period
        if ts < nxt - self.EPS:
            return False
        # advance to the first grid point strictly after ts
        self.k = int(math.floor((ts - self.anchor + self.EPS) / self.period)) + 1
        return True


def expected_count(timestamps: Iterator[float] | list[float], fps: float | None, max_frames: int | None) -> int:
    """How many of these timestamps a FpsSampler keeps, capped by max_frames."""
    s = FpsSampler(fps)
    n = 0
    for t in timestamps:
        if max_frames is not None and n >= max_frames:
            break
        if s.keep(t):
            n += 1
    return n


def check_resize(resize: Any) -> tuple[int, int] | None:
    if resize is None:
        return None
    try:
        w, h = (int(v) for v in resize)
    except (TypeError, ValueError):
        raise SourceError(f"resize must be (width, height), got {resize!r}") from None
    if w <= 0 or h <= 0:
        raise SourceError(f"resize must be positive (width, height), got {resize!r}")
    return w, h


def resize_image(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (img.shape[1], img.shape[0]) == size:
        return img
    shrink = size[0] * size[1] < img.shape[0] * img.shape[1]
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def as_bgr(img: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 BGR from whatever a decoder returned (gray, BGRA, 16-bit)."""
    if img.dtype != np.uint8:
        top = float(np.iinfo(img.dtype).max) if img.dtype.kind in "ui" else 1.0  # floats: 0..1
        img = cv2.convertScaleAbs(img, alpha=255.0 / top)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img


class Source:
    """An iterable of :class:`pockit.core.Frame`; use as a context manager.

    Attributes: ``uri``, ``kind``, ``source_id``, ``fps`` (native, None if unknown), ``size`` (output
    (w, h) after resize; None until known), ``native_size``, ``total`` (expected frames after
    start/fps/max_frames, None for live or endless sources), ``stats`` (read, yielded, skipped,
    corrupt, dropped, reconnects).
    Files and folders can be iterated again (a new pass from ``start``, counters reset); a live
    source is one continuous pass.
    Subclasses implement ``_frames()`` yielding ``(image, index, timestamp, meta)``.
    """

    kind = "source"
    live = False
    OPTIONS: dict[str, Any] = {}

    def __init__(self, uri: Any, *, source_id: str | None = None, fps: float | None = None,
                 max_frames: int | None = None, start: float = 0.0, loop: bool = False,
                 resize: Any = None, **options: Any):
        self.uri = str(uri)
        self.source_id = source_id or self.default_id()
        self.target_fps = None if fps is None else float(fps)
        FpsSampler(self.target_fps)  # validates
        if max_frames is not None and int(max_frames) < 1:
            raise SourceError(f"{self.uri}: max_frames must be >= 1, got {max_frames!r}")
        self.max_frames = None if max_frames is None else int(max_frames)
        if start is None or float(start) < 0:
            raise SourceError(f"{self.uri}: start must be >= 0 seconds, got {start!r}")
        self.start = float(start)
        self.loop = bool(loop)
        self.resize = check_resize(resize)
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise SourceError(f"{self.uri}: unknown option(s) {unknown} for a {self.kind} source; "
                              f"known options: {sorted(self.OPTIONS)}")
        self.options = {**self.OPTIONS, **options}
        self.fps: float | None = None
        self.native_size: tuple[int, int] | None = None
        self.size: tuple[int, int] | None = None
        self.total: int | None = None
        self.stats: dict[str, int] = {k: 0 for k in STAT_KEYS}
        self._closed = False
        self._iterating = False

    # -- to implement ------------------------------------------------------------------------
    def _frames(self) -> Iterator[tuple[np.ndarray, int, float, dict]]:
        raise NotImplementedError

    def default_id(self) -> str:
        return safe_id(self.uri)

    # -- public ------------------------------------------------------------------------------
    def _set_native_size(self, size: tuple[int, int] | None) -> None:
        self.native_size = size
        self.size = self.resize or size

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError(f"{self.uri}: source is closed")
        return self._iterate()

    def _iterate(self) -> Iterator[Frame]:
        sampler = FpsSampler(self.target_fps)
        yielded = 0
        if not self.live:  # each pass over a file/folder starts from the beginning: fresh counters
            self.stats = {k: 0 for k in STAT_KEYS}
        gen = self._frames()
        try:
            for img, index, ts, meta in gen:
                if not sampler.keep(ts):
                    self.stats["skipped"] += 1
                    continue
                img = resize_image(as_bgr(img), self.resize)
                self.size = (img.shape[1], img.shape[0])
                yielded += 1
                self.stats["yielded"] += 1
                yield Frame(image=img, index=int(index), timestamp=float(ts), source_id=self.source_id, meta=meta)
                if self.max_frames is not None and yielded >= self.max_frames:
                    return
        finally:
            gen.close()
        if yielded == 0 and not self._closed:
            raise SourceError(self._empty_message())

    def _empty_message(self) -> str:
        return (f"{self.uri}: the source produced no frames (read {self.stats['read']}, corrupt "
                f"{self.stats['corrupt']}, skipped {self.stats['skipped']}); check the file/stream and the "
                f"start={self.start} / fps / max_frames options")

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if not self._closed:
                self.close()
        except Exception:
            pass

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description (for run.json and reports)."""
        w, h = self.size or (None, None)
        return {"id": self.source_id, "uri": self.uri, "kind": self.kind, "live": self.live, "fps": self.fps,
                "target_fps": self.target_fps, "width": w, "height": h, "total": self.total,
                "stats": dict(self.stats)}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(id={self.source_id!r}, uri={self.uri!r}, fps={self.fps}, size={self.size}, "
                f"total={self.total})")
