"""COCO instances JSON (CVAT, Label Studio, Roboflow, Detectron2): bounding boxes only.

Category ids map to class ids 0..n-1 in ascending category-id order; ``iscrowd`` becomes ``ignore``;
``score`` (prediction files) becomes ``scores``. pockit keeps ``source``/``frame``/``timestamp``
as extra keys of each image entry (other tools ignore them). Segmentations are not read.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._io import out_path, place_image
from .dataset import Dataset, ImageRecord, infer_source_frame, validate
from .errors import LabelError, key, number, text
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
    ds_name = name or (path.parent.name if path.stem == "annotations" else path.stem)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        rep.add("malformed_file", "skipped", f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}", file=str(path),
                line=e.lineno)
        return Dataset([], list(classes or []), path.parent, rep, ds_name)
    except UnicodeDecodeError as e:
        rep.add("malformed_file", "skipped", f"not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                "JSON must be UTF-8", file=str(path))
        return Dataset([], list(classes or []), path.parent, rep, ds_name)
    except RecursionError:
        rep.add("malformed_file", "skipped", "JSON nested too deeply to read", file=str(path))
        return Dataset([], list(classes or []), path.parent, rep, ds_name)
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        rep.add("malformed_file", "skipped", f"JSON that cannot be read: {str(e)[:80]}", file=str(path))
        return Dataset([], list(classes or []), path.parent, rep, ds_name)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("categories"), list):
        rep.add("malformed_file", "skipped", "not a COCO instances file: needs top-level 'images' and 'categories' lists",
                file=str(path))
        return Dataset([], list(classes or []), path.parent, rep, ds_name)
    cats = {}
    for k, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            rep.add("malformed_line", "skipped", f"categories[{k}] lacks 'id' or 'name'", file=str(path))
            continue
        try:
            cats[key(c["id"], f"categories[{k}].id")] = text(c["name"], f"categories[{k}].name")
        except LabelError as e:
            rep.add("malformed_line", "skipped", e.detail, file=str(path))
    names = list(classes) if classes is not None else list(dict.fromkeys(cats[k] for k in sorted(cats, key=_id_order)))
    index = {n: i for i, n in enumerate(names)}
    if images_dir is None:
        images_dir = path.parent
        first = next((im.get("file_name") for im in doc["images"] if isinstance(im, dict)), None)
        if isinstance(first, str) and first and not (path.parent / first).exists() and (path.parent / "images" / first).exists():
            images_dir = path.parent / "images"
    images_dir = Path(images_dir)
    recs: dict = {}
    for k, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            rep.add("malformed_line", "skipped", f"images[{k}] lacks 'id' or 'file_name'", file=str(path))
            continue
        try:
            rec = _image_record(im, f"images[{k}]", images_dir, path, rep)
        except LabelError as e:
            rep.add("malformed_line", "skipped", f"{e.detail}; image and its boxes left out", file=str(path),
                    image=im["file_name"] if isinstance(im["file_name"], str) else None)
            continue
        rec.meta["_boxes"] = []
        recs[rec.meta["coco_id"]] = rec
    any_score = False
    annotations = doc.get("annotations") or []
    if not isinstance(annotations, list):
        rep.add("malformed_line", "skipped", f"'annotations' is a {type(annotations).__name__}, not a list; no box read",
                file=str(path))
        annotations = []
    for k, a in enumerate(annotations):
        where = f"annotations[{k}]"
        try:
            image_id, cat, box, score, crowd = coco_annotation(a, where)
        except LabelError as e:
            rec = recs.get(a.get("image_id")) if isinstance(a, dict) and isinstance(a.get("image_id"), (int, str)) else None
            rep.add("malformed_line", "dropped", e.detail, file=str(path), **({"image": rec.file} if rec else {}))
            continue
        if image_id not in recs:
            rep.add("malformed_line", "dropped", f"{where} refers to unknown image_id {a.get('image_id')!r}", file=str(path))
            continue
        rec = recs[image_id]
        cname = cats.get(cat)
        if cname is None or cname not in index:
            shown = cname if cname is not None else f"category_id {a.get('category_id')}"
            rep.add("unknown_class", "dropped", f"{where}: class {shown!r} is not one of {names}", file=str(path),
                    image=rec.file, box=box, class_name=cname)
            continue
        any_score |= "score" in a
        rec.meta["_boxes"].append((box, index[cname], crowd, score))
    images = []
    for rec in recs.values():
        bx = rec.meta.pop("_boxes")
        rec.xyxy = np.array([b[0] for b in bx], np.float64).reshape(-1, 4)
        rec.class_ids = np.array([b[1] for b in bx], np.int64)
        rec.ignore = np.array([b[2] for b in bx], bool)
        rec.scores = np.array([b[3] for b in bx], np.float64) if any_score else None
        images.append(rec)
    ds = Dataset(images, names, images_dir, rep, ds_name)
    infer_source_frame(ds.images)
    return validate(ds, on_outside=on_outside, dup_iou=dup_iou, check_images=check_images)


def coco_annotation(a: Any, where: str) -> tuple[int | str, int | str, list[float], float, bool]:
    """One ``annotations[k]`` entry of a COCO gt file or results list, every field checked: (image_id, category_id,
    xyxy box, score (1.0 when absent), iscrowd). A bad field is a LabelError naming its JSON path and value."""
    if not isinstance(a, dict):
        raise LabelError("is not an object", field=where, value=a)
    image_id = key(a.get("image_id"), f"{where}.image_id")
    bbox = a.get("bbox")
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise LabelError("is not [x, y, w, h]", field=f"{where}.bbox", value=bbox)
    x, y, w, h = (number(v, f"{where}.bbox[{i}]") for i, v in enumerate(bbox))
    cat = key(a.get("category_id"), f"{where}.category_id")
    crowd = number(a.get("iscrowd", 0), f"{where}.iscrowd") != 0
    score = number(a.get("score", 1.0), f"{where}.score")
    return image_id, cat, [x, y, x + w, y + h], score, crowd


def coco_boxes(data: Any, categories: dict[Any, int] | None = None
               ) -> tuple[dict[Any, int], dict[int, str], dict[Any, list[tuple]]]:
    """The strict reading of COCO boxes for evaluation: a gt dict or a results list -> (category id -> class index,
    class names, image id -> rows ``(x1, y1, x2, y2, score, class)``). Every entry is checked by the same
    :func:`coco_annotation` as :func:`read_coco`, but the first bad one raises (LabelError naming the JSON path)
    instead of being dropped: a score must not quietly change. A results list needs the gt's ``categories``."""
    def items(obj: Any, field: str) -> list:
        if not isinstance(obj, list):
            raise LabelError("must be a list", field=field, value=obj)
        return obj

    if isinstance(data, dict) and "annotations" in data:
        cats = items(data.get("categories", []), "categories")
        for k, c in enumerate(cats):
            if not isinstance(c, dict) or "id" not in c:
                raise LabelError("lacks 'id'", field=f"categories[{k}]", value=c)
        ids = [key(c["id"], f"categories[{k}].id") for k, c in enumerate(cats)]
        order = sorted(range(len(cats)), key=lambda k: _id_order(ids[k]))
        cmap = {ids[k]: i for i, k in enumerate(order)}
        names = {i: str(cats[k].get("name", ids[k])) for i, k in enumerate(order)}
        rows: dict[Any, list] = {}
        for k, im in enumerate(items(data.get("images", []), "images")):
            if not isinstance(im, dict) or "id" not in im:
                raise LabelError("lacks 'id'", field=f"images[{k}]", value=im)
            rows[key(im["id"], f"images[{k}].id")] = []
        anns = items(data["annotations"], "annotations")
    elif isinstance(data, list):
        if categories is None:
            raise LabelError("COCO results need the ground truth's categories (COCO gt JSON)")
        cmap, names, rows, anns = categories, {}, {}, data
    else:
        raise LabelError("expected COCO ground truth (with 'annotations') or a COCO results list")
    for i, a in enumerate(anns):
        where = f"annotations[{i}]" if isinstance(data, dict) else f"[{i}]"
        image_id, cat, box, score, _ = coco_annotation(a, where)
        if cat not in cmap:
            raise LabelError(f"unknown category (known: {sorted(cmap, key=_id_order)})", field=f"{where}.category_id",
                             value=a["category_id"])
        rows.setdefault(image_id, []).append((*box, score, cmap[cat]))
    return cmap, names, rows


