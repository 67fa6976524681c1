"""The one data type that flows through pockit: a frame's detections as numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

ANCHORS = ("bottom_center", "center", "top_center")


def _as(a, dtype, shape_tail=()) -> np.ndarray:
    arr = np.asarray(a if a is not None else np.zeros((0, *shape_tail)), dtype=dtype)
    if shape_tail and arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    return arr


@dataclass
class Detections:
    """Boxes of one frame.

    xyxy: (N, 4) float32 pixel boxes in the original frame; scores: (N,) float32;
    class_ids: (N,) int32; track_ids: (N,) int64 (-1 = not tracked);
    class_names: id -> name mapping of the model; data: extra per-box arrays (length N).
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray | None = None
    class_ids: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    class_names: Mapping[int, str] = field(default_factory=dict)
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as(self.xyxy, np.float32, (4,)).reshape(-1, 4)
        n = len(self.xyxy)
        self.scores = _as(self.scores, np.float32).reshape(-1) if self.scores is not None else np.ones(n, np.float32)
        self.class_ids = _as(self.class_ids, np.int32).reshape(-1) if self.class_ids is not None else np.zeros(n, np.int32)
        self.track_ids = (
            np.full(n, -1, np.int64) if self.track_ids is None else _as(self.track_ids, np.int64).reshape(-1)
        )
        for name, arr in (("scores", self.scores), ("class_ids", self.class_ids), ("track_ids", self.track_ids)):
            if len(arr) != n:
                raise ValueError(f"Detections.{name} has {len(arr)} entries but xyxy has {n} boxes")
        for k, v in self.data.items():
            if len(v) != n:
                raise ValueError(f"Detections.data[{k!r}] has {len(v)} entries but xyxy has {n} boxes")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, class_names: Mapping[int, str] | None = None) -> "Detections":
        return cls(class_names=dict(class_names or {}))

    @classmethod
    def merge(cls, items: Iterable["Detections"]) -> "Detections":
        items = list(items)
        if not items:
            return cls.empty()
        names: dict[int, str] = {}
        for d in items:
            names.update(d.class_names)
        keys = set.intersection(*(set(d.data) for d in items)) if items else set()
        return cls(
            xyxy=np.concatenate([d.xyxy for d in items]),
            scores=np.concatenate([d.scores for d in items]),
            class_ids=np.concatenate([d.class_ids for d in items]),
            track_ids=np.concatenate([d.track_ids for d in items]),
            class_names=names,
            data={k: np.concatenate([d.data[k] for d in items]) for k in keys},
        )

    @classmethod
    def from_supervision(cls, det: Any, class_names: Mapping[int, str] | None = None) -> "Detections":
        n = len(det.xyxy)
        return cls(
            xyxy=det.xyxy,
            scores=det.confidence if det.confidence is not None else np.ones(n, np.float32),
            class_ids=det.class_id if det.class_id is not None else np.zeros(n, np.int32),
            track_ids=det.tracker_id if det.tracker_id is not None else None,
            class_names=dict(class_names or {}),
        )

    def to_supervision(self) -> Any:
        import supervision as sv

        tid = self.track_ids if (self.track_ids >= 0).any() else None
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            confidence=self.scores.astype(np.float32),
            class_id=self.class_ids.astype(int),
            tracker_id=None if tid is None else tid.astype(int),
            data={k: np.asarray(v) for k, v in self.data.items()},
        )

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, idx) -> "Detections":
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        return Detections(
            xyxy=self.xyxy[idx],
            scores=self.scores[idx],
            class_ids=self.class_ids[idx],
            track_ids=self.track_ids[idx],
            class_names=self.class_names,
            data={k: v[idx] for k, v in self.data.items()},
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def name_of(self, class_id: int) -> str:
        return self.class_names.get(int(class_id), str(int(class_id)))

    @property
    def names(self) -> list[str]:
        return [self.name_of(c) for c in self.class_ids]

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def anchors(self, kind: str = "bottom_center") -> np.ndarray:
        """(N, 2) anchor points: bottom_center (the feet), center or top_center."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        if kind == "bottom_center":
            y = self.xyxy[:, 3]
        elif kind == "center":
            y = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2
        elif kind == "top_center":
            y = self.xyxy[:, 1]
        else:
            raise ValueError(f"unknown anchor {kind!r}; expected one of {ANCHORS}")
        return np.stack([x, y], axis=1)

    def filter(self, mask: np.ndarray) -> "Detections":
        return self[np.asarray(mask, bool)]

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, classes={sorted(set(self.names))}, tracked={int((self.track_ids >= 0).sum())})"


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N,4) and (M,4) xyxy boxes -> (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
