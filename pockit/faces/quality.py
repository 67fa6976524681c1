"""Is a face good enough to enrol or to trust? Size, focus, detector score and pose, with messages.

Enrolment refuses a photo whose face is smaller than ``min_size`` px (shorter side of the box), blurred
(:func:`pockit.faces.align.sharpness` below ``min_sharpness``) or found with a detector score below
``min_score``; each refusal names the file and the measured value against the limit. At run time the face
backend gives each detection one number, :func:`quality_score`, so a track keeps its best views.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import face_size, frontal, sharpness

#: defaults of the enrolment check (pockit faces enrol --min-size/--min-sharpness/--min-score)
MIN_SIZE = 32.0        # px, shorter side of the face box: SFace upsamples smaller faces more than 3.5x
MIN_SHARPNESS = 30.0   # sharp GIF faces measured 38-198, the same faces blurred (sigma 1 px) 11-25
MIN_SCORE = 0.6        # YuNet score


@dataclass
class FaceQuality:
    """Measurements of one face and the reasons it is refused (empty = accepted)."""

    size: float
    sharpness: float
    score: float
    frontal: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"size": round(self.size, 1), "sharpness": round(self.sharpness, 1), "score": round(self.score, 3),
                "frontal": round(self.frontal, 3), "problems": list(self.problems)}


def check_face(image: np.ndarray, xyxy, landmarks, score: float, *, min_size: float = MIN_SIZE,
               min_sharpness: float = MIN_SHARPNESS, min_score: float = MIN_SCORE) -> FaceQuality:
    """Measure one detected face and list what fails the limits, e.g. ``face too small: 20 px < 32 px``."""
    size = float(face_size(np.asarray(xyxy, np.float32)[None])[0])
    sharp = sharpness(image, landmarks)
    front = float(frontal(np.asarray(landmarks, np.float32)[None])[0])
    q = FaceQuality(size=size, sharpness=sharp, score=float(score), frontal=front)
    if size < min_size:
        q.problems.append(f"face too small: {size:.0f} px < {min_size:g} px (shorter side of the face box)")
    if sharp < min_sharpness:
        q.problems.append(f"face blurred: sharpness {sharp:.1f} < {min_sharpness:g} (variance of the Laplacian)")
    if score < min_score:
        q.problems.append(f"face detector score {score:.2f} < {min_score:g}")
    return q


def quality_score(size, sharp, score, front) -> np.ndarray:
    """One number per face in [0, 1]: detector score x size (saturating at 64 px) x focus (saturating at
    sharpness 60) x pose (0.5 for a profile, 1 for frontal). Only used to rank a track's views."""
    size, sharp, score, front = (np.asarray(v, np.float32) for v in (size, sharp, score, front))
    return (np.clip(score, 0, 1) * np.clip(size / 64.0, 0, 1) * np.clip(sharp / 60.0, 0, 1)
            * (0.5 + 0.5 * np.clip(front, 0, 1))).astype(np.float32)


def measure_faces(image: np.ndarray, xyxy: np.ndarray, landmarks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N,) :func:`quality_score` of the faces of one frame."""
    if len(xyxy) == 0:
        return np.zeros(0, np.float32)
    sharp = [sharpness(image, lm) for lm in landmarks]
    return quality_score(face_size(xyxy), sharp, scores, frontal(landmarks))
