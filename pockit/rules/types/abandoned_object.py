"""``abandoned_object``: an object left behind, from a bag-class detector (detector mode) or from
static foreground (foreground mode, class-agnostic; :mod:`pockit.rules.foreground`)."""
from __future__ import annotations

import logging
from collections import deque
from typing import Literal

import numpy as np
from pydantic import Field

from ...core import Detections, Event, box_iou
from ...resolve import match_boxes
from ..base import EPS, Point, Rule, RuleBase, isin
from ..foreground import StaticForeground
from ..geometry import points_in_polygon
from ..registry import register

log = logging.getLogger("pockit.rules.engine")

# foreground mode: fixed ratios (sizes relative to the frame or the owner; times in seconds)
FG_MIN_AREA_FRACTION = 0.001  # default min_area: 0.1 % of the frame
FG_OWNER_SLACK = 1.0  # s around a blob's onset in which the owner's box must touch it; owner "seen" tolerance
FG_STABLE_IOU = 0.5  # a blob whose box drifts below this IoU with its first box moved / changed shape
FG_MAX_MOTION = 0.25  # mean short-term foreground fraction inside the blob while unattended
FG_MIN_RESIDUAL = 12.0  # grey levels: below this (after the ring-fitted gain/offset) = lighting, not an object
FG_GHOST_EDGE = 0.45  # outline gradient now / (now + background) below this = ghost
FG_MAX_OWNER_AREA = 0.5  # a blob larger than this fraction of its owner's box is the owner's silhouette
FG_HISTORY_SECONDS = 120.0  # how far back person boxes are kept to find a blob's owner


class AbandonedObjectRule(RuleBase):
    type: Literal["abandoned_object"]
    zone: list[Point] | None = None
    zone_name: str | None = None
    mode: Literal["detector", "foreground", "auto"] = "auto"
    person_classes: list[str | int] = Field(["person"])
    max_motion: float = Field(0.1, gt=0, description="max centre motion, in box heights (or pixels if > 1)")
    min_duration: float = Field(5.0, ge=0)
    owner_distance: float = Field(2.0, gt=0, description="object box heights (detector mode) or owner box heights "
                                  "(foreground mode) when <= 10, pixels when > 10")
    unattended: float = Field(5.0, ge=0, description="seconds the owner is away before the alarm")
    min_area: float | None = Field(None, ge=0, description="foreground mode: smallest blob in px^2 (None: 0.1 % of the frame)")
    object_classes: list[str | int] | None = Field(
        None, description="foreground mode: detections of these classes (e.g. backpack, handbag, suitcase from an extra "
        "model) on a static blob confirm it as an object (the event gets the class; lighting/ghost tests skipped)")


class FgBlob:
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


@register(AbandonedObjectRule)
class AbandonedObject(Rule):
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
    blob pauses the alarm but not the unattended time. A detection of ``classes`` or ``object_classes``
    overlapping the blob at any time (IoU >= 0.2 or its centre in the detection's box; fusion with a bag
    detector, e.g. an extra COCO model without ``attach_to``) confirms it: the event gets that class
    (``extra.detector_class``) and the lighting/ghost tests are skipped (the owner, size, border and
    motion tests still apply). ``object_classes`` does not change the mode (``classes`` in ``auto`` mode
    selects detector mode); unset, nothing changes. The event's box
    is the object's; ``extra`` holds the owner track id, the onset (``appeared``), ``unattended_since``
    and the test values. The owner coming back re-arms. Without person classes in the model,
    attendance falls back to motion around the blob (no owner test). Times are seconds and sizes are
    relative to the frame or the owner, so the defaults hold across frame rates and resolutions.
    Rejected blobs are counted by reason in ``rejected``.
    """

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.mode: str | None = None if cfg.mode == "auto" else cfg.mode
        self.fg: StaticForeground | None = None
        self.blobs: dict[int, FgBlob] = {}
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
        m = (dets.track_ids >= 0) & isin(dets.class_ids, pid)
        return dets.xyxy[m].astype(np.float64)

    def _scale(self, value: float, h: float, limit: float) -> float:
        return value * h if value <= limit else value

    def _near(self, center, h, persons) -> bool:
        if len(persons) == 0:
            return False
        dx = np.maximum(np.maximum(persons[:, 0] - center[0], 0), center[0] - persons[:, 2])
        dy = np.maximum(np.maximum(persons[:, 1] - center[1], 0), center[1] - persons[:, 3])
        return bool((np.hypot(dx, dy) <= self._scale(self.cfg.owner_distance, h, 10.0)).any())

    def step(self, v):
        ids, xyxy, cls, t, index, dets, names = v.ids, v.xyxy, v.cls, v.t, v.index, v.dets, v.names
        mode = self._resolve_mode(names)
        if mode == "foreground":
            return self._step_fg(t, index, dets, v.frame, names)
        persons = self._persons(dets, names)
        pid = self._person_cache[1]
        out = []
        keep = ~isin(cls, pid)  # a person is never an abandoned object
        if self.points is not None:
            keep &= self.inside(v)
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
        """Boxes + class ids of the detections that confirm a blob (``classes``, then ``object_classes``);
        empty when neither is set."""
        parts = []
        if self.cfg.classes is not None:
            parts.append(self.allowed_ids(names))
        if self.cfg.object_classes is not None:
            parts.append(self.allowed_ids(names, self.cfg.object_classes, "object_classes"))
        if not parts:
            return np.zeros((0, 5))
        m = np.zeros(len(dets), bool)
        for ids in parts:
            m |= isin(dets.class_ids, ids)
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

    def _fg_verdict(self, bl: FgBlob, blob, use_persons: bool) -> str | None:
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
            m = (dets.track_ids >= 0) & isin(dets.class_ids, pid)
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
        if self.points is not None:
            blobs = [b for b in blobs
                     if points_in_polygon(np.array([[(b.box[0] + b.box[2]) / 2, b.box[3]]]), self.points)[0]]
        # each blob, in order, continues the known blob it overlaps most (IoU > 0.3), each known blob once
        keys = list(self.blobs)
        pairs = match_boxes(np.array([b.box for b in blobs]), np.array([self.blobs[k].box for k in keys]),
                            float(np.nextafter(0.3, 1.0)), scores=-np.arange(len(blobs), dtype=float))
        continues = {i: keys[j] for i, j, _ in pairs}
        for i, blob in enumerate(blobs):
            box = blob.box
            best = continues.get(i)
            if best is None:
                best = self.next_blob
                self.next_blob += 1
                bl = self.blobs[best] = FgBlob(box, t, blob.onset)
                if use_persons:
                    bl.owner, bl.owner_box = self._fg_owner(blob, t)
            bl = self.blobs[best]
            bl.last_seen = t
            if box_iou(box, bl.ref_box)[0, 0] < FG_STABLE_IOU:
                bl.ref_box, bl.stable_since = box, t  # grew, shrank or shifted: its stillness starts again
            bl.box = box
            # fusion: a bag-class detection on the blob names it (and vouches that it is an object)
            if len(bags):
                near = box_iou(box, bags[:, :4])[0]
                hit = [j for j in range(len(bags)) if near[j] >= 0.2 or _contains(bags[j, :4], box)]
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
