"""Decode processes: file sources decoded in child processes that write straight into the shared frame pool.

Decoding in threads of the inference process makes every decoded frame take the GIL that the inference
threads need between CUDA calls; with dozens of streams the inference process then spends its time handing
the GIL over (measured: the limiting stage at 32-64 streams). Here each decode process opens its share of
the file sources itself, runs the same :class:`~.decode.DecodeWorker` (pacing, waiting or dropping, counting),
writes pixels into pool slots it owns, and sends only small tuples (stream, slot, size, index, timestamps),
one message per round over its streams, on a pipe of its own (:mod:`.channels`), as Frigate queues only frame
names. Slots come back to the process that owns them over another pipe when tracking/rules are done with them,
so the pool keeps its bound: the slots are split between the decode processes (in proportion to their
streams) once, at the start.

A decode process that dies is noticed by :meth:`DecodeProcesses.check`: what it sent before is analysed,
then its streams end with an error naming them, and the other streams go on.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import struct
import threading
import time
from collections import deque
from typing import Any

from .channels import Receiver, Sender
from .decode import DecodeState, DecodeWorker, EndOfStream, FrameRef
from .timing import StageMeter, StageTimer

log = logging.getLogger("pockit.pipeline")
_SLOTS = "<{}i"  # slot numbers going home, packed


# -- child side ------------------------------------------------------------------------------------------
class _ChildSlots:
    """The pool as a decode process sees it: its own slots, refilled from a pipe."""

    def __init__(self, attached, conn, slots: list[int], ready=None) -> None:
        self.attached, self.conn, self.free = attached, conn, list(slots)
        self.slot_bytes = attached.slot_bytes
        self.ready = ready  # frames held back for one message are sent before waiting for a slot

    def fits(self, h: int, w: int) -> bool:
        return h * w * 3 <= self.slot_bytes

    def view(self, slot: int, h: int, w: int):
        return self.attached.view(slot, h, w)

    def acquire(self, timeout: float | None = None) -> int | None:
        if not self.free:
            try:
                if self.ready is not None and not self.conn.poll(0):
                    self.ready.flush()
                if not self.conn.poll(timeout if timeout and timeout > 0 else 0):
                    return None
                while True:
                    data = self.conn.recv_bytes()
                    self.free.extend(struct.unpack(_SLOTS.format(len(data) // 4), data))
                    if not self.conn.poll(0):
                        break
            except (EOFError, OSError):
                return None
        return self.free.pop()

    def release(self, slot: int) -> None:
        """A slot taken but not used (the stream ended, the frame was dropped): back to this process's free list."""
        self.free.append(slot)


class _ChildReady:
    """Frames (small tuples, sent as one ``("frames", pid, free slots here, [frame, ...])`` message per round over
    this process's streams) and stream ends. The free-slot count lets the main process's pool census tell slots
    waiting here to be decoded into (decoders ahead of the pipeline) from frames on their way."""

    def __init__(self, q, states: dict[int, DecodeState], pid: int = 0) -> None:
        self.q, self.states, self.pid = q, states, pid
        self.held: list[tuple] = []
        self.slots: _ChildSlots | None = None

    def flush(self) -> None:
        if self.held:
            self.q.put(("frames", self.pid, len(self.slots.free) if self.slots is not None else -1, self.held))
            self.held = []

    def put(self, item) -> None:
        if isinstance(item, FrameRef):
            self.held.append((item.stream, item.slot, item.h, item.w, item.index, item.timestamp, item.t_capture,
                              item.nv12))
            if len(self.held) >= 16:
                self.flush()
        else:
            self.flush()
            st = self.states[item.stream]
            stats = {}
            try:
                stats = dict(getattr(st.source, "stats", {}) or {})
            except Exception:
                pass
            self.q.put(("end", item.stream, {"frames": st.frames, "dropped": st.dropped, "oversize": st.oversize,
                                            "error": st.error, "stats": stats, "lag": st.lag,
                                            "max_lag": st.max_lag}))
            try:
                st.source.close()
            except Exception:
                pass


