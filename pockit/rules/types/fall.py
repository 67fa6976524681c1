"""``fall``: a person box classified fallen (a ``fall_classes`` class or width/height above
``aspect_ratio``) for ``min_duration`` s, optionally inside a zone."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..base import Held, Point, Rule, RuleBase, isin
from ..registry import register


class FallRule(RuleBase):
    type: Literal["fall"]
    fall_classes: list[str | int] = Field(["Fall"])
    aspect_ratio: float | None = Field(1.3, description="width/height above this counts as fallen; None = class only")
    min_duration: float = Field(1.0, ge=0)
    zone: list[Point] | None = None
    zone_name: str | None = None


@register(FallRule)
class Fall(Rule):
    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None
        self._fall_cache = None

    def step(self, v):
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        names = v.names
        if self._fall_cache is None or self._fall_cache[0] != id(names):
            self._fall_cache = (id(names), self.allowed_ids(names, self.cfg.fall_classes, "fall_classes"))
        fallen = isin(cls, self._fall_cache[1])
        if self.cfg.aspect_ratio is not None:
            w = xyxy[:, 2] - xyxy[:, 0]
            h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
            fallen |= (w / h) > self.cfg.aspect_ratio
        if self.points is not None:
            fallen &= self.inside(v)
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Held))):
            st.observe(bool(fallen[i]), t)
            if st.fire(t, self.cfg.min_duration) and self.cool(tid, t):
                out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(t - st.since, 6),
                                      extra={"since": round(st.since, 6)}))
            if st.fired:
                self.hold(tid, t, seconds=0.5)
        return out
