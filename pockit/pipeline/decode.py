"""Decode workers: one thread per source reads frames into slots of the frame pool.

A worker paces (``realtime``: a file is read at its own frame rate, as a camera would deliver it), and
when the pipeline is behind it either waits for a free slot (offline analysis of files: nothing is
skipped) or drops the frame and counts it (``realtime`` and live cameras: the newest frame matters).
Each frame becomes a small :class:`FrameRef` (slot number, size, index, timestamps) on the ready queue;
only those references travel, never the pixels.
"""
from __future__ import annotations

import logging
import threading
import time

from .framepool import FramePool
from .timing import StageMeter, StageTimer

log = logging.getLogger("pockit.pipeline")


class FrameRef:
    __slots__ = ("h", "index", "slot", "stream", "t_capture", "timestamp", "w")

    def __init__(self, stream: int, slot: int, h: int, w: int, index: int, timestamp: float, t_capture: float):
        self.stream, self.slot, self.h, self.w = stream, slot, h, w
        self.index, self.timestamp, self.t_capture = index, timestamp, t_capture


class EndOfStream:
    __slots__ = ("stream",)

    def __init__(self, stream: int) -> None:
        self.stream = stream


class DecodeWorker(threading.Thread):
    """Reads ``source`` into ``pool`` slots and puts :class:`FrameRef` on ``ready`` (then an EndOfStream)."""

    def __init__(self, index: int, source, pool: FramePool, ready, *, realtime: bool, stop: threading.Event,
                 timer: StageTimer, meter: StageMeter) -> None:
        super().__init__(name=f"decode-{source.source_id}", daemon=True)
        self.index, self.source, self.pool, self.ready = index, source, pool, ready
        self.realtime, self.stop_all, self.timer, self.meter = realtime, stop, timer, meter
        self.stop_me = threading.Event()  # this stream only (its worker died, its rules failed)
        self.frames = 0
        self.dropped = 0
        self.oversize = 0
        self.error: str | None = None

    def _stopped(self) -> bool:
        return self.stop_all.is_set() or self.stop_me.is_set()

    def run(self) -> None:
        it = iter(self.source)
        t_start = None
        try:
            while not self._stopped():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                self.timer.add("decode", t1 - t0)
                if self.realtime and not self.source.live:  # a file played at its own rate
                    now = time.monotonic()
                    if t_start is None:
                        t_start = now - frame.timestamp
                    due = t_start + frame.timestamp
                    if due > now:
                        time.sleep(due - now)
                h, w = frame.image.shape[:2]
                if not self.pool.fits(h, w):
                    self.oversize += 1
                    self.dropped += 1
                    if self.oversize == 1:
                        log.error("source %s: a %dx%d frame does not fit the frame pool's %d-byte slots; such "
                                  "frames are dropped (set the source's resize)", self.source.source_id, w, h,
                                  self.pool.slot_bytes)
                    continue
                slot = self._slot()
                t2 = time.perf_counter()
                if slot is None:
                    if self._stopped():
                        break
                    self.dropped += 1  # realtime and no free slot: the pipeline is behind, drop this frame
                    self.meter.add(busy=t1 - t0, wait=t2 - t1)
                    continue
                self.pool.view(slot, h, w)[...] = frame.image
                self.ready.put(FrameRef(self.index, slot, h, w, frame.index, frame.timestamp, time.monotonic()))
                self.frames += 1
                self.meter.add(busy=(t1 - t0) + (time.perf_counter() - t2), wait=t2 - t1, items=1)
        except Exception as e:  # a broken source ends that stream, not the run
            self.error = f"{type(e).__name__}: {e}"
            log.error("source %s failed: %s", self.source.source_id, self.error)
        finally:
            self.ready.put(EndOfStream(self.index))

    def _slot(self) -> int | None:
        if self.realtime:
            return self.pool.acquire(timeout=0)
        while not self._stopped():
            slot = self.pool.acquire(timeout=0.1)
            if slot is not None:
                return slot
        return None
