"""``presence``: an object of the configured classes stays in the zone ``min_duration`` seconds; with
``max_motion``, it must also stand still (e.g. a parked car rather than one crawling through)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from ..base import EPS, Held, ZoneRuleBase
from ..registry import register
from .loitering import Dwell


class PresenceRule(ZoneRuleBase):
    type: Literal["presence"]
    min_duration: float = Field(..., ge=0)
    max_motion: float | None = Field(
        None, gt=0, description="stillness: farthest the anchor may move from where it stopped, in box heights "
        "(pixels if > 1); None = any motion inside the zone counts")


@dataclass(slots=True)
class Parked:
    """A track's stay in the zone and its current stop (``max_motion`` set)."""

    stay: Held = field(default_factory=Held)  # inside on consecutive observations
    still: Held = field(default_factory=Held)  # within max_motion of ``ref`` since still.since
    ref: np.ndarray | None = None  # the anchor where the current stop began


@register(PresenceRule)
class Presence(Dwell):
    """presence: a continuous stay in the zone of ``min_duration`` s (one event per visit, as loitering).

    With ``max_motion`` the object must also be still: each track keeps a reference anchor and the time
    it was set; an observation whose anchor is farther than ``max_motion`` (box heights of the current
    box if <= 1, pixels if > 1) from the reference restarts the stop there. The alarm comes when the
    object is inside the zone and both its stay and its stop have lasted ``min_duration`` s; once per
    stop (moving beyond ``max_motion`` re-arms; an anchor jittering across the zone's edge does not).
    Frames where the track is missing neither
    reset the stop nor stop its clock (as :class:`~pockit.rules.base.Held` with ``max_gap=min_duration``):
    a track back after a gap of up to ``min_duration`` s within ``max_motion`` of the reference goes on
    with the same stop; after a longer gap the stop restarts where the track reappears.
    """

    @staticmethod
    def dwell_seconds(cfg) -> float:
        return cfg.min_duration

    def step(self, v):
        if self.cfg.max_motion is None:
            return super().step(v)
        inside = self.inside(v)
        ids, xyxy, anchors, cls, t, index = v.ids, v.xyxy, v.anchors, v.cls, v.t, v.index
        mm = float(self.cfg.max_motion)
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Parked))):
            a = anchors[i]
            limit = mm * max(float(xyxy[i][3] - xyxy[i][1]), 1.0) if mm <= 1 else mm
            still = st.still
            if (st.ref is None or float(np.hypot(*(a - st.ref))) > limit
                    or t - still.last > self.dwell + EPS):
                st.ref = np.array(a, np.float64)  # moved (or back after a long gap): the stop starts here
                still.observe(False, t)
            still.observe(True, t)
            st.stay.observe(bool(inside[i]), t)
            if not inside[i]:
                continue  # a new stay re-arms only with a new stop: jitter across the zone's edge raises once
            since = max(st.stay.since, still.since)
            if st.stay.due(t, self.dwell) and still.fire(t, self.dwell) and self.cool(tid, t):
                out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(t - since, 6),
                                      extra={"reason": "still", "since": round(since, 6),
                                             "max_motion_px": round(limit, 3)}))
            if still.fired:
                self.hold(tid, t, seconds=0.5)
        return out