def _id_order(k: int | str) -> tuple[int, int | str]:
    """Category ids in ascending order; text ids (some tools write them) after the numbers."""
    return (0, k) if isinstance(k, int) else (1, k)


def _image_record(im: dict, where: str, images_dir: Path, path: Path, rep: ValidationReport) -> ImageRecord:
    """One ``images[k]`` entry, every field checked. A bad id or file_name is a LabelError (the
    image cannot be used); a bad optional field is reported and left out (width/height: the image's
    real size is used; source/frame/timestamp/split: read as absent)."""
    file = text(im["file_name"], f"{where}.file_name")
    coco_id = key(im["id"], f"{where}.id")

    def opt(name: str, conv, consequence: str, **kw):
        v = im.get(name)
        try:
            return None if v is None else conv(v, f"{where}.{name}", **kw)
        except LabelError as e:
            rep.add("malformed_line", "kept", f"{e.detail}; {consequence}", file=str(path), image=file)
            return None

    size = "the image's real size is used"
    return ImageRecord(file, images_dir / file, opt("width", number, size, integer=True, minimum=0) or 0,
                       opt("height", number, size, integer=True, minimum=0) or 0,
                       source=opt("source", text, "source read as 'default'") or "default",
                       frame=opt("frame", number, "read without a frame number", integer=True),
                       timestamp=opt("timestamp", number, "read without a timestamp"),
                       split=opt("split", text, "read without a split"), meta={"label_file": str(path), "coco_id": coco_id})


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
            x, y = round(float(b[0]), 3), round(float(b[1]), 3)
            # w/h rounded against the rounded x/y: x + w and y + h stay within 0.0005 px of x2/y2
            a = {"id": len(anns) + 1, "image_id": i, "category_id": int(c) + 1,
                 "bbox": [x, y, round(float(b[2]) - x, 3), round(float(b[3]) - y, 3)],
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
    # image keys become paths only when images are placed; checked before anything is written
    dests = [] if images == "none" else [
        (im, out_path(json_path.parent / "images", im.file, label_file=im.meta.get("label_file"), follow_last=False))
        for im in ds.images]
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_coco_dict(ds, with_scores), indent=1), encoding="utf-8")
    for im, dest in dests:
        place_image(im, dest, images)
    return json_path
