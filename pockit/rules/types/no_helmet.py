"""``no_helmet`` (PPE): a person whose attached head detection shows a bare head for ``seconds``.

Needs an extra model attached to the person classes (``extra_models: [{name: ppe, model: ..., attach_to:
[...]}]``, see docs/CONTRACTS.md): each person track then carries ``data[attribute]``, the class of the
head detection attached to it this frame ("" when none). Per track, inside ``zone`` (whole frame when
unset), each observation counts as:

* **bare** (the attached class is one of ``bare``, case-insensitive): extends the episode (starting one);
* **helmet** (one of ``helmet``): ends the episode (and re-arms);
* **nothing attached**, or another class: neither counts nor resets.

Leaving the zone ends the episode; so does a long absence: a bare observation more than ``seconds``
after the previous one starts a new episode. The event comes at the first bare observation at least
``seconds`` after the episode's first one (one per track per episode, ``cooldown`` applies); its box is the
person's (drawn red while the episode goes on), ``extra.values`` counts the attached classes seen in the
episode, ``extra.head_box`` is the attached detection's box at the event. ``classes`` should name the
person classes: a head detection that no person box holds stays an object of its own and, with no class
filter, counts as itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from ..base import ALARM_HOLD, Held, Point, Rule, RuleBase
from ..registry import register


class NoHelmetRule(RuleBase):
    type: Literal["no_helmet"]
    attribute: str = Field("ppe", description="name of the extra model attached to the person classes")
    bare: list[str] = Field(["Without Helmet"], min_length=1, description="attached classes meaning a bare head")
    helmet: list[str] = Field(["With Helmet"], description="attached classes meaning a helmet")
    seconds: float = Field(2.0, ge=0, description="seconds of bare-head observations with no helmet seen")
    zone: list[Point] | None = None
    zone_name: str | None = None


@dataclass(slots=True)
class Episode:
    bare: Held = field(default_factory=Held)
    start: float | None = None  # the episode the values below belong to
    values: dict[str, int] = field(default_factory=dict)


@register(NoHelmetRule)
class NoHelmet(Rule):
    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.bare = {s.strip().lower() for s in cfg.bare}
        self.helmet = {s.strip().lower() for s in cfg.helmet}

    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None

    def step(self, v):
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        if not len(ids):
            return []
        attr = self.cfg.attribute
        if v.attr(attr) is None:
            self.warn_once("noattr", f"the detections carry no attribute {attr!r}: attach a model named {attr!r} to "
                           "the person classes (extra_models[].attach_to); nothing is counted")
        labels = v.labels(attr)
        inside = self.inside(v) if self.points is not None else np.ones(len(ids), bool)
        heads = v.attr(attr, "xyxy")
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Episode))):
            lab = labels[i]
            low = None if lab is None else lab.lower()
            cond = False if not inside[i] else True if low in self.bare else False if low in self.helmet else None
            st.bare.observe(cond, t, max_gap=self.cfg.seconds)
            if st.bare.since is None:
                continue  # no episode: never bare, a helmet seen, or outside the zone
            if st.start != st.bare.since:
                st.start, st.values = st.bare.since, {}
            if lab is not None:
                st.values[lab] = st.values.get(lab, 0) + 1
            if not cond:
                continue  # nothing attached / another class: neither counts nor resets
            if st.bare.fire(t, self.cfg.seconds) and self.cool(tid, t):
                extra = {"attribute": attr, "values": dict(st.values), "since": round(st.bare.since, 6)}
                hb = None if heads is None else np.asarray(heads[i], np.float64)
                if hb is not None and hb.shape == (4,) and np.isfinite(hb).all():
                    extra["head_box"] = [round(float(x), 1) for x in hb]
                out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(st.bare.duration(t), 6),
                                      extra=extra))
            if st.bare.fired:
                self.hold(tid, t, seconds=ALARM_HOLD)
        return out
