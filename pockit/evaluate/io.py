"""Loading boxes for detection evaluation: MOTChallenge text files and COCO JSON (read by :mod:`pockit.data.coco`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Detections, read_mot
from ..core.mot import MotFormatError
from ..data.coco import coco_boxes
from ..data.errors import LabelError
from .detection import EvaluationError


class BoxFileError(LabelError, EvaluationError):
    """A ground-truth or prediction file pockit cannot read: names the file, the line or JSON path
    (``annotations[3].score``), the field and the bad value. Both a LabelError and an EvaluationError."""


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
        try:
            boxes = read_mot(path, class_names=run_names, gt=gt)
        except MotFormatError as e:  # "<file>:<line>: problem"
            head, _, problem = str(e)[len(str(path)) + 1:].partition(": ")
            raise BoxFileError(problem or str(e), file=path, line=int(head) if head.isdigit() else None) from None
        except UnicodeDecodeError as e:
            raise BoxFileError(f"not UTF-8 text (byte {e.start})", file=path) from None
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
        raise BoxFileError(f"not valid JSON ({e})", file=path) from None
    except UnicodeDecodeError as e:
        raise BoxFileError(f"not UTF-8 text (byte {e.start})", file=path) from None
    except RecursionError:
        raise BoxFileError("JSON nested too deeply to read", file=path) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise BoxFileError(f"JSON that cannot be read: {str(e)[:80]}", file=path) from None
    try:
        cmap, names, rows = coco_boxes(data, categories)
    except LabelError as e:
        raise BoxFileError(e.problem, file=path, field=e.field, **({"value": e.value} if e.has_value else {})) from None
    out = {}
    for k, r in rows.items():
        arr = np.asarray(r, float).reshape(-1, 6)
        out[k] = Detections(xyxy=arr[:, :4], scores=arr[:, 4], class_ids=arr[:, 5].astype(int), class_names=names)
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