class _Flag:
    """A stream's stop switch in shared memory (set by the main process)."""

    def __init__(self, arr, i: int) -> None:
        self.arr, self.i = arr, i

    def is_set(self) -> bool:
        return bool(self.arr[self.i])

    def set(self) -> None:
        self.arr[self.i] = 1


class _StopAll:
    """The run's stop: the main process says so, or the main process is gone."""

    def __init__(self, ev, parent: int) -> None:
        self.ev, self.parent, self._n = ev, parent, 0

    def is_set(self) -> bool:
        self._n += 1
        if self._n % 64 == 0 and os.getppid() != self.parent:
            self.ev.set()
        return self.ev.is_set()


def single_threaded_opencv() -> None:
    """OpenCV's own thread pool off in a pipeline child process (a decode or tracking/rules process is itself
    the unit of parallelism). With it on, every cvtColor/resize fans out over all cores and its threads
    spin-wait between calls: measured on the lent H200's 16 cores, 8 NVDEC streams whose NV12 frames OpenCV
    converts to BGR took 1.6 ms of CPU a frame (8.7 cores busy for 5,300 frames/s) against 0.12 ms for the
    NVDEC decode itself (benchmarks/README.md, ninth GPU session)."""
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001 - OpenCV missing or without the call: nothing to turn off
        pass


def decode_main(pid: int, specs: list[tuple[int, dict, bool]], shm_name: str, slot_bytes: int, slots: list[int],
                conn, out, stop_ev, flags, parent: int, nice: int = 0) -> None:
    """Entry point of a decode process. specs: (stream index, open_source kwargs, realtime) per stream. ``nice``:
    added to this process's niceness (``pipeline.decode_nice``), so that on a host with every core busy the
    inference process and the tracking workers run first and the decoders, when ahead, take what is left."""
    import signal

    niceness = None
    try:
        niceness = os.nice(int(nice)) if nice else os.nice(0)
    except OSError as e:  # not allowed here: decode at the usual priority
        log.warning("decode process %d: could not lower its priority by %s (%s)", pid, nice, e)

    from ..sources import open_source
    from .framepool import AttachedPool

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's: it stops us through stop_ev
    single_threaded_opencv()
    attached = AttachedPool(shm_name, slot_bytes)
    timer, meter = StageTimer(), StageMeter("decode")
    states: dict[int, DecodeState] = {}
    try:
        for index, kw, realtime in specs:
            kw = dict(kw)
            uri = kw.pop("uri")
            try:
                src = open_source(uri, **kw)
            except Exception as e:
                out.put(("end", index, {"frames": 0, "dropped": 0, "oversize": 0, "stats": {},
                                        "error": f"{type(e).__name__}: {e}"}))
                continue
            st = DecodeState(index, src, realtime)
            st.stop_me = _Flag(flags, index)
            states[index] = st
            if getattr(src, "decoder", None) == "nvdec" and not attached.pinned:
                attached.pin()  # NVDEC frames are copied from the GPU straight into the slots: page-locked
        if states:
            ready = _ChildReady(out, states, pid)
            ready.slots = _ChildSlots(attached, conn, slots, ready)
            worker = DecodeWorker(list(states.values()), ready.slots, ready,
                                  stop=_StopAll(stop_ev, parent), timer=timer, meter=meter, name=f"decode-proc-{pid}")
            worker.run()  # in this process's main thread
            ready.flush()
    finally:
        out.put(("bye", pid, timer.export(), (meter.busy, meter.wait, meter.items), niceness))
        attached.close()


# -- main side ---------------------------------------------------------------------------------------------
class _ProcState:
    """The main process's view of a stream decoded in a child: filled in from its end message."""

    def __init__(self, index: int, source, realtime: bool, flag: _Flag) -> None:
        self.index, self.source, self.realtime = index, source, realtime
        self.stop_me = flag
        self.frames = self.dropped = self.oversize = 0
        self.lag = self.max_lag = 0.0
        self.error: str | None = None
        self.stats: dict[str, Any] | None = None  # the child's source stats (corrupt frames, ended early...)
        self.done = False


