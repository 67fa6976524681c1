"""``phone_use``: a person holding a phone up (to the face or ear) for ``seconds``.

Needs an extra detector of phones attached to the person classes (e.g. a COCO model with ``classes:
[cell phone]``, ``extra_models: [{name: phone, model: ..., attach_to: [...]}]``): each person track carries
``data[attribute]`` (the attached class, "" when none) and ``data["<attribute>.xyxy"]`` (its box). Per
track, inside ``zone`` (whole frame when unset), each observation counts as:

* **phone up**: an attached class of ``phone_classes`` (case-insensitive) whose box centre lies in the
  upper ``upper`` fraction (default 0.6) of the person box: extends the episode (starting one);
* **phone down**: such a phone lower in the box: ends the episode (and re-arms); so does leaving the zone;
* **nothing attached**, or another class: neither counts nor resets.

A phone-up observation more than ``seconds`` after the previous one starts a new episode (a long
absence). The event comes at the first phone-up observation at least ``seconds`` after the episode's
first one (one per track per episode, ``cooldown`` applies); its box is the person's, ``extra.phone_box``
the phone's.

Limits: this sees only phones the detector sees. COCO's ``cell phone`` is a small object: at a distance
(a phone of a few tens of pixels or less) it is mostly not detected, a phone at the ear is often hidden
by the hand and head, and one attached detection per person and model is kept (the highest score), so
give the extra model ``classes: [cell phone]`` or another class of it can hide the phone.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..base import ALARM_HOLD, Held, Point, Rule, RuleBase
from ..registry import register


class PhoneUseRule(RuleBase):
    type: Literal["phone_use"]
    attribute: str = Field("phone", description="name of the extra model attached to the person classes")
    phone_classes: list[str] = Field(["cell phone"], min_length=1, description="attached classes that are a phone")
    upper: float = Field(0.6, gt=0, le=1, description="the phone's centre within this top fraction of the person box")
    seconds: float = Field(2.0, ge=0, description="seconds of phone-up observations")
    zone: list[Point] | None = None
    zone_name: str | None = None


@register(PhoneUseRule)
class PhoneUse(Rule):
    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.phones = {s.strip().lower() for s in cfg.phone_classes}

    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None

    def step(self, v):
        ids, xyxy, cls, t, index = v.ids, v.xyxy, v.cls, v.t, v.index
        if not len(ids):
            return []
        attr = self.cfg.attribute
        labels = v.labels(attr)
        boxes = v.attr(attr, "xyxy")
        if v.attr(attr) is None or boxes is None:
            self.warn_once("noattr", f"the detections carry no attribute {attr!r} with its box ({attr}.xyxy): attach "
                           f"a phone detector named {attr!r} to the person classes (extra_models[].attach_to)")
            boxes = None
        inside = self.inside(v) if self.points is not None else np.ones(len(ids), bool)
        out = []
        for i, (tid, st) in enumerate(zip(ids.tolist(), self.states(v, Held))):
            lab = labels[i]
            cond = None
            pb = None
            if not inside[i]:
                cond = False
            elif lab is not None and lab.lower() in self.phones and boxes is not None:
                pb = np.asarray(boxes[i], np.float64)
                if pb.shape == (4,) and np.isfinite(pb).all():
                    top, h = float(xyxy[i][1]), float(xyxy[i][3] - xyxy[i][1])
                    cond = bool((pb[1] + pb[3]) / 2 <= top + self.cfg.upper * h)
            st.observe(cond, t, max_gap=self.cfg.seconds)
            if not cond:
                continue
            if st.fire(t, self.cfg.seconds) and self.cool(tid, t):
                out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(st.duration(t), 6),
                                      extra={"attribute": attr, "phone": lab, "since": round(st.since, 6),
                                             "phone_box": [round(float(x), 1) for x in pb]}))
            if st.fired:
                self.hold(tid, t, seconds=ALARM_HOLD)
        return out
