"""Tracking + rules + outputs, sharded by stream over worker processes (or threads of this process).

Stream ``s`` always goes to shard ``s % n``, through one FIFO queue, so each stream's frames are handled in
order by one tracker and one rule engine. Workers read frames from the shared frame pool by slot number
and send back, per batch, the slots they are done with, the events raised (already with their snapshot
and clip) and per-frame latencies. A worker process that dies is noticed here: its streams are reported
with their names, its slots are taken back, and the other streams go on.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
from typing import Any, Callable

from .channels import Receiver, Sender
from .streamwork import StreamSpec, pack_frames, worker_loop

log = logging.getLogger("pockit.pipeline")


class Shard:
    def __init__(self, wid: int, streams: list[int]) -> None:
        self.wid, self.streams = wid, streams
        self.inq: Any = None
        self.handle: Any = None  # Process or Thread
        self.outstanding: set[int] = set()  # slots sent and not yet returned
        self.bye = False
        self.dead = False


class WorkerPool:
    """``n`` shards of streams. ``processes=False`` runs the same worker loop in threads of this process."""

    def __init__(self, n: int, specs: list[StreamSpec], *, processes: bool, cfg_data: dict, base_dir: str | None,
                 run_dir: str, class_names: dict[int, str], pool, on_result: Callable[[tuple], None]) -> None:
        self.n = max(1, min(int(n), len(specs)))
        self.processes = processes and pool.name is not None
        self.pool = pool
        self.on_result = on_result
        self.shard_of = {sp.index: sp.index % self.n for sp in specs}
        self.shards = [Shard(w, [sp.index for sp in specs if sp.index % self.n == w]) for w in range(self.n)]
        self.lock = threading.Lock()
        ctx = mp.get_context("spawn")
        # processes: one result pipe each (a worker killed mid-send must not block the others' results)
        self.outq = Receiver() if self.processes else queue.SimpleQueue()
        for sh in self.shards:
            mine = [sp for sp in specs if sp.index in sh.streams]
            args = (sh.wid, cfg_data, base_dir, mine, run_dir, class_names, pool.name, pool.slot_bytes)
            if self.processes:
                sh.inq = ctx.Queue()
                r, w = ctx.Pipe(duplex=False)
                self.outq.add(sh.wid, r)
                sh.out_w = w
                sh.handle = ctx.Process(target=worker_loop, args=(*args, sh.inq, Sender(w)), daemon=True,
                                        name=f"pockit-worker-{sh.wid}")
            else:
                sh.inq = queue.SimpleQueue()
                sh.handle = threading.Thread(target=worker_loop, args=(*args, sh.inq, self.outq),
                                             kwargs={"pool_buf": pool.buf, "in_process": True}, daemon=True,
                                             name=f"track-rules-{sh.wid}")
        self.collector = threading.Thread(target=self._collect, name="results", daemon=True)

    def start(self) -> None:
        for sh in self.shards:
            sh.handle.start()
            if self.processes:
                sh.out_w.close()  # the child holds its end: when it exits, the pipe ends
        self.collector.start()

    # -- sending (finisher thread) ---------------------------------------------------------------
    def send_frames(self, per_shard: dict[int, list[tuple]]) -> list[int]:
        """Route detected frames; returns the slots of frames whose shard is dead (to be freed)."""
        orphans = []
        with self.lock:
            for wid, items in per_shard.items():
                sh = self.shards[wid]
                if sh.dead:
                    orphans.extend(it[1] for it in items)
                    continue
                sh.outstanding.update(it[1] for it in items)
                sh.inq.put(pack_frames(items))
        return orphans

    def outstanding(self) -> int:
        """Frames (slots) sent to the workers and not yet back."""
        return sum(len(sh.outstanding) for sh in self.shards)

    def end_stream(self, stream: int) -> None:
        sh = self.shards[self.shard_of[stream]]
        with self.lock:
            if not sh.dead:
                sh.inq.put(("end", stream))

    def close(self, timeout: float = 120.0) -> None:
        """Ask every worker to finish its streams, wait for them and for the last results."""
        with self.lock:
            for sh in self.shards:
                if not sh.dead:
                    sh.inq.put(None)
        deadline = time.monotonic() + timeout
        while self.collector.is_alive() and time.monotonic() < deadline:
            self.collector.join(0.2)
        for sh in self.shards:
            if not _started(sh.handle):  # start() failed before this one: nothing to wait for
                continue
            if self.processes:
                sh.handle.join(5)
                if sh.handle.is_alive():  # pragma: no cover - a wedged worker
                    log.error("worker %d did not stop; terminating it", sh.wid)
                    sh.handle.terminate()
            else:
                sh.handle.join(5)
        if self.processes:
            self.outq.close()

    # -- results (collector thread) ----------------------------------------------------------------
    def _collect(self) -> None:
        c0 = time.thread_time()
        try:
            self._collect_loop()
        finally:
            self.collector_cpu_s = time.thread_time() - c0

    def _collect_loop(self) -> None:
        while not all(sh.bye or sh.dead for sh in self.shards):
            try:
                msg = self.outq.get(timeout=0.25)
            except (queue.Empty, EOFError, OSError):
                self._check_alive()
                continue
            self._handle(msg)
        self._check_alive()

    def _handle(self, msg: tuple) -> None:
        """Slot and goodbye bookkeeping of a worker's message, then the pipeline's own handling."""
        sh = self.shards[msg[1]]
        if msg[0] == "done":
            with self.lock:
                sh.outstanding.difference_update(msg[2])
        elif msg[0] == "bye":
            sh.bye = True
        self.on_result(msg)

    def _check_alive(self) -> None:
        if not self.processes:
            return
        for sh in self.shards:
            if sh.bye or sh.dead or sh.handle.is_alive():
                continue
            # the process is gone without saying goodbye: first take in what it sent before dying
            while self.outq.buf:
                self._handle(self.outq.buf.popleft())
            for msg in self.outq.drain(sh.wid):
                self._handle(msg)
            if sh.bye:
                continue
            with self.lock:
                sh.dead = True
                slots = list(sh.outstanding)
                sh.outstanding.clear()
            self.on_result(("dead", sh.wid, sh.streams, sh.handle.exitcode, slots))


def _started(handle) -> bool:
    """Was this worker (a Process or a Thread) started?"""
    return (handle.ident if isinstance(handle, threading.Thread) else handle.pid) is not None