class _Proc:
    def __init__(self, pid: int, streams: list[int]) -> None:
        self.pid, self.streams = pid, streams
        self.handle: Any = None
        self.send = None  # main end of the slot pipe
        self.lock = threading.Lock()
        self.bye = False
        self.dead = False


class DecodeProcesses:
    """``n`` decode processes for the given stream states (files). Use :attr:`ready` (wrapping the threads'
    ready queue) as the batcher's queue; call :meth:`check` now and then, :meth:`close` at the end."""

    def __init__(self, states: list, n: int, pool, local_ready, *, open_kwargs: dict[int, dict], timer: StageTimer,
                 meter: StageMeter, thread_streams: int = 0, nice: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self.pool, self.timer, self.meter = pool, timer, meter
        self.niceness: dict[int, int | None] = {}  # decode process -> its niceness, as it said at the end
        free_n = pool.free_count()
        keep = 1 if thread_streams else 0  # the decode threads (live cameras) keep at least one slot
        # every process needs at least one slot of its own, or its files would wait for ever
        n = max(1, min(int(n), len(states), free_n - keep))
        self.flags = ctx.RawArray("b", max(s.index for s in states) + 1)
        self.stop_ev = ctx.Event()
        self.out = Receiver()  # a pipe per process: one killed mid-send cannot block the others
        self._checked = 0.0
        self.states: dict[int, _ProcState] = {}
        self.idle: dict[int, int] = {}  # decode process -> its free slots, as its latest frames message said
        self.procs = [_Proc(k, [s.index for s in states[k::n]]) for k in range(n)]
        # the slots still free in the pool are split in proportion to each process's streams (at least one
        # each); the rest stay with the threads (live cameras)
        total_streams = len(states) + thread_streams
        left = free_n - keep
        for i, p in enumerate(self.procs):
            later = len(self.procs) - i - 1
            k = max(1, min(free_n * len(p.streams) // max(total_streams, 1), left - later))
            left -= k
            mine = pool.take_slots(k, p, self.give_back)
            recv, p.send = ctx.Pipe(duplex=False)
            out_r, p._out_w = ctx.Pipe(duplex=False)
            self.out.add(p.pid, out_r)
            specs = []
            for s in states[p.pid::n]:
                flag = _Flag(self.flags, s.index)
                self.states[s.index] = _ProcState(s.index, s.source, s.realtime, flag)
                specs.append((s.index, open_kwargs[s.index], s.realtime))
            p.handle = ctx.Process(target=decode_main, name=f"pockit-decode-{p.pid}", daemon=True,
                                   args=(p.pid, specs, pool.name, pool.slot_bytes, mine, recv, Sender(p._out_w),
                                         self.stop_ev, self.flags, os.getpid(), nice))
            p._recv = recv
        self.ready = _MergedReady(local_ready, self, poll_slice=0.002 if thread_streams else None)

    def start(self) -> None:
        for p in self.procs:
            p.handle.start()
            p._recv.close()  # the child has its own copies
            p._out_w.close()

    def give_back(self, p: _Proc, slots: list[int]) -> None:
        """Called by the pool's release(): the slots go home to their decode process, in one message."""
        if p.dead:
            return
        try:
            with p.lock:
                p.send.send_bytes(struct.pack(_SLOTS.format(len(slots)), *slots))
        except (OSError, ValueError):  # the process is gone: its slots with it
            pass

    def stop(self) -> None:
        self.stop_ev.set()

    def idle_slots(self) -> int:
        """Slots free in the decode processes (waiting to be decoded into), as their latest messages said."""
        return sum(max(0, n) for n in list(self.idle.values()))

    def check(self, every: float = 0.0) -> None:
        """Notice decode processes that died without saying goodbye: what they sent is taken in, then their
        unfinished streams end with an error. Called by the thread that reads :attr:`out` (not thread-safe)."""
        now = time.monotonic()
        if now - self._checked < every:
            return
        self._checked = now
        for p in self.procs:
            if p.bye or p.dead or p.handle.is_alive():
                continue
            p.dead = True
            self.out.buf.extend(self.out.drain(p.pid))
            code = p.handle.exitcode
            for s in p.streams:
                st = self.states[s]
                if not st.done:
                    st.error = st.error or (f"decode process {p.pid} died (exit code {code}) after {st.frames} "
                                            "frames were handed over")
                    log.error("source %s: %s", getattr(st.source, "source_id", s), st.error)
                    self.ready.pending_ends.append(s)

    def handle(self, msg) -> object | None:
        """A control message from a child: the EndOfStream to hand on, or None."""
        kind = msg[0]
        if kind == "end":
            st = self.states[msg[1]]
            info = msg[2]
            st.frames, st.dropped, st.oversize = info["frames"], info["dropped"], info["oversize"]
            st.lag, st.max_lag = info.get("lag", 0.0), info.get("max_lag", 0.0)
            st.error = st.error or info["error"]
            st.stats = info["stats"]
            if info["error"]:
                log.error("source %s failed: %s", getattr(st.source, "source_id", st.index), info["error"])
            if st.done:
                return None
            st.done = True
            return EndOfStream(st.index)
        if kind == "bye":
            p = self.procs[msg[1]]
            p.bye = True
            self.timer.merge(msg[2])
            busy, wait, items = msg[3]
            self.meter.add(busy=busy, wait=wait, items=items)
            self.niceness[msg[1]] = msg[4]
        return None

    def close(self, timeout: float = 10.0) -> None:
        """Stop the processes, take in their last messages (freeing slots of frames nobody will analyse)."""
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        while not all(p.bye or p.dead for p in self.procs) and time.monotonic() < deadline:
            try:
                msg = self.out.get(timeout=0.1)
            except (queue.Empty, EOFError, OSError):
                self.check()
                continue
            if msg[0] == "frames":  # frames nobody will analyse now
                self.pool.count_acquired(len(msg[3]))
                self.pool.release_many(f[1] for f in msg[3])
            else:
                self.handle(msg)
        for p in self.procs:
            p.handle.join(2)
            if p.handle.is_alive():  # pragma: no cover - a wedged decoder
                log.error("decode process %d did not stop; terminating it", p.pid)
                p.handle.terminate()
            p.dead = True
            try:
                p.send.close()
            except Exception:
                pass
        self.out.close()


class _MergedReady:
    """The batcher's queue: frames from decode threads (a local queue) and from decode processes."""

    def __init__(self, local, procs: DecodeProcesses, poll_slice: float | None) -> None:
        self.local, self.procs, self.slice = local, procs, poll_slice
        self.pending_ends: list[int] = []
        self.frames: deque = deque()  # frames of a list message not yet handed out

    def _from_procs(self, timeout: float | None):
        if self.frames:
            return self.frames.popleft()
        q = self.procs.out
        while True:
            try:
                msg = q.get(timeout)
            except queue.Empty:
                self.procs.check(every=0.2)
                if self.procs.out.buf:
                    continue
                if self.pending_ends:  # a dead process: everything it sent is in; end its streams
                    s = self.pending_ends.pop(0)
                    st = self.procs.states[s]
                    if not st.done:
                        st.done = True
                        return EndOfStream(s)
                    continue
                raise
            if msg[0] == "frames":
                _, pid, idle, frames = msg
                self.procs.idle[pid] = idle
                self.procs.pool.count_acquired(len(frames))
                self.frames.extend(FrameRef(*f) for f in frames)
                return self.frames.popleft()
            item = self.procs.handle(msg)
            if item is not None:
                return item
            timeout = None  # a control message: look again without waiting

    def get_nowait(self):
        if self.local is not None:
            try:
                return self.local.get_nowait()
            except queue.Empty:
                pass
        return self._from_procs(None)

    def get(self, timeout: float):
        deadline = time.perf_counter() + timeout
        while True:
            if self.local is not None:
                try:
                    return self.local.get_nowait()
                except queue.Empty:
                    pass
            left = deadline - time.perf_counter()
            if left <= 0:
                raise queue.Empty
            try:
                return self._from_procs(min(left, self.slice) if self.slice else left)
            except queue.Empty:
                if self.slice is None:
                    raise
