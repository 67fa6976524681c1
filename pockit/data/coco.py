"""COCO instances JSON (CVAT, Label Studio, Roboflow, Detectron2): bounding boxes only.

Category ids map to class ids 0..n-1 in ascending category-id order; ``iscrowd`` becomes ``ignore``;
``score`` (prediction files) becomes ``scores``. pockit keeps ``source``/``frame``/``timestamp``
as extra keys of each image entry (other tools ignore them). Segmentations are not read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ._io import place_image
from .dataset import Dataset, ImageRecord, infer_source_frame, validate
from .report import ValidationReport


def read_coco(path: str | Path, images_dir: str | Path | None = None, classes: Sequence[str] | None = None, *,
              on_outside: str = "clip", dup_iou: float = 0.95, check_images: bool = True, name: str | None = None) -> Dataset:
    """Read a COCO JSON file; images are resolved against ``images_dir`` (default: the JSON's folder,
    or its ``images/`` subfolder when the file is not found beside the JSON).

    classes: restrict/reorder to these names (annotations of other categories -> unknown_class).
    A JSON syntax error raises ValueError naming file, line and column (nothing can be read).
    """
    path = Path(path)
    if path.is_dir():
        cands = sorted(path.glob("*.json"))
        if len(cands) != 1:
            raise FileNotFoundError(f"expected one COCO .json in {path}, found {[c.name for c in cands]}; pass the file")
        path = cands[0]
    if not path.exists():
        raise FileNotFoundError(f"COCO file not found: {path}")
    rep = ValidationReport(title=f"COCO import of {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        rep.add("malformed_file", "skipped", f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}", file=str(path),
                line=e.lineno)
        return Dataset([], list(classes or []), path.parent, rep, name or (path.parent.name if path.stem == 'annotations' else path.stem))
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("categories"), list):
        rep.add("malformed_file", "skipped", "not a COCO instances file: needs top-level 'images' and 'categories' lists",
                file=str(path))
        return Dataset([], list(classes or []), path.parent, rep, name or (path.parent.name if path.stem == 'annotations' else path.stem))
    cats = {}
    for k, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            rep.add("malformed_line", "skipped", f"categories[{k}] lacks 'id' or 'name'", file=str(path))
            continue
        cats[c["id"]] = str(c["name"])
    names = list(classes) if classes is not None else [cats[k] for k in sorted(cats)]
    index = {n: i for i, n in enumerate(names)}
    if images_dir is None:
        images_dir = path.parent
        first = next((im.get("file_name") for im in doc["images"] if isinstance(im, dict)), None)
        if first and not (path.parent / first).exists() and (path.parent / "images" / first).exists():
            images_dir = path.parent / "images"
    images_dir = Path(images_dir)
    recs: dict = {}
    for k, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            rep.add("malformed_line", "skipped", f"images[{k}] lacks 'id' or 'file_name'", file=str(path))
            continue
        file = str(im["file_name"])
        rec = ImageRecord(file, images_dir / file, int(im.get("width") or 0), int(im.get("height") or 0),
                          source=str(im.get("source", "default")), frame=im.get("frame"), timestamp=im.get("timestamp"),
                          split=im.get("split"),
                          meta={"label_file": str(path), "coco_id": im["id"]})
        rec.meta["_boxes"] = []
        recs[im["id"]] = rec
    any_score = False
    for k, a in enumerate(doc.get("annotations") or []):
        where = f"annotations[{k}]"
        if not isinstance(a, dict) or a.get("image_id") not in recs:
            rep.add("malformed_line", "dropped", f"{where} refers to unknown image_id {a.get('image_id') if isinstance(a, dict) else a!r}",
                    file=str(path))
            continue
        rec = recs[a["image_id"]]
        bbox = a.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            rep.add("malformed_line", "dropped", f"{where}: bbox {bbox!r} is not [x, y, w, h]", file=str(path), image=rec.file)
            continue
        box = [x, y, x + w, y + h]
        cname = cats.get(a.get("category_id"))
        if cname is None or cname not in index:
            shown = cname if cname is not None else f"category_id {a.get('category_id')}"
            rep.add("unknown_class", "dropped", f"{where}: class {shown!r} is not one of {names}", file=str(path),
                    image=rec.file, box=box, class_name=cname)
            continue
        any_score |= "score" in a
        rec.meta["_boxes"].append((box, index[cname], bool(a.get("iscrowd", 0)), float(a.get("score", 1.0))))
    images = []
    for rec in recs.values():
        bx = rec.meta.pop("_boxes")
        rec.xyxy = np.array([b[0] for b in bx], np.float64).reshape(-1, 4)
        rec.class_ids = np.array([b[1] for b in bx], np.int64)
        rec.ignore = np.array([b[2] for b in bx], bool)
        rec.scores = np.array([b[3] for b in bx], np.float64) if any_score else None
        images.append(rec)
    ds = Dataset(images, names, images_dir, rep, name or (path.parent.name if path.stem == 'annotations' else path.stem))
    infer_source_frame(ds.images)
    return validate(ds, on_outside=on_outside, dup_iou=dup_iou, check_images=check_images)


def to_coco_dict(ds: Dataset, with_scores: bool = False) -> dict:
    """The dataset as a COCO instances dict (category id = class id + 1, image id = position + 1)."""
    images, anns = [], []
    for i, im in enumerate(ds.images, 1):
        entry = {"id": i, "file_name": im.file, "width": im.width, "height": im.height, "source": im.source}
        if im.frame is not None:
            entry["frame"] = int(im.frame)
        if im.timestamp is not None:
            entry["timestamp"] = float(im.timestamp)
        if im.split is not None:
            entry["split"] = im.split
        images.append(entry)
        for j, (b, c, ig) in enumerate(zip(im.xyxy, im.class_ids, im.ignore)):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            a = {"id": len(anns) + 1, "image_id": i, "category_id": int(c) + 1,
                 "bbox": [round(float(b[0]), 3), round(float(b[1]), 3), round(w, 3), round(h, 3)],
                 "area": round(w * h, 3), "iscrowd": int(ig)}
            if with_scores and im.scores is not None:
                a["score"] = round(float(im.scores[j]), 5)
            anns.append(a)
    cats = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(ds.class_names)]
    return {"info": {"description": ds.name, "version": "1.0", "contributor": "pockit"}, "licenses": [],
            "images": images, "annotations": anns, "categories": cats}


def write_coco(ds: Dataset, out: str | Path, *, images: str = "copy", with_scores: bool = False) -> Path:
    """Write ``out/annotations.json`` (when ``out`` ends in .json: that file) + images beside it under ``images/``."""
    out = Path(out)
    json_path = out if out.suffix == ".json" else out / "annotations.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_coco_dict(ds, with_scores), indent=1), encoding="utf-8")
    for im in ds.images:
        place_image(im, json_path.parent / "images" / im.file, images)
    return json_path
