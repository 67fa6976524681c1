"""Rule-semantics variants, for measurement only (sweep.py key ``crowd_hold``; ``debounce_s`` is in sweep.py).

pockit/rules is owned elsewhere; this patches the ``crowd`` rule class (``pockit.rules.types.crowd.Crowd``,
as of commit c39b0b8) inside the sweep process, so that a proposed change can be scored on the cached
detections before it is written into the product. ``apply`` returns an undo function; when the class is not
there any more it raises, naming what is missing.

crowd_hold (seconds, 0 = off): a ``crowd`` zone counts a track seen inside it within the last
``crowd_hold`` seconds and not seen outside since (a person hidden behind another for a few frames is
still in the crowd), instead of only the tracks observed on this very frame.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-6


def apply(crowd_hold: float = 0.0):
    if crowd_hold <= 0:
        return lambda: None
    try:
        from pockit.rules.types.crowd import Crowd
    except ImportError as e:
        raise RuntimeError(f"rule_variants.py patches pockit.rules.types.crowd.Crowd (commit c39b0b8): {e}") from e
    orig = Crowd.step

    def step(self, v):
        inside = self.inside(v)
        ids, xyxy, t, index = v.ids, v.xyxy, v.t, v.index
        held = self.__dict__.setdefault("_held", {})  # track id -> last time seen inside
        for i, tid in enumerate(ids.tolist()):
            if inside[i]:
                held[int(tid)] = t
            else:
                held.pop(int(tid), None)
        for tid in [k for k, s in held.items() if t - s > crowd_hold + EPS]:
            held.pop(tid)
        n = len(held)
        self.counts["current"] = n
        out = []
        self.crowded.observe(n >= self.cfg.min_count, t)
        if n >= self.cfg.min_count:
            since = self.crowded.since
            if self.active is None and self.crowded.due(t, self.cfg.min_duration) and self.cool("rule", t):
                sel = np.flatnonzero(inside)
                box = ([float(xyxy[sel, 0].min()), float(xyxy[sel, 1].min()), float(xyxy[sel, 2].max()),
                        float(xyxy[sel, 3].max())] if len(sel) else None)
                self.active = self.event(t, index, sorted(held), box, count=n, duration=round(t - since, 6),
                                         extra={"since": round(since, 6)})
                self.max_count = n
                out.append(self.active)
            if self.active is not None:
                self.max_count = max(self.max_count, n)
                for k in np.flatnonzero(inside):
                    self.hold(int(ids[k]), t, seconds=0.5)
        elif self.active is not None:
            out.append(self._close(t, index, "below_min_count"))
        return out

    Crowd.step = step
    return lambda: setattr(Crowd, "step", orig)
