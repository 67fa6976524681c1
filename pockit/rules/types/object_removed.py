"""``object_removed``: a guarded region (or a tracked object that is no longer reported) differs from its
reference appearance for ``min_duration`` s."""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..base import EPS, Rule, RuleBase
from ..foreground import appearance_change, patch
from ..geometry import is_normalized, to_pixels
from ..registry import register


class ObjectRemovedRule(RuleBase):
    type: Literal["object_removed"]
    region: tuple[float, float, float, float] | None = Field(None, description="x1,y1,x2,y2 of the guarded object")
    threshold: float = Field(0.35, gt=0, le=1, description="appearance change (0..1) counted as removed")
    min_duration: float = Field(2.0, ge=0)


@register(ObjectRemovedRule)
class ObjectRemoved(Rule):
    """object_removed: a guarded region differs from its reference appearance for ``min_duration``."""

    needs_frames = True

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.region: np.ndarray | None = None
        self.guards: dict[Any, list] = {}  # key -> [box, ref patch, changed since, fired, track id, class]

    def raw_geometry(self):
        return None

    def prepare(self, frame_size) -> None:
        if self.cfg.region is not None:
            r = np.asarray(self.cfg.region, np.float64).reshape(2, 2)
            self.region = to_pixels(r, is_normalized(r, self.cfg.normalized), frame_size,
                                    f"rule {self.name!r}").reshape(4)

    def step(self, v):
        ids, xyxy, cls, t, index, frame = v.ids, v.xyxy, v.cls, v.t, v.index, v.frame
        if frame is None:
            self.warn_once("noframe", "object_removed compares images; idle on replayed tracks")
            return []
        img = frame.image
        present = set()
        if self.region is not None:
            if "region" not in self.guards:
                self.guards["region"] = [self.region, patch(img, self.region), None, False, None, None]
        else:
            for i in range(len(ids)):
                tid = int(ids[i])
                present.add(tid)
                g = self.guards.get(tid)
                if g is None or t - g[6] > 1.0:  # (re)take the reference while the object is visible
                    self.guards[tid] = [xyxy[i].astype(np.float64), patch(img, xyxy[i]), None, False, tid, cls[i], t]
                else:
                    g[0] = xyxy[i].astype(np.float64)
                    g[2], g[3] = None, False
        out = []
        for key, g in list(self.guards.items()):
            if key in present or g[1] is None:
                continue
            cur = patch(img, g[0])
            change = 0.0 if cur is None else appearance_change(g[1], cur)
            if change < self.cfg.threshold:
                g[2] = None
                if self.region is not None:
                    g[3] = False  # the object is back: re-arm
                continue
            if g[2] is None:
                g[2] = t
            if not g[3] and t - g[2] >= self.cfg.min_duration - EPS:
                g[3] = True
                if self.cool(key, t):
                    out.append(self.event(t, index, g[4], g[0], g[5], duration=round(t - g[2], 6),
                                          extra={"change": round(change, 3), "since": round(g[2], 6)}))
            if g[3]:
                self.hold(key if key != "region" else ("region",), t, g[0], seconds=0.5)
        return out

    def shape(self):
        if self.region is None:
            return None
        x1, y1, x2, y2 = self.region
        return {"rule": self.name, "type": self.type, "kind": "box", "name": self.name,
                "points": np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), "direction": None}
