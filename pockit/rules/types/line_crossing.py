"""``line_crossing``: the anchor's movement segment intersects the drawn segment and the new side
holds ``min_frames`` observations; ``in`` = from the left to the right of A->B as drawn."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..base import Point, Rule, RuleBase
from ..geometry import crosses_polyline, polyline_side
from ..registry import register


class LineCrossingRule(RuleBase):
    type: Literal["line_crossing"]
    line: tuple[Point, Point]
    line_name: str | None = None
    direction: Literal["in", "out", "both"] = "both"
    min_frames: int = Field(1, ge=1)


@dataclass(slots=True)
class Side:
    side: int  # debounced side (-1, +1; 0 = not yet known)
    prev: Any  # previous anchor position
    run: int = 0  # observations on the other side so far
    crossed: bool = False  # the run started with a movement that intersects the drawn geometry
    t0: float = 0.0  # first observation of that run: time, frame, box, class
    i0: int = 0
    box0: Any = None
    cls0: Any = None


class Crossing(Rule):
    """line_crossing / fence_crossing with side debounce and a segment-intersection check."""

    geometry_kind = "line"

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.counts = {"in": 0, "out": 0, "events": 0}

    def raw_geometry(self):
        return list(self.cfg.line)

    def step(self, v):
        anchors, ids, xyxy, cls, t, index = v.anchors, v.ids, v.xyxy, v.cls, v.t, v.index
        side = polyline_side(anchors, self.points)
        out = []
        mf = self.cfg.min_frames
        want = self.cfg.direction
        for i in range(len(ids)):
            tid = int(ids[i])
            s = int(side[i])
            p = anchors[i]
            self.last_seen[tid] = t
            st = self.state.get(tid)
            if st is None:
                self.state[tid] = Side(s, p)
                continue
            prev, st.prev = st.prev, p
            if s == 0:
                continue  # exactly on the line: neutral, neither extends nor breaks a run
            if st.side == 0:
                st.side = s
                continue
            if s == st.side:
                st.run = 0
                continue
            if st.run == 0:
                st.crossed = crosses_polyline(prev, p, self.points)
                st.t0, st.i0, st.box0, st.cls0 = t, index, xyxy[i], cls[i]
            st.run += 1
            if st.run >= mf:
                st.side, st.run = s, 0
                if st.crossed:
                    d = "in" if s > 0 else "out"
                    self.counts[d] += 1
                    if want in ("both", d) and self.cool(tid, st.t0):
                        ev = self.event(st.t0, st.i0, tid, st.box0, st.cls0, direction=d,
                                        extra={} if st.i0 == index else {"raised_frame": int(index)})
                        ev.line = self.cfg.line_name or self.name
                        out.append(ev)
                        self.hold(tid, t)
        return out


@register(LineCrossingRule)
class LineCrossing(Crossing):
    pass
