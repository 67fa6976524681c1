"""Decode workers: threads that read sources into slots of the frame pool.

File sources are shared out over a few threads (each serves its sources in turn): dozens of decode threads
would fight the inference threads for the GIL, which every CUDA/ONNX call gives up and takes back. A live
camera gets a thread of its own, since reading it waits for the camera. A worker paces (``realtime``: a file
is read at its own frame rate, as a camera would deliver it), and when the pipeline is behind it either waits
for a free slot (offline analysis of files: nothing is skipped) or drops the frame and counts it
(``realtime`` and live cameras: the newest frame matters). Each frame becomes a small :class:`FrameRef`
(slot number, size, index, timestamps) on the ready queue; only those references travel, never the pixels.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .framepool import FramePool
from .timing import StageMeter, StageTimer

log = logging.getLogger("pockit.pipeline")


class FrameRef:
    __slots__ = ("h", "index", "nv12", "slot", "stream", "t_capture", "timestamp", "w")

    def __init__(self, stream: int, slot: int, h: int, w: int, index: int, timestamp: float, t_capture: float,
                 nv12: bool = False):
        self.stream, self.slot, self.h, self.w = stream, slot, h, w
        self.index, self.timestamp, self.t_capture = index, timestamp, t_capture
        self.nv12 = nv12  # the slot holds the HxW frame as NV12 (H*3/2 x W bytes), not BGR


class EndOfStream:
    __slots__ = ("stream",)

    def __init__(self, stream: int) -> None:
        self.stream = stream


class DecodeState:
    """One stream's decoding: its counters, its error and its own stop switch (its worker died...)."""

    def __init__(self, index: int, source, realtime: bool) -> None:
        self.index, self.source, self.realtime = index, source, realtime
        self.stop_me = threading.Event()
        self.frames = 0
        self.dropped = 0
        self.oversize = 0
        self.error: str | None = None
        self.done = False
        self.lag = 0.0  # realtime files: how far (s) behind its own clock the latest frame was handed over
        self.max_lag = 0.0
        self._it = None
        self._t0: float | None = None  # wall clock of timestamp 0 (realtime files)
        self._pending = None  # a frame read but not yet due (realtime files)


