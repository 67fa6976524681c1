"""Face recognition for watch lists: enrolment with a quality check, an embedding store, per-track matching.

- :func:`enrol` builds a :class:`Watchlist` from ``folder/<identity>/<photos>`` (``pockit faces enrol``);
- :class:`Matcher` decides identity vs unknown (threshold and margin), :class:`TrackFaces` per track;
- :func:`face_columns` reads a frame's face embeddings, whether faces are objects of their own (class ``face``)
  or attached to persons (``data["face.embedding"]``, see README "Several models in one PoC");
- :func:`blur_faces` hides every face box of a frame (the rules' ``privacy: true``).

The embeddings come from the ``face`` detector backend (:mod:`pockit.inference.face_backend`).
"""
from .matcher import MARGIN, THRESHOLD, Match, Matcher, TrackFaces, face_columns
from .privacy import blur_faces, face_boxes
from .quality import FaceQuality, check_face, quality_score
from .watchlist import EnrolResult, Watchlist, WatchlistError, enrol

__all__ = [
    "MARGIN", "THRESHOLD", "EnrolResult", "FaceQuality", "Match", "Matcher", "TrackFaces", "Watchlist",
    "WatchlistError", "blur_faces", "check_face", "enrol", "face_boxes", "face_columns", "quality_score",
]
