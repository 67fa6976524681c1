"""Latency statistics: percentiles and per-stage summaries (milliseconds)."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks.

    Same definition as ``numpy.percentile(method="linear")``: rank ``(n - 1) * q / 100``.
    Raises ``ValueError`` on an empty sequence or q outside [0, 100].
    """
    if not 0.0 <= float(q) <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("percentile of an empty sequence")
    if np.isnan(a).any():
        raise ValueError("percentile input contains NaN")
    return float(np.percentile(a, q, method="linear"))


def summarize(seconds: Iterable[float]) -> dict[str, float]:
    """Summary of latency samples given in seconds -> ms figures.

    Keys: n, mean_ms, p50_ms, p95_ms, min_ms, max_ms, total_s. Empty input gives n=0 and
    NaN-free ``None`` values so JSON stays valid.
    """
    a = np.asarray(list(seconds), dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "min_ms": None, "max_ms": None,
                "total_s": 0.0}
    ms = a * 1000.0
    return {
        "n": int(a.size),
        "mean_ms": float(ms.mean()),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "total_s": float(a.sum()),
    }


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """Mean of the non-None, finite values; None when there are none."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(sum(v) / len(v)) if v else None


def max_or_none(values: Iterable[float | None]) -> float | None:
    """Max of the non-None, finite values; None when there are none."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return max(v) if v else None
