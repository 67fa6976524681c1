"""The scenario rules engine: confirmed tracks in, alarm :class:`~pockit.core.Event` records out.

Shared semantics (every rule):

* Rules see only confirmed tracks (``track_id >= 0``) that pass the rule's class filter (names or
  ids) and ``min_score``. A track's position is the rule's anchor point of its box; when the frame size
  is known, anchors are clipped to the frame, so a zone drawn up to the frame edge holds a person whose
  box runs off the image.
* "Consecutive frames" are consecutive *observations* of the track: a frame where the tracker does
  not report the track neither extends nor breaks a run. Per-track state is forgotten after the track
  has been unseen for ``forget`` seconds (default 300).
* Times are frame timestamps in seconds; every duration is in seconds (a tolerance of 1e-6 s absorbs
  float rounding of ``index / fps``).
* ``cooldown``: a track cannot raise the same rule again until ``cooldown`` seconds after its last
  event (event times compared). Suppressed events still change the rule's state (re-arm follows the
  semantics, not the cooldown). ``crowd`` and foreground ``abandoned_object`` apply it per rule / per blob.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Iterable, Mapping

import numpy as np

from ..core import Detections, Event, Frame
from . import schema as S
from .foreground import StaticForeground, appearance_change, patch
from .geometry import Polygon, crosses_polyline, is_normalized, points_in_polygon, polyline_side, to_pixels

log = logging.getLogger(__name__)

EPS = 1e-6
ALARM_HOLD = 2.0  # seconds an object stays in .alarmed after a point event (crossing, exit)
# foreground abandoned_object: fixed ratios (sizes relative to the frame or the owner; times in seconds)
FG_MIN_AREA_FRACTION = 0.001  # default min_area: 0.1 % of the frame
FG_OWNER_SLACK = 1.0  # s around a blob's onset in which the owner's box must touch it; owner "seen" tolerance
FG_STABLE_IOU = 0.5  # a blob whose box drifts below this IoU with its first box moved / changed shape
FG_MAX_MOTION = 0.25  # mean short-term foreground fraction inside the blob while unattended
FG_MIN_RESIDUAL = 12.0  # grey levels: below this (after the ring-fitted gain/offset) = lighting, not an object
FG_GHOST_EDGE = 0.45  # outline gradient now / (now + background) below this = ghost
FG_MAX_OWNER_AREA = 0.5  # a blob larger than this fraction of its owner's box is the owner's silhouette
FG_HISTORY_SECONDS = 120.0  # how far back person boxes are kept to find a blob's owner


def _isin(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """np.isin for a handful of allowed class ids, without its fixed overhead."""
    if len(allowed) == 0:
        return np.zeros(len(values), bool)
    if len(allowed) == 1:
        return values == allowed[0]
    return (values[:, None] == allowed[None, :]).any(1)


def _box(xyxy) -> list[float]:
    return [float(v) for v in xyxy]


class _Rule:
    """Base: class/score filter, geometry in pixels, cooldown, alarm bookkeeping."""

    needs_frames = False
    geometry_kind: str | None = None

    def __init__(self, cfg: S._Base, engine: "RuleEngine") -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.type = cfg.type
        self.engine = engine
        self.state: dict[int, Any] = {}
        self.last_seen: dict[int, float] = {}
        self.last_event: dict[Any, float] = {}
        self.alarm_until: dict[Any, float] = {}
        self.alarm_box: dict[Any, tuple[np.ndarray, float]] = {}
        self.counts: dict[str, int] = {"events": 0}
        self.points: np.ndarray | None = None  # pixel geometry (zone polygon / line / fence)
        self._allowed_cache: tuple[int, np.ndarray | None] | None = None
        self._warned: set[str] = set()

    # -- setup -------------------------------------------------------------------------------------
    def raw_geometry(self):
        return getattr(self.cfg, "zone", None)

    def prepare(self, frame_size) -> None:
        g = self.raw_geometry()
        if g is not None:
            self.points = to_pixels(g, is_normalized(g, self.cfg.normalized), frame_size, f"rule {self.name!r}")
            self.polygon = Polygon(self.points)
            self._poly_key = self.points.tobytes()

    def inside(self, anchors: np.ndarray) -> np.ndarray:
        """Zone membership of this frame's filtered anchors (shared between rules with the same zone/anchor)."""
        eng = self.engine
        key = (self.cfg.anchor, self._poly_key)
        full = eng._inside_cache.get(key)
        if full is None:
            full = eng._inside_cache[key] = self.polygon.contains(eng._anchors[self.cfg.anchor])
        return full if eng._mask is None else full[eng._mask]

    def warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("rule %r: %s", self.name, msg)

    def allowed_ids(self, names: Mapping[int, str], spec=None, key: str = "classes") -> np.ndarray | None:
        """Class ids matching a names/ids filter (None = every class)."""
        spec = self.cfg.classes if spec is None and key == "classes" else spec
        if spec is None:
            return None
        by_name = {str(v).lower(): int(k) for k, v in names.items()}
        ids = []
        for c in spec:
            if isinstance(c, int) or (isinstance(c, str) and c.lstrip("-").isdigit() and c.lower() not in by_name):
                ids.append(int(c))
            elif str(c).lower() in by_name:
                ids.append(by_name[str(c).lower()])
            elif names:
                self.warn_once(f"{key}:{c}", f"{key} entry {c!r} is not a class of the model "
                               f"(classes: {sorted(set(names.values()))}); it matches nothing")
        return np.asarray(sorted(set(ids)), np.int32)

    def mask(self, dets: Detections, names: Mapping[int, str]) -> np.ndarray:
        key = (None if self.cfg.classes is None else tuple(map(str, self.cfg.classes)), self.cfg.min_score)
        cache = self.engine._mask_cache
        m = cache.get(key)
        if m is None:
            m = cache[key] = self._mask(dets, names)
        return m

    def _mask(self, dets: Detections, names: Mapping[int, str]) -> np.ndarray:
        m = dets.track_ids >= 0
        if self.cfg.min_score > 0:
            m &= dets.scores >= self.cfg.min_score
        if self.cfg.classes is not None:
            key = id(names)
            if self._allowed_cache is None or self._allowed_cache[0] != key:
                self._allowed_cache = (key, self.allowed_ids(names))
            m &= _isin(dets.class_ids, self._allowed_cache[1])
        return m

    # -- events ------------------------------------------------------------------------------------
    def cool(self, key, t: float) -> bool:
        """True if ``key`` may raise at time t (and records it)."""
        last = self.last_event.get(key)
        if last is not None and t - last < self.cfg.cooldown - EPS:
            return False
        self.last_event[key] = t
        return True

    def event(self, t: float, index: int, track_id=None, box=None, class_id=None, **kw) -> Event:
        self.counts["events"] = self.counts.get("events", 0) + 1
        names = self.engine._names
        cls = None if class_id is None else names.get(int(class_id), str(int(class_id)))
        ev = Event(rule=self.name, type=self.type, source=self.engine.source_id, time=float(t), frame=int(index),
                   track_id=track_id, class_name=cls, bbox=None if box is None else _box(box), **kw)
        if getattr(self.cfg, "zone_name", None) or self.geometry_kind == "zone":
            ev.zone = getattr(self.cfg, "zone_name", None) or self.name
        return ev

    def hold(self, key, t: float, box=None, seconds: float = ALARM_HOLD) -> None:
        self.alarm_until[key] = t + seconds
        if box is not None:
            self.alarm_box[key] = (np.asarray(box, np.float64), t + seconds)

    def alarmed(self, t: float) -> set:
        return {k for k, until in self.alarm_until.items() if until >= t and isinstance(k, (int, np.integer))}

    def boxes(self, t: float) -> list[np.ndarray]:
        return [b for b, until in self.alarm_box.values() if until >= t]

    def forget(self, t: float, horizon: float) -> None:
        old = [k for k, v in self.last_seen.items() if t - v > horizon]
        for k in old:
            self.last_seen.pop(k, None)
            self.state.pop(k, None)
        for k in [k for k, v in self.alarm_until.items() if v < t - horizon]:
            self.alarm_until.pop(k, None)
            self.alarm_box.pop(k, None)

    # -- per frame ---------------------------------------------------------------------------------
    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame) -> list[Event]:  # pragma: no cover
        raise NotImplementedError

    def finish(self, t: float, index: int) -> list[Event]:
        return []


