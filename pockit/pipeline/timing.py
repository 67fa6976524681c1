"""Per-stage timings of a run, in bounded memory.

:class:`StageTimer` keeps, per stage, the exact count and total (so means are exact) and a uniform random
reservoir of at most ``RESERVOIR`` samples for the percentiles: a ten-minute, 64-stream run keeps the same
few hundred kilobytes as a ten-second one. :class:`StageMeter` accounts busy and waiting time of the
pipeline's threads (decode, batcher/inference, finish, tracking/rules workers) to name the limiting stage.
"""
from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import numpy as np

STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking", "rules", "output")
RESERVOIR = 20000


class StageTimer:
    """Per-stage latency samples (seconds per frame) with mean/p50/p95 summaries."""

    def __init__(self, reservoir: int = RESERVOIR) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.count: dict[str, int] = defaultdict(int)
        self.total: dict[str, float] = defaultdict(float)
        self.reservoir = int(reservoir)
        self._rng = random.Random(0)

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        frames = max(int(frames), 1)
        per = seconds / frames
        self.total[stage] += seconds
        s = self.samples[stage]
        for _ in range(frames):
            self.count[stage] += 1
            if len(s) < self.reservoir:
                s.append(per)
            else:
                j = self._rng.randrange(self.count[stage])
                if j < self.reservoir:
                    s[j] = per

    @contextmanager
    def time(self, stage: str, frames: int = 1):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0, frames)

    def export(self) -> dict[str, Any]:
        return {"samples": {k: list(v) for k, v in self.samples.items()}, "count": dict(self.count),
                "total": dict(self.total)}

    def merge(self, other: dict[str, Any]) -> None:
        """Add another timer's :meth:`export` (a worker process's) to this one."""
        for k, s in other.get("samples", {}).items():
            mine = self.samples[k]
            room = self.reservoir - len(mine)
            mine.extend(s[:room] if room > 0 else [])
            self.count[k] += int(other.get("count", {}).get(k, len(s)))
            self.total[k] += float(other.get("total", {}).get(k, sum(s)))

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage in list(STAGES) + sorted(set(self.samples) - set(STAGES)):
            s = self.samples.get(stage)
            if not s:
                continue
            a = np.asarray(s) * 1000.0
            n = self.count.get(stage, a.size)
            total = self.total.get(stage, float(a.sum() / 1000))
            out[stage] = {"mean_ms": float(total * 1000.0 / max(n, 1)), "p50_ms": float(np.percentile(a, 50)),
                          "p95_ms": float(np.percentile(a, 95)), "n": int(n), "total_s": float(total)}
        return out


class StageMeter:
    """Busy and wait seconds of one pipeline stage, summed over the ``units`` threads/processes running it."""

    def __init__(self, name: str, units: int = 1) -> None:
        self.name, self.units = name, max(int(units), 1)
        self.busy = 0.0
        self.wait = 0.0
        self.items = 0
        self._lock = threading.Lock()

    def add(self, busy: float = 0.0, wait: float = 0.0, items: int = 0) -> None:
        with self._lock:
            self.busy += busy
            self.wait += wait
            self.items += items

    def summary(self, wall: float) -> dict[str, float]:
        cap = max(wall, 1e-9) * self.units
        return {"units": self.units, "busy_s": round(self.busy, 4), "wait_s": round(self.wait, 4),
                "busy_frac": round(self.busy / cap, 4), "wait_frac": round(self.wait / cap, 4), "items": self.items}


class Reservoir:
    """A bounded uniform sample of values (latencies) with p50/p95."""

    def __init__(self, size: int = RESERVOIR) -> None:
        self.size, self.n, self.values = int(size), 0, []
        self._rng = random.Random(1)
        self._lock = threading.Lock()

    def add(self, v: float) -> None:
        with self._lock:
            self.n += 1
            if len(self.values) < self.size:
                self.values.append(v)
            else:
                j = self._rng.randrange(self.n)
                if j < self.size:
                    self.values[j] = v

    def extend(self, vs) -> None:
        for v in vs:
            self.add(v)

    def summary(self, scale: float = 1000.0) -> dict[str, float] | None:
        if not self.values:
            return None
        a = np.asarray(self.values) * scale
        return {"n": self.n, "p50_ms": round(float(np.percentile(a, 50)), 3),
                "p95_ms": round(float(np.percentile(a, 95)), 3), "max_ms": round(float(a.max()), 3)}


SATURATED = 0.85  # a stage busier than this (over its units) alone sets the pace


