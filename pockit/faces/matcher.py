"""Match face embeddings against a :class:`~pockit.faces.watchlist.Watchlist`, per face and per track.

Similarity is the cosine of L2-normalised SFace embeddings; an identity's similarity is the best over its
enrolled photos. A face (or a track) is that identity when its similarity is at least ``threshold`` AND beats the
second-best identity by at least ``margin``; otherwise it is unknown. SFace's published operating point is
cosine 0.363 (OpenCV model zoo); on the shared clips same-person similarities were 0.43-0.94 and different people
at most 0.30 (../shared/data/MODELS.md).

Per track (:class:`TrackFaces`): the ``keep`` best-quality views (the face backend's ``quality``) are kept; the
track's embedding is their renormalised mean (``aggregate: mean``) or each identity's best similarity over them
(``best``); no decision before ``min_frames`` views were seen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .watchlist import Watchlist

THRESHOLD = 0.363
MARGIN = 0.05


@dataclass(frozen=True)
class Match:
    """The decision for one face or track. ``identity`` None = unknown (``reason`` says why)."""

    identity: str | None
    similarity: float        # best identity's similarity
    second: float            # second-best identity's similarity (-1 when the list has one identity)
    best: str | None         # best identity whatever the decision
    frames: int = 1
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.identity is not None


class Matcher:
    def __init__(self, watchlist: Watchlist, threshold: float = THRESHOLD, margin: float = MARGIN) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is not a cosine similarity in [-1, 1]")
        if margin < 0:
            raise ValueError(f"margin {margin} must be >= 0")
        self.watchlist = watchlist
        self.threshold = float(threshold)
        self.margin = float(margin)
        # one-hot (M, K): enrolled embedding m belongs to identity k
        self._member = np.zeros((len(watchlist.labels), len(watchlist.names)), bool)
        self._member[np.arange(len(watchlist.labels)), watchlist.labels] = True

    @property
    def names(self) -> list[str]:
        return self.watchlist.names

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, K) per-identity similarity (best over each identity's photos) of (N, D) embeddings."""
        e = np.asarray(embeddings, np.float32).reshape(-1, self.watchlist.dim)
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        e = e / np.where(norm > 0, norm, 1.0)
        sims = e @ self.watchlist.embeddings.T  # (N, M)
        out = np.full((len(e), len(self.names)), -1.0, np.float32)
        for k in range(len(self.names)):
            cols = self._member[:, k]
            if cols.any():
                out[:, k] = sims[:, cols].max(axis=1)
        return out

    def decide(self, sims: np.ndarray, frames: int = 1) -> Match:
        """Threshold + margin decision on one row of per-identity similarities."""
        sims = np.asarray(sims, np.float32).reshape(-1)
        if len(sims) == 0:
            return Match(None, -1.0, -1.0, None, frames, "empty watch list")
        order = np.argsort(-sims, kind="stable")
        best = float(sims[order[0]])
        second = float(sims[order[1]]) if len(sims) > 1 else -1.0
        name = self.names[int(order[0])]
        if best < self.threshold:
            return Match(None, best, second, name, frames, f"similarity {best:.3f} < threshold {self.threshold:g}")
        if best - second < self.margin:
            return Match(None, best, second, name, frames,
                         f"margin {best - second:.3f} to {self.names[int(order[1])]} < {self.margin:g}")
        return Match(name, best, second, name, frames)

    def match(self, embeddings: np.ndarray) -> list[Match]:
        """One decision per embedding."""
        return [self.decide(row) for row in self.similarities(embeddings)]


@dataclass
class _Track:
    views: list[tuple[float, int, np.ndarray]] = field(default_factory=list)  # (quality, order, embedding)
    seen: int = 0


class TrackFaces:
    """Per-track face evidence and identity decisions; see the module docstring."""

    def __init__(self, matcher: Matcher, *, keep: int = 5, min_frames: int = 3,
                 aggregate: Literal["mean", "best"] = "mean", min_quality: float = 0.0) -> None:
        if aggregate not in ("mean", "best"):
            raise ValueError(f"aggregate {aggregate!r}: expected 'mean' or 'best'")
        self.matcher = matcher
        self.keep = max(1, int(keep))
        self.min_frames = max(1, int(min_frames))
        self.aggregate = aggregate
        self.min_quality = float(min_quality)
        self.tracks: dict[int, _Track] = {}

    def add(self, track_id: int, embedding: np.ndarray, quality: float = 1.0) -> bool:
        """One view of a track's face; False (ignored) when it has no embedding (NaN) or too low a quality."""
        emb = np.asarray(embedding, np.float32).reshape(-1)
        q = float(quality) if np.isfinite(quality) else 1.0
        if emb.size == 0 or not np.isfinite(emb).all() or q < self.min_quality:
            return False
        tr = self.tracks.setdefault(int(track_id), _Track())
        tr.seen += 1
        tr.views.append((q, tr.seen, emb))
        if len(tr.views) > self.keep:  # drop the lowest quality (the oldest among equals)
            tr.views.sort(key=lambda v: (-v[0], -v[1]))
            tr.views.pop()
        return True

    def seen(self, track_id: int) -> int:
        tr = self.tracks.get(int(track_id))
        return tr.seen if tr else 0

    def decide(self, track_id: int) -> Match | None:
        """The track's decision, or None before ``min_frames`` views."""
        tr = self.tracks.get(int(track_id))
        if tr is None or tr.seen < self.min_frames:
            return None
        embs = np.stack([v[2] for v in tr.views])
        if self.aggregate == "mean":
            sims = self.matcher.similarities(embs.mean(axis=0, keepdims=True))[0]
        else:
            sims = self.matcher.similarities(embs).max(axis=0)
        return self.matcher.decide(sims, frames=tr.seen)

    def forget(self, track_id: int) -> None:
        self.tracks.pop(int(track_id), None)


def face_columns(dets, model: str = "face") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per detection of ``dets``: embedding (N, D) (NaN rows where the detection has no face), quality (N,) and
    the face box (N, 4).

    Reads the face backend's own arrays (``embedding``, ``quality``: a detection of class ``face`` of the main
    model) or those of an extra model named ``model`` (``<model>.embedding``, ``<model>.quality``, and
    ``<model>.xyxy`` for a face attached to a person); a row's own box is its face box when it has no
    ``<model>.xyxy``."""
    n = len(dets)
    data = dets.data
    emb = None
    for key in ("embedding", f"{model}.embedding"):
        if key in data:
            col = np.asarray(data[key], np.float32).reshape(n, -1)
            if emb is None:
                emb = col.copy()
            else:  # both present: fill the rows the first one lacks
                fill = ~np.isfinite(emb).all(axis=1)
                emb[fill] = col[fill]
    if emb is None:
        emb = np.full((n, 128), np.nan, np.float32)
    quality = np.ones(n, np.float32)
    for key in (f"{model}.quality", "quality"):
        if key in data:
            q = np.asarray(data[key], np.float32).reshape(n)
            quality = np.where(np.isfinite(q), q, quality)
    boxes = dets.xyxy.astype(np.float32).copy()
    if f"{model}.xyxy" in data:
        fb = np.asarray(data[f"{model}.xyxy"], np.float32).reshape(n, 4)
        ok = np.isfinite(fb).all(axis=1)
        boxes[ok] = fb[ok]
    return emb, quality, boxes
