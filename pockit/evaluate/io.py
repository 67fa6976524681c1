"""Loading boxes for detection evaluation: MOTChallenge text files and COCO JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Detections, read_mot
from .detection import EvaluationError


def load_boxes(path: str | Path, gt: bool, categories: dict[int, int] | None = None
               ) -> tuple[dict[Any, Detections], dict[int, str], dict[int, int]]:
    """Read boxes keyed by frame / image id -> (boxes, class names, COCO category id -> class index).

    ``.txt``: a MOT file (frame 1-based is the key; class from pockit's column 8 when present).
    ``.json``: COCO ground truth (dict with ``annotations``) or COCO results (a list of
    ``{image_id, category_id, bbox, score}``; pass the gt's ``categories`` mapping).
    """
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"{'ground-truth' if gt else 'prediction'} file not found: {path}")
    if path.suffix.lower() in (".txt", ".csv"):
        run_names = None if gt else _run_class_names(path)
        boxes = read_mot(path, class_names=run_names, gt=gt)
        names: dict[int, str] = dict(run_names or {})
        for d in boxes.values():
            names.update(d.class_names)
            for c in np.unique(d.class_ids):  # class ids the file uses but no name covers
                names.setdefault(int(c), str(int(c)))
        return boxes, names or {0: "person"}, {}
    if path.suffix.lower() != ".json":
        raise EvaluationError(f"{path}: unsupported box file; use a MOT .txt or COCO .json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvaluationError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, dict) and "annotations" in data:
        cats = sorted(data.get("categories", []), key=lambda c: c["id"])
        cmap = {int(c["id"]): i for i, c in enumerate(cats)}
        names = {i: str(c.get("name", c["id"])) for i, c in enumerate(cats)}
        rows: dict[Any, list] = {int(im["id"]): [] for im in data.get("images", [])}
        anns = data["annotations"]
    elif isinstance(data, list):
        if categories is None:
            raise EvaluationError(f"{path}: COCO results need the ground truth's categories (COCO gt JSON)")
        cmap, names, rows, anns = categories, {}, {}, data
    else:
        raise EvaluationError(f"{path}: expected COCO ground truth (with 'annotations') or a COCO results list")
    for i, a in enumerate(anns):
        try:
            cid = cmap[int(a["category_id"])]
            rows.setdefault(int(a["image_id"]), []).append((*a["bbox"], float(a.get("score", 1.0)), cid))
        except KeyError as e:
            raise EvaluationError(f"{path}: annotation #{i} lacks or has an unknown {e}") from None
    out = {}
    for k, r in rows.items():
        arr = np.asarray(r, float).reshape(-1, 6)
        xyxy = np.c_[arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]]
        out[k] = Detections(xyxy=xyxy, scores=arr[:, 4], class_ids=arr[:, 5].astype(int), class_names=names)
    return out, names, cmap


def _run_class_names(path: Path) -> dict[int, str] | None:
    """The model's class names from run.json when ``path`` is a run's ``tracks/<source>.txt``."""
    rj = path.parent.parent / "run.json"
    if path.parent.name != "tracks" or not rj.exists():
        return None
    try:
        names = (json.loads(rj.read_text(encoding="utf-8")).get("model") or {}).get("class_names") or {}
        return {int(k): str(v) for k, v in names.items()} or None
    except (ValueError, AttributeError, TypeError):
        return None


def collapse_classes(boxes: dict[Any, Detections], name: str) -> dict[Any, Detections]:
    """All boxes as class 0 called ``name`` (class-agnostic evaluation)."""
    return {k: Detections(xyxy=d.xyxy, scores=d.scores, class_ids=np.zeros(len(d), np.int32),
                          track_ids=d.track_ids, class_names={0: name}) for k, d in boxes.items()}
