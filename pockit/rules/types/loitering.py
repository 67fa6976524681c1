"""``loitering``: one continuous stay in the zone reaches ``dwell`` seconds (one event per visit), or
optionally ``max_entries`` entries within ``window`` seconds."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from ..base import EPS, Held, Rule, ZoneRuleBase
from ..registry import register


class LoiteringRule(ZoneRuleBase):
    type: Literal["loitering"]
    dwell: float = Field(..., gt=0, description="seconds of continuous stay")
    max_entries: int | None = Field(None, ge=2, description="'number of passes' variant")
    window: float | None = Field(None, gt=0, description="seconds for max_entries")

    @model_validator(mode="after")
    def _window(self):
        if self.max_entries is not None and self.window is None:
            raise ValueError("max_entries needs window (seconds)")
        return self


@dataclass(slots=True)
class Visit:
    stay: Held = field(default_factory=Held)  # inside on consecutive observations
    entries: deque = field(default_factory=deque)  # times of the last entries (max_entries)


class Dwell(Rule):
    """loitering / presence: a continuous stay (inside on consecutive observations) reaching ``dwell``."""

    geometry_kind = "zone"

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.dwell = float(self.dwell_seconds(cfg))
        self.max_entries = getattr(cfg, "max_entries", None)
        self.window = getattr(cfg, "window", None)

    @staticmethod
    def dwell_seconds(cfg) -> float:
        return cfg.dwell

    def step(self, v):
        inside = self.inside(v)
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Visit))):
            stay = st.stay
            new_visit = bool(inside[i]) and stay.since is None
            stay.observe(bool(inside[i]), t)
            if not inside[i]:
                continue
            if new_visit and self.max_entries:
                ent = st.entries
                ent.append(t)
                while ent and t - ent[0] > self.window + EPS:
                    ent.popleft()
                if len(ent) >= self.max_entries:
                    if self.cool(tid, t):
                        out.append(self.event(t, index, tid, xyxy[i], cls[i], count=len(ent),
                                              extra={"reason": "entries", "window": self.window}))
                        self.hold(tid, t)
                    ent.clear()
            if stay.fire(t, self.dwell) and self.cool(tid, t):
                out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(t - stay.since, 6),
                                      extra={"reason": "dwell", "since": round(stay.since, 6)}))
            if stay.fired:
                self.hold(tid, t, seconds=0.5)
        return out


@register(LoiteringRule)
class Loitering(Dwell):
    pass