# ------------------------------------------------------------------------------------------------
class _ZoneTransition(_Rule):
    """zone_enter / zone_exit: debounced inside/outside state per track (initial state: outside)."""

    geometry_kind = "zone"

    def __init__(self, cfg, engine, entering: bool) -> None:
        super().__init__(cfg, engine)
        self.entering = entering
        self.counts = {"events": 0, "inside": 0}

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
        inside = self.inside(anchors)
        out = []
        n_in = 0
        mf = self.cfg.min_frames
        st_all = self.state
        for i in range(len(ids)):
            tid = int(ids[i])
            v = bool(inside[i])
            self.last_seen[tid] = t
            st = st_all.get(tid)
            if st is None:
                st = st_all[tid] = [False, 0, 0.0, 0, None, None]  # state, run, t0, i0, box0, cls0
            if v == st[0]:
                st[1] = 0
            else:
                if st[1] == 0:
                    st[2], st[3], st[4], st[5] = t, index, xyxy[i], cls[i]
                st[1] += 1
                if st[1] >= mf:
                    st[0], st[1] = v, 0
                    if v == self.entering:
                        if self.cool(tid, st[2]):
                            out.append(self.event(st[2], st[3], tid, st[4], st[5],
                                                  extra={} if st[3] == index else {"raised_frame": int(index)}))
                        self.hold(tid, t)
            if st[0]:
                n_in += 1
                if self.entering and tid in self.alarm_until:
                    self.hold(tid, t)
        self.counts["inside"] = n_in
        return out


