"""``zone_enter``: the anchor is inside for ``min_frames`` consecutive observations after having been outside."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..base import Rule, ZoneRuleBase
from ..registry import register


class ZoneEnterRule(ZoneRuleBase):
    type: Literal["zone_enter"]
    min_frames: int = Field(1, ge=1)


@dataclass(slots=True)
class Transition:
    inside: bool = False  # debounced state (initially outside)
    run: int = 0  # observations on the other side so far
    t0: float = 0.0  # first observation of that run: time, frame, box, class
    i0: int = 0
    box0: Any = None
    cls0: Any = None


class ZoneTransition(Rule):
    """zone_enter / zone_exit: debounced inside/outside state per track (initial state: outside);
    the event is dated at the first observation of the run that switched the state."""

    geometry_kind = "zone"
    entering = True

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.counts = {"events": 0, "inside": 0}

    def step(self, v):
        inside = self.inside(v)
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        out = []
        n_in = 0
        mf = self.cfg.min_frames
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Transition))):
            now = bool(inside[i])
            if now == st.inside:
                st.run = 0
            else:
                if st.run == 0:
                    st.t0, st.i0, st.box0, st.cls0 = t, index, xyxy[i], cls[i]
                st.run += 1
                if st.run >= mf:
                    st.inside, st.run = now, 0
                    if now == self.entering:
                        if self.cool(tid, st.t0):
                            out.append(self.event(st.t0, st.i0, tid, st.box0, st.cls0,
                                                  extra={} if st.i0 == index else {"raised_frame": int(index)}))
                        self.hold(tid, t)
            if st.inside:
                n_in += 1
                if self.entering and tid in self.alarm_until:
                    self.hold(tid, t)
        self.counts["inside"] = n_in
        return out


@register(ZoneEnterRule)
class ZoneEnter(ZoneTransition):
    entering = True

