"""MOTChallenge text files: ``frame,id,x,y,w,h,conf,c8,c9,c10`` (frame is 1-based).

pockit writes its tracks as ``frame,id,x,y,w,h,score,class_id,-1,-1``: MOT evaluators read only
the first 7 columns; pockit reads the class back from column 8 when the file carries one (column 8
non-negative integers and columns 9-10 all -1). Ground-truth files (MOT15 ``-1`` columns, MOT17
``consider,class,visibility``, PETS ground-plane columns) read as class 0 unless told otherwise.
"""
from __future__ import annotations

import configparser
import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .detections import Detections


class MotFormatError(ValueError):
    pass


def load_mot_array(path: str | Path) -> np.ndarray:
    """Rows as an (N, >=7) float64 array; a malformed line raises MotFormatError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MOT file not found: {path}")
    rows = []
    width = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.replace(" ", "").split(",") if "," in line else line.split()
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                raise MotFormatError(f"{path}:{lineno}: not a MOT row (numbers separated by commas): {line[:80]!r}") from None
            bad = next((k for k, v in enumerate(vals) if not math.isfinite(v)), None)
            if bad is not None:
                raise MotFormatError(f"{path}:{lineno}: column {bad + 1} is not a finite number: {parts[bad]!r}")
            if len(vals) < 6:
                raise MotFormatError(f"{path}:{lineno}: a MOT row needs at least 6 columns (frame,id,x,y,w,h), got {len(vals)}")
            for k, col in ((0, "frame"), (1, "id")):
                if vals[k] != int(vals[k]) or abs(vals[k]) > 2**53:
                    raise MotFormatError(f"{path}:{lineno}: column {k + 1} ({col}) is not a whole number: {parts[k]!r}")
            vals += [1.0] * (7 - len(vals)) if len(vals) < 7 else []
            vals += [-1.0] * (10 - len(vals))
            rows.append(vals[:10])
            width = 10
    if not rows:
        return np.zeros((0, width or 10))
    return np.asarray(rows, np.float64)


def read_mot(
    path: str | Path,
    class_names: Mapping[int, str] | None = None,
    gt: bool | None = None,
    min_visibility: float = 0.0,
) -> dict[int, Detections]:
    """Read a MOT file into {frame (1-based): Detections with track ids}.

    gt=True applies ground-truth conventions: rows whose col 7 ('consider') is 0 are skipped.
    """
    arr = load_mot_array(path)
    names = dict(class_names or {0: "person"})
    if len(arr) == 0:
        return {}
    c8, c9, c10 = arr[:, 7], arr[:, 8], arr[:, 9]
    has_class = bool(np.all(c9 == -1) and np.all(c10 == -1) and np.all(c8 >= 0) and np.all(c8 == np.round(c8)))
    mot17_gt = bool(gt and not has_class and np.all(c8 == np.round(c8)) and np.all((c9 >= 0) & (c9 <= 1)) and np.all(c10 == -1))
    if gt:
        keep = arr[:, 6] != 0
        if mot17_gt and min_visibility > 0:
            keep &= c9 >= min_visibility
        arr = arr[keep]
        if len(arr) == 0:  # every row marked 'do not consider'
            return {}
    classes = (arr[:, 7] if has_class else np.zeros(len(arr))).astype(np.int32)
    out: dict[int, Detections] = {}
    frames = arr[:, 0].astype(int)
    order = np.argsort(frames, kind="stable")
    arr, frames, classes = arr[order], frames[order], classes[order]
    bounds = np.flatnonzero(np.diff(frames)) + 1
    for chunk, cls in zip(np.split(arr, bounds), np.split(classes, bounds)):
        xyxy = np.stack([chunk[:, 2], chunk[:, 3], chunk[:, 2] + chunk[:, 4], chunk[:, 3] + chunk[:, 5]], axis=1)
        scores = np.clip(chunk[:, 6], 0, 1) if not gt else np.ones(len(chunk))
        out[int(chunk[0, 0])] = Detections(xyxy=xyxy, scores=scores, class_ids=cls, track_ids=chunk[:, 1].astype(np.int64),
                                           class_names=names)
    return out


def mot_rows(frame_1based: int, dets: Detections) -> list[str]:
    rows = []
    for (x1, y1, x2, y2), tid, s, c in zip(dets.xyxy, dets.track_ids, dets.scores, dets.class_ids):
        rows.append(f"{frame_1based},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.4f},{int(c)},-1,-1")
    return rows


def write_mot(tracks: Mapping[int, Detections] | Iterable[tuple[int, Detections]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = tracks.items() if isinstance(tracks, Mapping) else tracks
    with open(path, "w", encoding="utf-8") as f:
        for frame, dets in items:
            for row in mot_rows(frame, dets):
                f.write(row + "\n")
    return path


def seqinfo_for(tracks_path: str | Path) -> dict[str, str]:
    """[Sequence] of the seqinfo.ini beside the file or beside its gt/ folder ({} if none)."""
    p = Path(tracks_path).resolve()
    for cand in (p.parent / "seqinfo.ini", p.parent.parent / "seqinfo.ini"):
        if cand.exists():
            cp = configparser.ConfigParser()
            cp.read(cand, encoding="utf-8")
            if cp.has_section("Sequence"):
                return dict(cp["Sequence"])
    return {}
