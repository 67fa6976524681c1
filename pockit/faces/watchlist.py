"""The watch list: enrolled identities and their face embeddings, saved as one ``.npz`` file.

``enrol(folder)`` reads one sub-folder per identity (the folder name is the identity), finds the face in each
photo, checks its quality (:mod:`pockit.faces.quality`) and keeps the SFace embedding of every accepted photo.
A photo is refused, with its file named, when it cannot be read, holds no face, holds two faces of similar size
(which one is the person?), or its face is too small, blurred or uncertain. The ``.npz`` holds only names,
embeddings (not images), the photo file names and the embedder's sha256, so a watch list made with another
recognizer is refused when loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .quality import MIN_SCORE, MIN_SHARPNESS, MIN_SIZE, FaceQuality, check_face

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
FORMAT_VERSION = 1
#: a second face at least this fraction of the largest face's size makes the photo ambiguous
SECOND_FACE_RATIO = 0.5


class WatchlistError(ValueError):
    """A watch list file or enrolment folder cannot be used; the message names the file and what is wrong."""


@dataclass
class Watchlist:
    """Identities (``names``) and their enrolled embeddings: ``embeddings`` (M,128) float32 L2-normalised,
    ``labels`` (M,) index into ``names``, ``files`` (M,) the photo each came from."""

    names: list[str]
    embeddings: np.ndarray
    labels: np.ndarray
    files: list[str] = field(default_factory=list)
    embedder_sha256: str = ""

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, np.float32)
        if self.embeddings.ndim != 2:
            raise WatchlistError(f"watch list: embeddings must be an (M, D) array, got shape {self.embeddings.shape}")
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        if len(self.labels) != len(self.embeddings):
            raise WatchlistError(f"watch list: {len(self.embeddings)} embeddings but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise WatchlistError(f"watch list: a label is outside 0..{len(self.names) - 1}")
        if len(set(self.names)) != len(self.names):
            raise WatchlistError(f"watch list: duplicate identity names {sorted(self.names)}")
        if not self.files:
            self.files = [""] * len(self.labels)
        norm = np.linalg.norm(self.embeddings, axis=1, keepdims=True)
        self.embeddings = (self.embeddings / np.where(norm > 0, norm, 1.0)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            raise WatchlistError(f"{path}: a watch list is saved as .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part.npz")
        np.savez(tmp, version=np.int64(FORMAT_VERSION), names=np.array(self.names, dtype=str),
                 embeddings=self.embeddings, labels=self.labels, files=np.array(self.files, dtype=str),
                 embedder_sha256=np.array(self.embedder_sha256))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, embedder_sha256: str | None = None) -> Watchlist:
        """Read a watch list; ``embedder_sha256`` (when given) must match the one it was enrolled with."""
        path = Path(path)
        if not path.is_file():
            raise WatchlistError(f"watch list {path} does not exist; make one with 'pockit faces enrol FOLDER -o {path}'")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("names", "embeddings", "labels") if k not in z.files]
                if missing:
                    raise WatchlistError(f"{path}: not a pockit watch list (missing {', '.join(missing)})")
                version = int(z["version"]) if "version" in z.files else FORMAT_VERSION
                if version > FORMAT_VERSION:
                    raise WatchlistError(f"{path}: watch list format {version} is newer than this pockit ({FORMAT_VERSION})")
                emb = z["embeddings"]
                if emb.ndim != 2 or not np.isfinite(emb).all():
                    raise WatchlistError(f"{path}: embeddings must be a finite 2-D array, got shape {emb.shape}")
                wl = cls(names=[str(n) for n in z["names"]], embeddings=emb, labels=z["labels"],
                         files=[str(f) for f in z["files"]] if "files" in z.files else [],
                         embedder_sha256=str(z["embedder_sha256"]) if "embedder_sha256" in z.files else "")
        except WatchlistError as e:
            if str(path) in str(e):
                raise
            raise WatchlistError(f"{path}: {e}") from e
        except (OSError, ValueError, KeyError) as e:
            raise WatchlistError(f"{path}: cannot read the watch list ({e})") from e
        if embedder_sha256 and wl.embedder_sha256 and wl.embedder_sha256 != embedder_sha256:
            raise WatchlistError(
                f"{path}: enrolled with another face recognizer (sha256 {wl.embedder_sha256[:12]}..., this one "
                f"{embedder_sha256[:12]}...); enrol the photos again")
        return wl


@dataclass
class EnrolResult:
    watchlist: Watchlist
    accepted: list[tuple[str, str, FaceQuality]] = field(default_factory=list)   # identity, file, quality
    rejected: list[tuple[str, str, str]] = field(default_factory=list)           # identity, file, reason
    missing: list[str] = field(default_factory=list)  # identity folders with no accepted photo

    def summary(self) -> dict[str, Any]:
        return {"identities": len(self.watchlist), "photos": len(self.accepted), "refused": len(self.rejected),
                "missing": list(self.missing)}


def pick_face(image: np.ndarray, dets, *, min_size: float = MIN_SIZE, min_sharpness: float = MIN_SHARPNESS,
              min_score: float = MIN_SCORE) -> tuple[int | None, str | FaceQuality]:
    """The one face of an enrolment photo: (index, quality) or (None, reason)."""
    if len(dets) == 0:
        return None, "no face found"
    sizes = np.minimum(dets.xyxy[:, 2] - dets.xyxy[:, 0], dets.xyxy[:, 3] - dets.xyxy[:, 1])
    order = np.argsort(-sizes, kind="stable")
    best = int(order[0])
    if len(order) > 1 and sizes[order[1]] >= SECOND_FACE_RATIO * sizes[best]:
        return None, (f"{len(dets)} faces of similar size ({sizes[best]:.0f} and {sizes[order[1]]:.0f} px): crop the "
                      "photo to the one person")
    q = check_face(image, dets.xyxy[best], dets.data["landmarks"][best], float(dets.scores[best]),
                   min_size=min_size, min_sharpness=min_sharpness, min_score=min_score)
    if not q.ok:
        return None, "; ".join(q.problems)
    return best, q


def enrol(folder: str | Path, detector: Any = None, *, min_size: float = MIN_SIZE,
          min_sharpness: float = MIN_SHARPNESS, min_score: float = MIN_SCORE) -> EnrolResult:
    """Build a :class:`Watchlist` from ``folder/<identity>/<photos>``; see the module docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WatchlistError(f"enrolment folder {folder} does not exist or is not a folder")
    people = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise WatchlistError(f"{folder}: no identity folders inside; expected {folder}/<name>/<photo>.jpg, one folder "
                             "per person")
    if detector is None:
        from ..inference.face_backend import FaceDetector
        from ..registry import resolve_model

        detector = FaceDetector(resolve_model("face-yunet"), conf=0.5)
    res_rejected: list[tuple[str, str, str]] = []
    for stray in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS):
        res_rejected.append(("", str(stray), "not inside an identity folder (the folder name is the identity)"))
    names, embs, labels, files, accepted, missing = [], [], [], [], [], []
    for person in people:
        photos = sorted(p for p in person.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        got = 0
        for photo in photos:
            image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            if image is None:
                res_rejected.append((person.name, str(photo), "cannot read the image"))
                continue
            dets = detector.detect([image])[0]
            idx, q = pick_face(image, dets, min_size=min_size, min_sharpness=min_sharpness, min_score=min_score)
            if idx is None:
                res_rejected.append((person.name, str(photo), str(q)))
                continue
            if person.name not in names:
                names.append(person.name)
            embs.append(dets.data["embedding"][idx])
            labels.append(names.index(person.name))
            files.append(str(photo.relative_to(folder)))
            accepted.append((person.name, str(photo), q))
            got += 1
        if got == 0:
            missing.append(person.name)
    emb_arr = np.stack(embs).astype(np.float32) if embs else np.zeros((0, 128), np.float32)
    sha = str((getattr(detector, "info", {}) or {}).get("embedder", {}).get("sha256", ""))
    wl = Watchlist(names=names, embeddings=emb_arr, labels=np.asarray(labels, np.int64), files=files,
                   embedder_sha256=sha)
    return EnrolResult(watchlist=wl, accepted=accepted, rejected=res_rejected, missing=missing)