class DecodeWorker(threading.Thread):
    """Reads its streams' sources into ``pool`` slots and puts :class:`FrameRef` on ``ready``, then an
    :class:`EndOfStream` per stream."""

    def __init__(self, states: list[DecodeState], pool: FramePool, ready, *, stop: threading.Event,
                 timer: StageTimer, meter: StageMeter, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.states, self.pool, self.ready = states, pool, ready
        self.stop_all, self.timer, self.meter = stop, timer, meter

    def run(self) -> None:
        live = list(self.states)
        try:
            while live:
                progressed, next_due = False, None
                for st in list(live):
                    if self.stop_all.is_set() or st.stop_me.is_set():
                        self._end(st, live)
                        continue
                    r = self._step(st)
                    if r is None:  # ended
                        self._end(st, live)
                    elif r is True:
                        progressed = True
                    else:  # a realtime frame not due yet: when it is
                        next_due = r if next_due is None else min(next_due, r)
                flush = getattr(self.ready, "flush", None)
                if flush is not None:  # a decode process sends a round's frames as one message
                    flush()
                if not progressed and live and next_due is not None:
                    time.sleep(min(max(next_due - time.monotonic(), 0.0), 0.005))
        finally:
            for st in live:
                self._end(st, live)

    def _end(self, st: DecodeState, live: list) -> None:
        if not st.done:
            st.done = True
            self.ready.put(EndOfStream(st.index))
        if st in live:
            live.remove(st)

    def _step(self, st: DecodeState):
        """Read and hand over one frame of ``st``: True; None at its end; a float (monotonic time) when
        the next frame of a realtime file is not due yet."""
        if not st.realtime and self._into_ok(st):
            return self._step_into(st)
        try:
            if st._it is None:
                st._it = iter(st.source)
            frame = st._pending
            t0 = time.perf_counter()
            if frame is None:
                try:
                    frame = next(st._it)
                except StopIteration:
                    return None
                self.timer.add("decode", time.perf_counter() - t0)
            t1 = time.perf_counter()
            if st.realtime and not st.source.live:  # a file played at its own rate
                now = time.monotonic()
                if st._t0 is None:
                    st._t0 = now - frame.timestamp
                due = st._t0 + frame.timestamp
                if due > now:
                    st._pending = frame
                    return due
                st.lag = now - due  # decoding slower than the camera's rate: the stream falls behind
                st.max_lag = max(st.max_lag, st.lag)
            st._pending = None
            h, w = frame.image.shape[:2]
            if not self.pool.fits(h, w):
                self._oversize(st, h, w)
                return True
            slot = self._slot(st)
            t2 = time.perf_counter()
            if slot is None:
                if self.stop_all.is_set() or st.stop_me.is_set():
                    return None
                st.dropped += 1  # realtime and no free slot: the pipeline is behind, drop this frame
                self.meter.add(busy=t1 - t0, wait=t2 - t1)
                return True
            self.pool.view(slot, h, w)[...] = frame.image
            self.ready.put(FrameRef(st.index, slot, h, w, frame.index, frame.timestamp, time.monotonic()))
            st.frames += 1
            self.meter.add(busy=(t1 - t0) + (time.perf_counter() - t2), wait=t2 - t1, items=1)
            return True
        except Exception as e:  # a broken source ends that stream, not the run
            return self._failed(st, e)

    def _oversize(self, st: DecodeState, h: int, w: int) -> None:
        """A frame larger than the pool's slots: dropped and counted, said once per stream."""
        st.oversize += 1
        st.dropped += 1
        if st.oversize == 1:
            log.error("source %s: a %dx%d frame does not fit the frame pool's %d-byte slots; such frames "
                      "are dropped (set the source's resize)", st.source.source_id, w, h, self.pool.slot_bytes)

    @staticmethod
    def _failed(st: DecodeState, e: Exception) -> None:
        st.error = f"{type(e).__name__}: {e}"
        log.error("source %s failed: %s", st.source.source_id, st.error)

    def _into_ok(self, st: DecodeState) -> bool:
        """Can ``st``'s frames be decoded straight into a pool slot? A video file source (it has ``into``),
        not resized, whose frame size is known and fits the slots."""
        src = st.source
        size = getattr(src, "native_size", None)
        return (hasattr(src, "into") and not getattr(src, "live", False) and size is not None
                and getattr(src, "resize", None) in (None, size)
                and self.pool.fits(size[1], size[0]))

    def _step_into(self, st: DecodeState):
        """One frame of an unpaced file decoded straight into a free slot (no per-frame allocation, no copy):
        the slot is taken first (waiting for one, as offline analysis does), the source's ``into`` points at
        it while it decodes. A frame that came out elsewhere (its size changed) is copied, or dropped as
        oversize; a slot not used goes back."""
        slot = None
        try:
            if st._it is None:
                st._it = iter(st.source)
            t0 = time.perf_counter()
            slot = self._slot(st)
            t1 = time.perf_counter()
            if slot is None:  # stopped while waiting
                return None
            w, h = st.source.native_size
            view = self.pool.view(slot, h, w)
            st.source.into = view
            try:
                frame = next(st._it)
            except StopIteration:
                self.pool.release(slot)
                slot = None
                return None
            finally:
                st.source.into = None
            self.timer.add("decode", time.perf_counter() - t1)
            img = frame.image
            h, w = img.shape[:2]
            in_slot = np.may_share_memory(img, view)
            if not in_slot:  # decoded elsewhere (its size changed)
                if not self.pool.fits(h, w):
                    self._oversize(st, h, w)
                    self.pool.release(slot)
                    slot = None
                    return True
                self.pool.view(slot, h, w)[...] = img
            nv12 = in_slot and frame.meta.get("pixel_format") == "nv12"  # left unconverted (NVDEC, model)
            self.ready.put(FrameRef(st.index, slot, h, w, frame.index, frame.timestamp, time.monotonic(), nv12))
            slot = None
            st.frames += 1
            self.meter.add(busy=time.perf_counter() - t1, wait=t1 - t0, items=1)
            return True
        except Exception as e:  # a broken source ends that stream, not the run
            if slot is not None:
                self.pool.release(slot)
            return self._failed(st, e)

    def _slot(self, st: DecodeState) -> int | None:
        if st.realtime:
            return self.pool.acquire(timeout=0)
        while not (self.stop_all.is_set() or st.stop_me.is_set()):
            slot = self.pool.acquire(timeout=0.1)
            if slot is not None:
                return slot
        return None


def make_decode_workers(states: list[DecodeState], pool: FramePool, ready, *, stop, timer, meter,
                        threads: int) -> list[DecodeWorker]:
    """Live cameras one thread each; files shared round-robin over ``threads`` threads."""
    workers = []
    files = [s for s in states if not s.source.live]
    for s in states:
        if s.source.live:
            workers.append(DecodeWorker([s], pool, ready, stop=stop, timer=timer, meter=meter,
                                        name=f"decode-{s.source.source_id}"))
    n = max(1, min(threads, len(files))) if files else 0
    for k in range(n):
        mine = files[k::n]
        workers.append(DecodeWorker(mine, pool, ready, stop=stop, timer=timer, meter=meter,
                                    name=f"decode-files-{k}"))
    return workers
