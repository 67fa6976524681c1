"""``crowd``: at least ``min_count`` objects in the zone for ``min_duration`` s; a closing record (with
``end``) when the count drops below; re-arms after.

The count is the tracks seen inside the zone within the last ``hold`` seconds and not seen outside it
since: a member hidden behind another person for a moment still counts, one seen leaving stops counting
at once. The event names the counted tracks; its box covers the members visible on that frame."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ...core import Event
from ..base import EPS, Held, Rule, ZoneRuleBase
from ..registry import register


class CrowdRule(ZoneRuleBase):
    type: Literal["crowd"]
    min_count: int = Field(..., ge=1)
    min_duration: float = Field(0.0, ge=0)
    hold: float = Field(0.5, ge=0, description="seconds a track seen inside, and not seen outside since, still counts")


@register(CrowdRule)
class Crowd(Rule):
    geometry_kind = "zone"

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.crowded = Held()  # the count at or above min_count on consecutive frames
        self.active: Event | None = None
        self.max_count = 0
        self.counts = {"events": 0, "current": 0}
        self.members: dict[int, float] = {}  # track id -> last time seen inside (counted while within hold)

    @property
    def since(self) -> float | None:
        return self.crowded.since

    def step(self, v):
        inside = self.inside(v)
        ids, xyxy, t, index = v.ids, v.xyxy, v.t, v.index
        members = self.members
        for tid, ins in zip(ids.tolist(), inside.tolist()):
            if ins:
                members[tid] = t
            else:
                members.pop(tid, None)  # seen outside: leaves the crowd at once
        hold = self.cfg.hold
        for tid in [k for k, last in members.items() if t - last > hold + EPS]:
            del members[tid]
        n = len(members)
        self.counts["current"] = n
        out = []
        self.crowded.observe(n >= self.cfg.min_count, t)
        if n >= self.cfg.min_count:
            since = self.crowded.since
            if self.active is None and self.crowded.due(t, self.cfg.min_duration) and self.cool("rule", t):
                sel = np.flatnonzero(inside)  # the visible members (a held one has no box on this frame)
                box = ([float(xyxy[sel, 0].min()), float(xyxy[sel, 1].min()), float(xyxy[sel, 2].max()),
                        float(xyxy[sel, 3].max())] if len(sel) else None)
                self.active = self.event(t, index, sorted(members), box, count=n,
                                         duration=round(t - since, 6), extra={"since": round(since, 6)})
                self.max_count = n
                out.append(self.active)
            if self.active is not None:
                self.max_count = max(self.max_count, n)
                for k in np.flatnonzero(inside):
                    self.hold(int(ids[k]), t, seconds=0.5)
        elif self.active is not None:
            out.append(self._close(t, index, "below_min_count"))
        return out

    def _close(self, t, index, reason) -> Event:
        start = self.active
        ev = Event(rule=self.name, type=self.type, source=self.source_id, time=float(t), frame=int(index),
                   zone=start.zone, count=self.max_count, duration=round(t - start.extra["since"], 6), end=float(t),
                   extra={"phase": "end", "of": start.id, "reason": reason})
        self.active = None
        return ev

    def finish(self, t, index):
        return [self._close(t, index, "end_of_stream")] if self.active is not None else []
