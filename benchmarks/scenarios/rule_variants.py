"""Rule-semantics variants, for measurement only (sweep.py keys ``line_band`` and ``crowd_hold``).

pockit/rules is owned elsewhere; these patch the rule classes of ``pockit.rules.engine`` as committed at
the time of the measurement (``_Crossing``, ``_Crowd``) inside the sweep process, so that a proposed change
can be scored on the cached detections before it is written into the product. ``apply`` returns an undo
function. When the engine no longer has these classes, it raises naming what is missing.

line_band (box heights, 0 = off): a track's *first* side of a tripwire is taken only from an observation
whose anchor lies at least ``line_band`` x its box height from the line. A track first seen on the line
(a person re-found after an occlusion right at the tripwire, whose new box is a few pixels off the old
one) no longer "crosses" because of that offset; a track that starts clearly on one side is unchanged,
and so is every crossing after its side is known.

crowd_hold (seconds, 0 = off): a ``crowd`` zone counts a track seen inside it within the last
``crowd_hold`` seconds and not seen outside since (a person hidden behind another for a few frames is
still in the crowd), instead of only the tracks observed on this very frame.
"""
from __future__ import annotations

import numpy as np


def _distance_to_polyline(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1], line[1:]
    d = b - a
    rel = pts[:, None, :] - a[None]
    l2 = np.where((d * d).sum(1) > 0, (d * d).sum(1), 1)
    t = np.clip((rel * d[None]).sum(-1) / l2, 0, 1)
    near = a[None] + t[..., None] * d[None]
    return np.sqrt(((pts[:, None, :] - near) ** 2).sum(-1)).min(1)


def apply(line_band: float = 0.0, crowd_hold: float = 0.0):
    from pockit.rules import engine as E

    missing = [n for n in ("_Crossing", "_Crowd") if not hasattr(E, n)]
    if missing:
        raise RuntimeError(f"pockit.rules.engine has no {missing}: rule_variants.py patches the engine as it was "
                           "at commit ee17d33; port the variant to the new rule classes")
    undo = []
    if line_band > 0:
        orig = E._Crossing.step

        def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
            if len(ids):
                h = xyxy[:, 3] - xyxy[:, 1]
                far = _distance_to_polyline(np.asarray(anchors, np.float64), self.points) >= line_band * h
                known = np.array([int(i) in self.state for i in ids], bool)
                keep = known | far
                if not keep.all():
                    ids, xyxy, anchors, cls = ids[keep], xyxy[keep], anchors[keep], cls[keep]
            return orig(self, t, index, ids, xyxy, anchors, cls, dets, frame)

        E._Crossing.step = step
        undo.append(lambda: setattr(E._Crossing, "step", orig))
    if crowd_hold > 0:
        orig_c = E._Crowd.step

        def cstep(self, t, index, ids, xyxy, anchors, cls, dets, frame):
            inside = self.inside(anchors)
            held = self.__dict__.setdefault("_held", {})
            for i, tid in enumerate(ids.tolist()):
                if inside[i]:
                    held[int(tid)] = t
                else:
                    held.pop(int(tid), None)
            for tid in [k for k, v in held.items() if t - v > crowd_hold + E.EPS]:
                held.pop(tid)
            n = len(held)
            self.counts["current"] = n
            out = []
            if n >= self.cfg.min_count:
                if self.since is None:
                    self.since = t
                if self.active is None and t - self.since >= self.cfg.min_duration - E.EPS and self.cool("rule", t):
                    sel = np.flatnonzero(inside)
                    box = ([float(xyxy[sel, 0].min()), float(xyxy[sel, 1].min()), float(xyxy[sel, 2].max()),
                            float(xyxy[sel, 3].max())] if len(sel) else None)
                    self.active = self.event(t, index, sorted(held), box, count=n,
                                             duration=round(t - self.since, 6), extra={"since": round(self.since, 6)})
                    self.max_count = n
                    out.append(self.active)
                if self.active is not None:
                    self.max_count = max(self.max_count, n)
                    for k in np.flatnonzero(inside):
                        self.hold(int(ids[k]), t, seconds=0.5)
            else:
                if self.active is not None:
                    out.append(self._close(t, index, "below_min_count"))
                self.since = None
            return out

        E._Crowd.step = cstep
        undo.append(lambda: setattr(E._Crowd, "step", orig_c))

    def restore():
        for u in undo:
            u()

    return restore