class _Dwell(_Rule):
    """loitering / presence: a continuous stay (inside on consecutive observations) reaching ``dwell``."""

    geometry_kind = "zone"

    def __init__(self, cfg, engine, dwell: float, max_entries=None, window=None) -> None:
        super().__init__(cfg, engine)
        self.dwell = float(dwell)
        self.max_entries = max_entries
        self.window = window

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
        inside = self.inside(anchors)
        out = []
        for i in range(len(ids)):
            tid = int(ids[i])
            self.last_seen[tid] = t
            st = self.state.get(tid)
            if st is None:
                st = self.state[tid] = [None, False, deque()]  # visit start, fired this visit, entry times
            if not inside[i]:
                st[0], st[1] = None, False
                continue
            if st[0] is None:  # a new visit
                st[0], st[1] = t, False
                if self.max_entries:
                    ent = st[2]
                    ent.append(t)
                    while ent and t - ent[0] > self.window + EPS:
                        ent.popleft()
                    if len(ent) >= self.max_entries:
                        if self.cool(tid, t):
                            out.append(self.event(t, index, tid, xyxy[i], cls[i], count=len(ent),
                                                  extra={"reason": "entries", "window": self.window}))
                            self.hold(tid, t)
                        ent.clear()
            if not st[1] and t - st[0] >= self.dwell - EPS:
                st[1] = True
                if self.cool(tid, t):
                    out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(t - st[0], 6),
                                          extra={"reason": "dwell", "since": round(st[0], 6)}))
            if st[1]:
                self.hold(tid, t, seconds=0.5)
        return out


class _Crossing(_Rule):
    """line_crossing / fence_crossing with side debounce and a segment-intersection check."""

    def __init__(self, cfg, engine) -> None:
        super().__init__(cfg, engine)
        self.counts = {"in": 0, "out": 0, "events": 0}
        self.geometry_kind = "line" if cfg.type == "line_crossing" else "fence"

    def raw_geometry(self):
        return list(self.cfg.line) if self.cfg.type == "line_crossing" else self.cfg.fence

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
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
            if st is None:  # side, run length, crossed, t0, i0, box0, cls0, previous position
                self.state[tid] = [s, 0, False, 0.0, 0, None, None, p]
                continue
            prev = st[7]
            st[7] = p
            if s == 0:
                continue  # exactly on the line: neutral, neither extends nor breaks a run
            if st[0] == 0:
                st[0] = s
                continue
            if s == st[0]:
                st[1] = 0
                continue
            if st[1] == 0:
                st[2] = crosses_polyline(prev, p, self.points)
                st[3], st[4], st[5], st[6] = t, index, xyxy[i], cls[i]
            st[1] += 1
            if st[1] >= mf:
                st[0], st[1] = s, 0
                if st[2]:
                    d = "in" if s > 0 else "out"
                    self.counts[d] += 1
                    if want in ("both", d) and self.cool(tid, st[3]):
                        ev = self.event(st[3], st[4], tid, st[5], st[6], direction=d,
                                        extra={} if st[4] == index else {"raised_frame": int(index)})
                        ev.line = self.cfg.line_name or self.name
                        out.append(ev)
                        self.hold(tid, t)
        return out


