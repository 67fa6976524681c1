"""``climbing``: a person climbing a fence or wall whose top is drawn as a polyline (``line``).

Each observation of a track is classified by its anchor (default ``bottom_center``: the feet) against
the wall-top line *at the anchor's x*: ``outside`` when x is not within the line's x-extent, else
``below`` (image y more than ``margin`` box heights below the line), ``above`` (more than ``margin``
box heights above it) or ``band`` (within the band around it: occluded feet and jitter). Where
several segments cover an x, the highest one (smallest y) is the wall top there.

One event per climb (re-armed by the next ``below`` observation), by either of:

* **crossing**: the track's previous observation was ``below`` and this one is ``above`` (the feet
  jumped the whole band between two observations); raised at once, ``extra.reason = "crossing"``.
* **held**: the track has been ``above`` for ``seconds`` (consecutive ``above`` observations; ``band``
  observations neither extend nor break the run, ``below``/``outside`` ones break it), and it was
  ``below`` at most ``history_seconds`` before the run began with no ``outside`` observation since;
  raised when the run reaches ``seconds``, ``extra.reason = "held"``.

A person whose feet are above the line from the start (walking far behind the wall, in perspective)
never raises; neither does one walking around the end of the wall (``outside`` clears the history).
Limits: the rule follows one track; a climber whose track is lost during the climb and comes back
with a new id has no ``below`` history and is not raised. A person behind the wall whose box the
detector stretches below the band and then back above it is raised (a false alarm).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from ..base import EPS, Held, Point, Rule, RuleBase
from ..registry import register

OUTSIDE, BELOW, BAND, ABOVE = 0, 1, 2, 3


class ClimbingRule(RuleBase):
    type: Literal["climbing"]
    line: list[Point] = Field(..., min_length=2, description="the top of the wall/fence as a polyline (>= 2 points)")
    line_name: str | None = None
    seconds: float = Field(1.0, ge=0, description="seconds the feet stay above the line")
    history_seconds: float = Field(10.0, gt=0, description="how long before the feet must have been below the line")
    margin: float = Field(0.1, ge=0, description="band around the line, in box heights, that counts as neither side")


def wall_y(xs: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) y of the wall top at each x (the highest covering segment); NaN outside the x-extent."""
    a, b = line[:-1], line[1:]
    lo, hi = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    x = np.asarray(xs, np.float64)[:, None]
    cover = (x >= lo[None]) & (x <= hi[None])
    dx = b[:, 0] - a[:, 0]
    frac = np.where(dx != 0, (x - a[None, :, 0]) / np.where(dx != 0, dx, 1.0), 0.0)
    y = np.where(dx[None] != 0, a[None, :, 1] + frac * (b[None, :, 1] - a[None, :, 1]),
                 np.minimum(a[:, 1], b[:, 1])[None])
    y = np.where(cover, y, np.inf).min(1)
    return np.where(np.isfinite(y), y, np.nan)


@dataclass(slots=True)
class Climb:
    prev: int = OUTSIDE  # class of the previous observation
    last_below: float | None = None  # time of the last below observation (cleared outside the extent)
    above: Held = field(default_factory=Held)  # the current run of above observations
    fired: bool = False  # raised for this climb (re-armed by a below observation)


@register(ClimbingRule)
class Climbing(Rule):
    geometry_kind = "fence"  # drawn as a polyline

    def raw_geometry(self):
        return self.cfg.line

    def shape(self):
        s = super().shape()
        if s is not None:
            s["counts"] = None  # no in/out counters
        return s

    def classify(self, anchors: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """OUTSIDE / BELOW / BAND / ABOVE per anchor."""
        wy = wall_y(anchors[:, 0], self.points)
        band = self.cfg.margin * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0.0)
        d = anchors[:, 1] - wy  # > 0: lower in the image than the wall top
        out = np.full(len(anchors), BAND, np.int8)
        out[d > band] = BELOW
        out[d < -band] = ABOVE
        out[np.isnan(wy)] = OUTSIDE
        return out

    def step(self, v):
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        if not len(ids):
            return []
        kind = self.classify(v.anchors, xyxy)
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Climb))):
            k = int(kind[i])
            prev, st.prev = st.prev, k
            if k == BELOW:
                st.last_below, st.fired = t, False
                st.above.observe(False, t)
                continue
            if k == OUTSIDE:
                st.last_below = None
                st.above.observe(False, t)
                continue
            if k == BAND:
                continue
            st.above.observe(True, t)
            if st.fired:
                self.hold(tid, t)
                continue
            reason = None
            if prev == BELOW:
                reason = "crossing"
            elif (st.above.due(t, self.cfg.seconds) and st.last_below is not None
                  and st.above.since - st.last_below <= self.cfg.history_seconds + EPS):
                reason = "held"
            if reason is None:
                continue
            st.fired = True
            self.hold(tid, t)
            if self.cool(tid, t):
                extra = {"reason": reason, "below_at": round(st.last_below, 6)}
                if reason == "held":
                    extra["since"] = round(st.above.since, 6)
                ev = self.event(t, index, tid, xyxy[i], cls[i], direction="up",
                                duration=round(st.above.duration(t), 6), extra=extra)
                ev.line = self.cfg.line_name or self.name
                out.append(ev)
        return out
