"""What the two face rule types share (``face_match`` and ``unknown_face``, in :mod:`pockit.rules.types`).

Both read, per confirmed track of their class filter, the face embedding this frame carries: a detection of
class ``face`` (the face backend as the main model, or an extra model whose faces are objects of their own:
``data["embedding"]`` / ``data["<attribute>.embedding"]``) or a face attached to a person
(``data["<attribute>.embedding"]``, extra model named ``attribute`` with ``attach_to``). Rows without a face
(NaN) neither count nor reset. With ``attach_to``, a face that no person box holds stays an object of its own
(class ``face``): add ``face`` to ``classes`` to match those too. Inside ``zone`` only (whole frame when unset). Each track keeps its ``keep``
best-quality views; its identity is decided from them (:class:`pockit.faces.matcher.TrackFaces`: ``threshold``,
``margin``, ``min_frames``, ``aggregate``).

Events carry the identity and numbers in ``extra`` (``identity``, ``similarity``, ``second``, ``frames``,
``face_box``, ``watchlist``), never an embedding or a face crop. Their snapshot is the usual one (the frame,
the track's box in red).

``privacy: true``: every face box of the frame's tracked detections (face objects and attached faces) is
pixelated in the frame before any output is written (snapshots, clips, annotated video, stills): see
:func:`pockit.faces.privacy.blur_faces`. Faces the tracker does not report (a track's first frame before it
is confirmed, detections below ``tracker.track_activation_threshold``) are only covered when the pipeline
blurs the detector's output itself (:func:`blur_for_rules`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from ..rules.base import Point, Rule, RuleBase
from .matcher import MARGIN, THRESHOLD, Match, Matcher, TrackFaces, face_columns
from .privacy import blur_faces, face_boxes
from .watchlist import Watchlist, WatchlistError


class FaceRuleBase(RuleBase):
    watchlist: str = Field(..., description="watch list file (.npz) made by 'pockit faces enrol'")
    attribute: str = Field("face", description="name of the face model among extra_models (its attached "
                           "attributes are data['<attribute>.embedding'] ...); faces of the main model need none")
    threshold: float = Field(THRESHOLD, ge=-1, le=1, description="cosine similarity needed for an identity")
    margin: float = Field(MARGIN, ge=0, le=2, description="how far the best identity must beat the second")
    min_frames: int = Field(3, ge=1, description="face views of a track before it is decided")
    keep: int = Field(5, ge=1, description="best-quality face views kept per track")
    aggregate: Literal["mean", "best"] = Field("mean", description="mean: the mean of the kept views is matched; "
                                               "best: each identity's best similarity over them")
    min_quality: float = Field(0.0, ge=0, le=1, description="face views below this quality are ignored")
    zone: list[Point] | None = None
    zone_name: str | None = None
    privacy: bool = Field(False, description="pixelate every face in the frame before any image is written")

    @field_validator("watchlist")
    @classmethod
    def _npz(cls, v: str) -> str:
        if not str(v).lower().endswith(".npz"):
            raise ValueError(f"watchlist {v!r}: expected a .npz file made by 'pockit faces enrol'")
        return v


@dataclass(slots=True)
class FaceTrack:
    raised: set = field(default_factory=set)  # identities already reported (face_match) / {None} (unknown)
    last: Match | None = None


class FaceRule(Rule):
    """Runtime base of the face rules: watch list, per-track views, privacy blur. Subclasses implement
    :meth:`decide_event` (called after each new view of a track)."""

    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        path = Path(cfg.watchlist).expanduser()
        try:
            self.watchlist = Watchlist.load(path)
        except WatchlistError as e:
            raise WatchlistError(f"rule {cfg.name!r}: {e}") from e
        if len(self.watchlist) == 0:
            raise WatchlistError(f"rule {cfg.name!r}: watch list {path} holds no identity")
        self.matcher = Matcher(self.watchlist, cfg.threshold, cfg.margin)
        self.faces = TrackFaces(self.matcher, keep=cfg.keep, min_frames=cfg.min_frames, aggregate=cfg.aggregate,
                                min_quality=cfg.min_quality)
        self.needs_frames = bool(cfg.privacy)

    def prepare(self, frame_size) -> None:
        super().prepare(frame_size)
        self.geometry_kind = "zone" if self.points is not None else None

    def forget(self, t: float, horizon: float) -> None:
        super().forget(t, horizon)
        for tid in [k for k in self.faces.tracks if k not in self.state]:
            self.faces.forget(tid)

    def step(self, v):
        if self.cfg.privacy and v.image is not None:
            blur_faces(v.image, face_boxes(v.dets, self.cfg.attribute))
        if not len(v.ids):
            return []
        if "embedding" not in v.dets.data and f"{self.cfg.attribute}.embedding" not in v.dets.data:
            self.warn_once("noface", f"the detections carry no face embeddings (data['embedding'] or "
                           f"data['{self.cfg.attribute}.embedding']): use model face-yunet, or an extra model named "
                           f"{self.cfg.attribute!r} with path face-yunet; nothing is matched")
            return []
        emb, quality, boxes = face_columns(v.dets, self.cfg.attribute)
        if v.rows is not None:
            emb, quality, boxes = emb[v.rows], quality[v.rows], boxes[v.rows]
        has = np.isfinite(emb).all(axis=1)
        if not has.any():
            return []
        inside = self.inside(v) if self.points is not None else np.ones(len(v.ids), bool)
        out = []
        for i in np.flatnonzero(has & inside):
            tid = int(v.ids[i])
            st = self.track(tid, v.t, FaceTrack)
            if not self.faces.add(tid, emb[i], float(quality[i])):
                continue
            m = self.faces.decide(tid)
            if m is None:
                continue
            st.last = m
            ev = self.decide_event(v, i, tid, st, m, boxes[i])
            if ev is not None:
                out.append(ev)
        return out

    def decide_event(self, v, i: int, tid: int, st: FaceTrack, m: Match, face_box: np.ndarray):  # pragma: no cover
        raise NotImplementedError

    def face_event(self, v, i: int, tid: int, m: Match, face_box: np.ndarray, **extra):
        ex = {"identity": m.identity, "similarity": round(m.similarity, 4), "second": round(m.second, 4),
              "frames": m.frames, "face_box": [round(float(x), 1) for x in face_box],
              "watchlist": Path(self.cfg.watchlist).name, **extra}
        ev = self.event(v.t, v.index, tid, v.xyxy[i], v.cls[i], extra=ex)
        self.hold(tid, v.t)
        return ev


def blur_for_rules(image: np.ndarray, dets, rules) -> int:
    """Pixelate, in ``image``, every face of ``dets`` (the DETECTOR's output, before tracking) for each face rule
    of ``rules`` (rule objects or configs) with ``privacy: true``; returns the number of boxes blurred. The
    pipeline calls this before tracking so no face reaches any output, tracked or not."""
    attrs = {getattr(getattr(r, "cfg", r), "attribute", "face") for r in rules
             if getattr(getattr(r, "cfg", r), "privacy", False)}
    n = 0
    for a in sorted(attrs):
        n += blur_faces(image, face_boxes(dets, a))
    return n
