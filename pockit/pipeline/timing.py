from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking", "rules", "output")


class StageTimer:
    """Per-stage latency samples (seconds per frame) with mean/p50/p95 summaries."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        per = seconds / max(frames, 1)
        self.samples[stage].extend([per] * max(frames, 1))

    @contextmanager
    def time(self, stage: str, frames: int = 1):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0, frames)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage in list(STAGES) + sorted(set(self.samples) - set(STAGES)):
            s = self.samples.get(stage)
            if not s:
                continue
            a = np.asarray(s) * 1000.0
            out[stage] = {"mean_ms": float(a.mean()), "p50_ms": float(np.percentile(a, 50)),
                          "p95_ms": float(np.percentile(a, 95)), "n": int(a.size), "total_s": float(a.sum() / 1000)}
        return out