class _Crowd(_Rule):
    geometry_kind = "zone"

    def __init__(self, cfg, engine) -> None:
        super().__init__(cfg, engine)
        self.since: float | None = None
        self.active: Event | None = None
        self.max_count = 0
        self.counts = {"events": 0, "current": 0}

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
        inside = self.inside(anchors)
        n = int(inside.sum())
        self.counts["current"] = n
        out = []
        if n >= self.cfg.min_count:
            if self.since is None:
                self.since = t
            if self.active is None and t - self.since >= self.cfg.min_duration - EPS and self.cool("rule", t):
                sel = np.flatnonzero(inside)
                box = [float(xyxy[sel, 0].min()), float(xyxy[sel, 1].min()), float(xyxy[sel, 2].max()),
                       float(xyxy[sel, 3].max())]
                self.active = self.event(t, index, sorted(int(ids[k]) for k in sel), box, count=n,
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

    def _close(self, t, index, reason) -> Event:
        start = self.active
        ev = Event(rule=self.name, type=self.type, source=self.engine.source_id, time=float(t), frame=int(index),
                   zone=start.zone, count=self.max_count, duration=round(t - start.extra["since"], 6), end=float(t),
                   extra={"phase": "end", "of": start.id, "reason": reason})
        self.active = None
        return ev

    def finish(self, t, index):
        return [self._close(t, index, "end_of_stream")] if self.active is not None else []


class _Fall(_Rule):
    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None
        self._fall_cache = None

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
        names = self.engine._names
        if self._fall_cache is None or self._fall_cache[0] != id(names):
            self._fall_cache = (id(names), self.allowed_ids(names, self.cfg.fall_classes, "fall_classes"))
        fall_ids = self._fall_cache[1]
        fallen = _isin(cls, fall_ids)
        if self.cfg.aspect_ratio is not None:
            w = xyxy[:, 2] - xyxy[:, 0]
            h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
            fallen |= (w / h) > self.cfg.aspect_ratio
        if self.points is not None:
            fallen &= self.inside(anchors)
        out = []
        for i in range(len(ids)):
            tid = int(ids[i])
            self.last_seen[tid] = t
            st = self.state.get(tid)
            if not fallen[i]:
                if st is not None:
                    st[0], st[1] = None, False
                continue
            if st is None:
                st = self.state[tid] = [None, False]
            if st[0] is None:
                st[0] = t
            if not st[1] and t - st[0] >= self.cfg.min_duration - EPS:
                st[1] = True
                if self.cool(tid, t):
                    out.append(self.event(t, index, tid, xyxy[i], cls[i], duration=round(t - st[0], 6),
                                          extra={"since": round(st[0], 6)}))
            if st[1]:
                self.hold(tid, t, seconds=0.5)
        return out


class _Abandoned(_Rule):
    """abandoned_object, detector mode (tracked bag classes) or foreground mode (static blobs).

    Detector mode: a tracked object of ``classes`` whose centre stays within ``max_motion`` for
    ``min_duration`` s and has no person within ``owner_distance`` (object box heights, or pixels if > 10)
    for ``unattended`` s (default 5); a person coming back re-arms it.

    Foreground mode (class-agnostic, :class:`~pockit.rules.foreground.StaticForeground`): an object that
    was brought in and left. A static blob (static ``min_duration`` s; at least ``min_area`` px², default
    FG_MIN_AREA_FRACTION = 0.1 % of the frame) gets as its *owner* the person track (``person_classes``)
    whose box touched it (within a tenth of the person's height) within FG_OWNER_SLACK = 1 s of the
    moment the long-term model first saw it (its onset: the object arriving, not the blob being
    confirmed). The alarm comes when the owner has been farther than ``owner_distance`` (owner box
    heights, or pixels if > 10) or out of view (its track unseen for FG_OWNER_SLACK s) for ``unattended``
    s, and the blob's box has stayed put (IoU >= FG_STABLE_IOU with its reference box) as long. Judged
    over those ``unattended`` seconds, a blob is *not* raised when it has no owner, is larger than
    FG_MAX_OWNER_AREA of its owner's box (a person's silhouette), touches the frame border (a person
    partly out of view), moves (more than FG_MAX_MOTION of it changed between frames within 2 s: a
    person the detector missed), is explained by a gain/offset of the surrounding background (lighting:
    residual < FG_MIN_RESIDUAL grey levels or 2.5x the ring's), or has its outline in the background
    rather than in the frame (a ghost: edge ratio < FG_GHOST_EDGE). A person box covering most of the
    blob pauses the alarm but not the unattended time. A detection of ``classes`` on the blob (fusion
    with a bag detector) gives the event its class and skips the lighting/ghost tests. The event's box
    is the object's; ``extra`` holds the owner track id, the onset (``appeared``), ``unattended_since``
    and the test values. The owner coming back re-arms. Without person classes in the model,
    attendance falls back to motion around the blob (no owner test). Times are seconds and sizes are
    relative to the frame or the owner, so the defaults hold across frame rates and resolutions.
    Rejected blobs are counted by reason in ``rejected``.
    """

    def __init__(self, cfg, engine) -> None:
        super().__init__(cfg, engine)
        self.mode: str | None = None if cfg.mode == "auto" else cfg.mode
        self.fg: StaticForeground | None = None
        self.blobs: dict[int, _FgBlob] = {}
        self.next_blob = 0
        self._person_cache = None
        self.tracks: dict[int, deque] = {}  # person track id -> (time, box) of the last seconds
        self.rejected: dict[str, int] = {}  # blobs dropped, by the reason they never alarmed

    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None

    @property
    def needs_frames(self) -> bool:  # type: ignore[override]
        return self.mode == "foreground"

    def _resolve_mode(self, names) -> str:
        if self.mode is None:
            ids = self.allowed_ids(names) if self.cfg.classes is not None else None
            self.mode = "detector" if ids is not None and len(ids) else "foreground"
            log.info("rule %r: abandoned_object mode %s", self.name, self.mode)
        return self.mode

    def _persons(self, dets: Detections, names) -> np.ndarray:
        if self._person_cache is None or self._person_cache[0] != id(names):
            self._person_cache = (id(names), self.allowed_ids(names, self.cfg.person_classes, "person_classes"))
        pid = self._person_cache[1]
        m = (dets.track_ids >= 0) & _isin(dets.class_ids, pid)
        return dets.xyxy[m].astype(np.float64)

    def _scale(self, value: float, h: float, limit: float) -> float:
        return value * h if value <= limit else value

    def _near(self, center, h, persons) -> bool:
        if len(persons) == 0:
            return False
        dx = np.maximum(np.maximum(persons[:, 0] - center[0], 0), center[0] - persons[:, 2])
        dy = np.maximum(np.maximum(persons[:, 1] - center[1], 0), center[1] - persons[:, 3])
        return bool((np.hypot(dx, dy) <= self._scale(self.cfg.owner_distance, h, 10.0)).any())

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
        names = self.engine._names
        mode = self._resolve_mode(names)
        if mode == "foreground":
            return self._step_fg(t, index, dets, frame, names)
        persons = self._persons(dets, names)
        pid = self._person_cache[1]
        out = []
        keep = ~_isin(cls, pid)  # a person is never an abandoned object
        if self.points is not None:
            keep &= self.inside(anchors)
        for i in np.flatnonzero(keep):
            tid = int(ids[i])
            self.last_seen[tid] = t
            b = xyxy[i].astype(np.float64)
            c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
            h = max(b[3] - b[1], 1.0)
            st = self.state.get(tid)
            if st is None or np.hypot(*(c - st[0])) > self._scale(self.cfg.max_motion, h, 1.0):
                st = self.state[tid] = [c, t, t, False]  # reference centre, still since, unattended since, fired
            if self._near(c, h, persons):
                st[2] = t
                st[3] = False  # the owner came back: re-arm
                continue
            if not st[3] and t - st[1] >= self.cfg.min_duration - EPS and t - st[2] >= self.cfg.unattended - EPS:
                st[3] = True
                if self.cool(tid, t):
                    out.append(self.event(t, index, tid, b, cls[i], duration=round(t - st[1], 6),
                                          extra={"mode": "detector", "unattended_since": round(st[2], 6)}))
            if st[3]:
                self.hold(tid, t, b, seconds=0.5)
        return out

    # -- foreground mode ---------------------------------------------------------------------------
    def _fg_params(self, frame) -> None:
        """Size/time parameters that depend on the footage, derived once from the first frame."""
        w, h = frame.size
        c = self.cfg
        self.min_area = c.min_area if c.min_area is not None else FG_MIN_AREA_FRACTION * w * h
        self.fg = StaticForeground(c.min_duration, self.min_area)
        # person boxes kept long enough to reach back to a blob's onset: the owner may stand over the
        # object (holding its static evidence back) for a while before the blob is confirmed
        self.history_s = max(FG_HISTORY_SECONDS, c.min_duration + self.fg.short_seconds + FG_OWNER_SLACK)

    def _fg_bags(self, dets: Detections, names) -> np.ndarray:
        """Boxes + class ids of bag-class detections (``classes``) for fusion; empty without a class filter."""
        if self.cfg.classes is None:
            return np.zeros((0, 5))
        ids = self.allowed_ids(names)
        m = _isin(dets.class_ids, ids)
        return np.column_stack([dets.xyxy[m].astype(np.float64), dets.class_ids[m]]) if m.any() else np.zeros((0, 5))

    def _fg_owner(self, blob, t: float) -> tuple[int | None, np.ndarray | None]:
        """The person track whose box contained or touched ``blob`` when it appeared (closest in time)."""
        lo = blob.onset - FG_OWNER_SLACK
        hi = max(blob.onset + self.fg.short_seconds + FG_OWNER_SLACK, lo)
        best, best_key = (None, None), None
        for tid, hist in self.tracks.items():
            for ts, box in hist:
                if ts < lo or ts > hi:
                    continue
                m = 0.1 * (box[3] - box[1])  # "touched": the box grown by a tenth of the person's height
                if _gap(blob.box, box) > m:
                    continue
                key = abs(ts - blob.onset)
                if best_key is None or key < best_key:
                    best, best_key = (tid, box), key
        return best

    def _fg_verdict(self, bl: _FgBlob, blob, use_persons: bool) -> str | None:
        """Why a due blob is not an abandoned object (None: it is), judged over the unattended window."""
        sc = [s for _, s in bl.scores]
        med = {k: float(np.median([s[k] for s in sc])) for k in sc[0]}
        if use_persons and bl.owner is None:
            return "no_owner"  # it did not arrive with a person
        if use_persons and bl.owner_box is not None and blob.area > FG_MAX_OWNER_AREA * _area(bl.owner_box):
            return "person_sized"  # as large as a person: a person's own silhouette (sitting, standing)
        if max(s["border"] for s in sc) > 0:
            return "frame_border"  # partly visible: most often a person at the edge of the view
        if med["motion"] > FG_MAX_MOTION:
            return "moving"  # moves inside: a person the detector missed
        if bl.class_id is not None:
            return None  # a bag-class detection vouches for it
        if med["residual"] < max(FG_MIN_RESIDUAL, 2.5 * med["ring_residual"]):
            return "lighting"  # a gain/offset of the surrounding background explains it
        if med["edge"] < FG_GHOST_EDGE:
            return "ghost"  # its outline is in the background, not in the frame: something left
        return None

    def _step_fg(self, t, index, dets, frame, names) -> list[Event]:
        if frame is None:
            self.warn_once("noframe", "foreground mode needs frame images; idle on replayed tracks")
            return []
        if self.fg is None:
            self._fg_params(frame)
        blobs = self.fg.update(frame.image, t)
        pid = self.allowed_ids(names, self.cfg.person_classes, "person_classes")
        use_persons = pid is not None and len(pid) > 0
        persons = np.zeros((0, 4))
        if use_persons:
            m = (dets.track_ids >= 0) & _isin(dets.class_ids, pid)
            persons = dets.xyxy[m].astype(np.float64)
            for tid, box in zip(dets.track_ids[m], persons):
                hist = self.tracks.setdefault(int(tid), deque())
                hist.append((t, box))
            for tid in list(self.tracks):
                hist = self.tracks[tid]
                while hist and t - hist[0][0] > self.history_s:
                    hist.popleft()
                if not hist:
                    del self.tracks[tid]
        bags = self._fg_bags(dets, names)
        out = []
        seen = set()
        for blob in blobs:
            box = blob.box
            if self.points is not None and not points_in_polygon(
                    np.array([[(box[0] + box[2]) / 2, box[3]]]), self.points)[0]:
                continue
            best, best_iou = None, 0.3
            for k, bl in self.blobs.items():
                iou = _iou(box, bl.box)
                if iou > best_iou and k not in seen:
                    best, best_iou = k, iou
            if best is None:
                best = self.next_blob
                self.next_blob += 1
                bl = self.blobs[best] = _FgBlob(box, t, blob.onset)
                if use_persons:
                    bl.owner, bl.owner_box = self._fg_owner(blob, t)
            bl = self.blobs[best]
            bl.last_seen = t
            seen.add(best)
            if _iou(box, bl.ref_box) < FG_STABLE_IOU:
                bl.ref_box, bl.stable_since = box, t  # grew, shrank or shifted: its stillness starts again
            bl.box = box
            # fusion: a bag-class detection on the blob names it (and vouches that it is an object)
            if len(bags):
                hit = [j for j in range(len(bags)) if _iou(box, bags[j, :4]) >= 0.2 or _contains(bags[j, :4], box)]
                if hit:
                    bl.class_id = int(bags[hit[0], 4])
            sc = self.fg.blob_tests(blob)
            sc["border"] = float(blob.border)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("rule %r: t=%.2f blob %d %s owner=%s %s", self.name, t, best, [round(v) for v in box],
                          bl.owner, " ".join(f"{k}={v:.2f}" for k, v in sc.items()))
            bl.scores.append((t, sc))
            while bl.scores and t - bl.scores[0][0] > max(self.cfg.unattended, 1.0):
                bl.scores.popleft()
            if use_persons:
                own = self.tracks.get(bl.owner) if bl.owner is not None else None
                if own and t - own[-1][0] <= FG_OWNER_SLACK:
                    ob = own[-1][1]
                    if bl.owner_box is None or _area(ob) > _area(bl.owner_box):
                        bl.owner_box = ob  # the owner's largest (least clipped) box: the size reference
                    dist = self._scale(self.cfg.owner_distance, ob[3] - ob[1], 10.0)
                    attended = _gap(box, ob) <= dist
                else:
                    attended = False  # no owner, or the owner's track ended: out of view
                covered = any(_cover(box, p) > 0.5 for p in persons)
            else:
                h = max(box[3] - box[1], 1.0)
                d = self._scale(self.cfg.owner_distance, h, 10.0)
                ring = np.array([box[0] - d, box[1] - d, box[2] + d, box[3] + d])
                attended = self.fg.moving_fraction(ring, exclude=box) > 0.02
                covered = False
            if attended:
                bl.away_since = None
                if use_persons:  # the owner came back: re-arm, judge afresh
                    bl.verdict = None
                    bl.fired = False
                continue
            if bl.away_since is None:
                bl.away_since = t
            if covered:
                continue  # a person stands on it: not visible now (the unattended time runs on)
            if bl.fired:
                self.hold(("blob", best), t, box, seconds=0.5)
                continue
            due = t - bl.away_since >= self.cfg.unattended - EPS and t - bl.stable_since >= self.cfg.unattended - EPS
            if not due:
                continue
            # judged once, over the unattended window; final until the owner comes back
            bl.verdict = bl.verdict or self._fg_verdict(bl, blob, use_persons)
            if bl.verdict is not None:
                continue
            bl.fired = True
            self.hold(("blob", best), t, box, seconds=0.5)
            if self.cool(("blob", best), t):
                med = {k: float(np.median([s[k] for _, s in bl.scores])) for k in ("edge", "residual", "motion")}
                extra = {"mode": "foreground", "blob": best, "area": round(blob.area, 1),
                         "unattended_since": round(bl.away_since, 6), "appeared": round(bl.onset, 6),
                         "owner": bl.owner, **{k: round(v, 3) for k, v in med.items()}}
                if bl.class_id is not None:
                    extra["detector_class"] = names.get(bl.class_id, str(bl.class_id))
                out.append(self.event(t, index, None, box, bl.class_id,
                                      duration=round(t - bl.first_t + self.cfg.min_duration, 6), extra=extra))
        for k in [k for k, bl in self.blobs.items() if t - bl.last_seen > 2.0]:
            self.rejected[self.blobs[k].verdict or "none"] = self.rejected.get(self.blobs[k].verdict or "none", 0) + 1
            del self.blobs[k]
        return out


class _Removed(_Rule):
    """object_removed: a guarded region differs from its reference appearance for ``min_duration``."""

    needs_frames = True

    def __init__(self, cfg, engine) -> None:
        super().__init__(cfg, engine)
        self.region: np.ndarray | None = None
        self.guards: dict[Any, list] = {}  # key -> [box, ref patch, changed since, fired, track id, class]

    def raw_geometry(self):
        return None

    def prepare(self, frame_size) -> None:
        if self.cfg.region is not None:
            r = np.asarray(self.cfg.region, np.float64).reshape(2, 2)
            self.region = to_pixels(r, is_normalized(r, self.cfg.normalized), frame_size,
                                    f"rule {self.name!r}").reshape(4)

    def step(self, t, index, ids, xyxy, anchors, cls, dets, frame):
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


class _FgBlob:
    """State of one static-foreground blob across frames."""

    def __init__(self, box, t: float, onset: float) -> None:
        self.box = box
        self.first_t = t
        self.last_seen = t
        self.onset = onset
        self.owner: int | None = None
        self.owner_box: np.ndarray | None = None
        self.away_since: float | None = None
        self.fired = False
        self.verdict: str | None = None  # why it did not alarm when due (ghost, lighting, ...); None = candidate
        self.class_id: int | None = None
        self.scores: deque = deque()  # (time, blob_tests) over the last `unattended` seconds
        self.ref_box = box
        self.stable_since = t


def _area(b) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def _gap(a, b) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


def _cover(a, b) -> float:
    """Fraction of box a inside box b."""
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return max(0.0, x2 - x1) * max(0.0, y2 - y1) / max(_area(a), 1e-9)


def _contains(outer, inner) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def _make(cfg, engine) -> _Rule:
    t = cfg.type
    if t == "zone_enter":
        return _ZoneTransition(cfg, engine, True)
    if t == "zone_exit":
        return _ZoneTransition(cfg, engine, False)
    if t == "loitering":
        return _Dwell(cfg, engine, cfg.dwell, cfg.max_entries, cfg.window)
    if t == "presence":
        return _Dwell(cfg, engine, cfg.min_duration)
    if t in ("line_crossing", "fence_crossing"):
        return _Crossing(cfg, engine)
    if t == "crowd":
        return _Crowd(cfg, engine)
    if t == "fall":
        return _Fall(cfg, engine)
    if t == "abandoned_object":
        return _Abandoned(cfg, engine)
    if t == "object_removed":
        return _Removed(cfg, engine)
    raise ValueError(f"unknown rule type {t!r}; expected one of {S.RULE_TYPES}")


class RuleEngine:
    """Runs a source's rules frame by frame.

    ``rules``: rule configs (pydantic models or dicts); disabled rules and rules restricted to other
    ``sources`` are skipped. ``frame_size`` (w, h) is needed for normalized geometry; when None it is
    taken from the first frame. ``class_names`` maps class ids to names (the detections' own mapping wins).
    """

    def __init__(self, rules: Iterable[S.RuleConfig | dict], source_id: str = "0",
                 frame_size: tuple[int, int] | None = None, class_names: Mapping[int, str] | None = None,
                 forget: float = 300.0) -> None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(S.RuleConfig)
        cfgs = [adapter.validate_python(r) if isinstance(r, dict) else r for r in rules]
        self.source_id = str(source_id)
        self.rules: list[_Rule] = [_make(c, self) for c in cfgs
                                   if c.enabled and (c.sources is None or self.source_id in c.sources)]
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate rule names: {sorted({n for n in names if names.count(n) > 1})}")
        self.frame_size = tuple(int(v) for v in frame_size) if frame_size else None
        self.class_names = dict(class_names or {})
        self._names: Mapping[int, str] = self.class_names
        self.forget = float(forget)
        self._prepared = False
        self._anchors: dict[str, np.ndarray] = {}
        self._inside_cache: dict = {}
        self._mask: np.ndarray | None = None
        self._last_t = 0.0
        self._last_purge = None
        self._try_prepare(raise_=False)

    def _try_prepare(self, raise_: bool = True) -> bool:
        try:
            for r in self.rules:
                r.prepare(self.frame_size)
        except ValueError:
            if raise_:
                raise
            return False
        self._prepared = True
        return True

    # -- main API ----------------------------------------------------------------------------------
    def update(self, frame: Frame | None, dets: Detections, timestamp: float, index: int) -> list[Event]:
        """Feed one frame's tracked detections; returns the events raised on this frame."""
        if self.frame_size is None and frame is not None:
            self.frame_size = frame.size
            self._prepared = False
        if not self._prepared:
            self._try_prepare(raise_=True)
        t = float(timestamp)
        self._last_t = t
        names = dets.class_names if dets.class_names else self.class_names
        self._names = names
        out: list[Event] = []
        anchors_by_kind = self._anchors = {}
        self._inside_cache = {}
        self._mask_cache: dict = {}
        all_tracked = None
        for r in self.rules:
            m = r.mask(dets, names)
            kind = r.cfg.anchor
            a = anchors_by_kind.get(kind)
            if a is None:
                a = dets.anchors(kind).astype(np.float64)
                if self.frame_size is not None and len(a):
                    w, h = self.frame_size
                    np.clip(a[:, 0], 0, w, out=a[:, 0])
                    np.clip(a[:, 1], 0, h, out=a[:, 1])
                anchors_by_kind[kind] = a
            if all_tracked is None:
                all_tracked = bool((dets.track_ids >= 0).all())
            if all_tracked and (r.cfg.classes is None and r.cfg.min_score <= 0):
                self._mask = None
                ids, xyxy, anc, cls = dets.track_ids, dets.xyxy, a, dets.class_ids
            else:
                self._mask = m
                ids, xyxy, anc, cls = dets.track_ids[m], dets.xyxy[m], a[m], dets.class_ids[m]
            out.extend(r.step(t, int(index), ids, xyxy, anc, cls, dets, frame))
        if self._last_purge is None or t - self._last_purge > 10.0:
            self._last_purge = t
            for r in self.rules:
                r.forget(t, self.forget)
        return out

    def finish(self, timestamp: float, index: int) -> list[Event]:
        """End of stream: closes open episodes (crowd) and returns their closing records."""
        out: list[Event] = []
        for r in self.rules:
            out.extend(r.finish(float(timestamp), int(index)))
        return out

    # -- state for drawing / counting --------------------------------------------------------------
    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Per rule: running counters (line/fence: 'in'/'out' crossings; every rule: 'events')."""
        return {r.name: dict(r.counts) for r in self.rules}

    @property
    def alarmed(self) -> dict[str, set[int]]:
        """Per rule: track ids in alarm now (while the condition holds, or 2 s after a point event)."""
        return {r.name: r.alarmed(self._last_t) for r in self.rules}

    @property
    def alarmed_ids(self) -> set[int]:
        return set().union(*self.alarmed.values()) if self.rules else set()

    @property
    def alarm_boxes(self) -> dict[str, list[np.ndarray]]:
        """Per rule: boxes in alarm that are not tracks (foreground blobs, guarded regions)."""
        return {r.name: r.boxes(self._last_t) for r in self.rules}

    @property
    def shapes(self) -> list[dict[str, Any]]:
        """Geometry in pixels for drawing: rule, type, kind (zone|line|fence|box), points (K,2), name, direction."""
        out = []
        if not self._prepared and not self._try_prepare(raise_=False):
            return out
        for r in self.rules:
            if isinstance(r, _Removed) and r.region is not None:
                x1, y1, x2, y2 = r.region
                out.append(dict(rule=r.name, type=r.type, kind="box", name=r.name,
                                points=np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), direction=None))
            elif r.points is not None:
                kind = r.geometry_kind or "zone"
                nm = getattr(r.cfg, "line_name", None) or getattr(r.cfg, "zone_name", None) or r.name
                out.append(dict(rule=r.name, type=r.type, kind=kind, name=nm, points=r.points,
                                direction=getattr(r.cfg, "direction", None), counts=dict(r.counts)))
        return out

    @property
    def needs_frames(self) -> bool:
        return any(r.needs_frames for r in self.rules)