def limiting_stage(meters: dict[str, dict[str, float]], decode_starved: float,
                   realtime_lag: float | None = None, unpaced: bool = False,
                   decode_ms: float | None = None, gpu_wait: float | None = None,
                   launch_blocked: float | None = None, census: dict[str, float] | None = None,
                   nvdec_procs: int = 0, mps: bool = False) -> str:
    """The stage that bounds throughput: the busiest stage relative to its capacity (busy time divided by
    wall time x the threads/processes running it). ``decode_starved``: the fraction of time the batcher
    waited for frames (a starved batcher means the sources, not the model, set the pace). ``realtime_lag``:
    seconds behind their own clock that files played in real time ended; over a second means decoding (not
    the model, which would make frames drop for want of free slots) could not keep the cameras' rate.
    ``unpaced``: every stream is a file read as fast as it decodes (no camera rate to wait for), so a starved
    batcher means decode; ``decode_ms``: its mean time per frame, quoted with the decoders' busy and
    slot-waiting shares (a decoder waiting for a free frame slot points at ``pipeline.frame_slots``).
    ``gpu_wait`` / ``launch_blocked`` (launch/finish overlap): the fractions of the time the finish waited for
    the GPU to compute a batch and the launch thread waited for the finish (both batches in flight): both
    high means the model on the GPU sets the pace. The finish's GPU wait is not counted as its work.
    ``census``: the frame pool's mean slots by place (run.json ``frame_pool.census``); when no stage is
    saturated, where most frames waited is named (the queue in front of the stage that sets the pace).
    ``nvdec_procs``: decode processes running NVDEC sessions; when the GPU sets the pace they are named, since
    each has a CUDA context of its own that the GPU time-slices against the model's (measured on an H200: the
    model alone 4,175 img/s, in the pipeline with 3 such processes 3,012 frames/s while the finish waited 60 % of
    the time for it) unless ``mps`` (CUDA MPS: the contexts share the GPU)."""
    if not meters:
        return "unknown"
    if realtime_lag is not None and realtime_lag > 1.0 and "decode" in meters:
        d = meters["decode"]
        return (f"decode (real-time streams fell {realtime_lag:.1f} s behind their cameras' rate; decoders "
                f"{d['busy_frac'] * 100:.0f}% busy over {d['units']} unit(s))")
    if gpu_wait is not None and launch_blocked is not None and gpu_wait > 0.5 and launch_blocked > 0.3:
        out = (f"gpu (the model: the finish waited {gpu_wait * 100:.0f}% of the time for the GPU to compute a "
               f"batch and the launch thread {launch_blocked * 100:.0f}% for the finish)")
        if nvdec_procs and not mps:
            out += (f"; the GPU also runs {nvdec_procs} NVDEC decode process(es), each with a CUDA context of its "
                    "own, time-sliced against the model's (pipeline.cuda_mps shares the GPU between them instead)")
        elif nvdec_procs:
            out += f"; the GPU also runs {nvdec_procs} NVDEC decode process(es), under CUDA MPS"
        return out
    name, m = max(meters.items(), key=lambda kv: kv[1]["busy_frac"])
    if decode_starved > 0.5 and m["busy_frac"] < 0.8:
        if unpaced and "decode" in meters:
            d = meters["decode"]
            per = f", {decode_ms:.1f} ms per frame" if decode_ms else ""
            return (f"decode (files read as fast as they decode: the batcher waited {decode_starved * 100:.0f}% "
                    f"of the time for frames; decoders {d['busy_frac'] * 100:.0f}% busy{per} and "
                    f"{d['wait_frac'] * 100:.0f}% waiting for a free frame slot, over {d['units']} unit(s))")
        return "sources (frames arrive slower than the pipeline takes them: camera rate or decode)"
    out = f"{name} ({m['busy_frac'] * 100:.0f}% busy over {m['units']} unit(s))"
    if m["busy_frac"] < SATURATED:  # the busiest stage still had room: none of them alone sets the pace
        out += ("; no stage is saturated: the stages share the host's CPU cores and the inference process's "
                "interpreter lock (compare the host's CPU load)")
        out += _census_remark(census)
    return out


CENSUS_PLACES = {"decode": "being decoded or queued on their way from the decode processes",
                 "batching": "waiting for a batch", "gpu": "on the GPU or being finished",
                 "tracking": "in tracking/rules/outputs"}


def _census_remark(census: dict[str, float] | None) -> str:
    """'; frame slots mostly <place> (<n> of <total> in use, mean)' from the pool census, or ''. Slots free in
    the decode processes (``decode_free``: decoders ahead, with room) are not in use; said when there were more
    of those than slots in use."""
    if not census:
        return ""
    used = {k: float(census.get(k) or 0.0) for k in CENSUS_PLACES}
    total = sum(used.values())
    if total <= 0:
        return ""
    place, n = max(used.items(), key=lambda kv: kv[1])
    out = f"; frame slots mostly {CENSUS_PLACES[place]} ({n:.0f} of {total:.0f} in use, mean)"
    ahead = float(census.get("decode_free") or 0.0)
    if ahead > total:  # the decoders had room to spare: the pace is set downstream of them
        out += f"; {ahead:.0f} more free in the decode processes (decoders ahead)"
    return out
