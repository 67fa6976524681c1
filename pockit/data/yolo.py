"""YOLO txt labels (Ultralytics, LabelImg, CVAT 'YOLO 1.1'): ``class cx cy w h`` normalised, one txt per image.

Layouts read: a ``data.yaml`` (``path``, ``train``/``val``/``test`` folders or list files, ``names``),
or a folder of images with txt files beside them / in a sibling ``labels`` folder and the names in
``classes.txt`` or ``obj.names``. Polygon rows (``class x1 y1 x2 y2 ...``) become their bounding
box; a 6th column is read as a score. A label file with no image, an image with no label file and
an empty label file are all reported (the last two are kept as background images, as Ultralytics does).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import yaml

from ._io import IMAGE_EXTS, fmt_num, list_images, out_path, place_image, read_text
from .dataset import Dataset, ImageRecord, image_size, infer_source_frame, validate
from .errors import LabelError, number, show_value, text
from .report import ValidationReport

SPLITS = ("train", "val", "test")


def _label_for(img: Path) -> Path:
    """Ultralytics rule: the last /images/ in the path becomes /labels/, suffix .txt; else beside the image."""
    s = str(img)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        cand = Path(sb.join(s.rsplit(sa, 1))).with_suffix(".txt")
        if cand.exists() or not img.with_suffix(".txt").exists():
            return cand
    return img.with_suffix(".txt")


def _names_from(obj, file: Path) -> list[str]:
    """data.yaml ``names``: a list, or a mapping class id -> name with ids 0..n-1."""
    if isinstance(obj, dict):
        ids = {}
        for k in obj:
            i = number(k, f"names key {k!r}", integer=True, file=file)
            if i in ids:
                raise LabelError("class id given twice", file=file, field="names", value=k)
            ids[i] = k
        if sorted(ids) != list(range(len(ids))):
            raise LabelError("class ids must be 0..n-1", file=file, field="names", value=sorted(ids))
        return [text(obj[ids[i]], f"names[{i}]", file=file) for i in range(len(ids))]
    if not isinstance(obj, list):
        raise LabelError("must be a list of class names or a mapping id -> name", file=file, field="names", value=obj)
    return [text(n, f"names[{i}]", file=file) for i, n in enumerate(obj)]


def _read_names_file(p: Path) -> list[str]:
    return [ln.strip() for ln in read_text(p, "class names file").splitlines() if ln.strip()]


# column names of a YOLO row, for messages
_COLUMNS = ("class id", "cx", "cy", "w", "h", "score")


def _parse_row(parts: list[str]) -> list[float]:
    """A label row's numbers; LabelError names the column and the value that is not a finite number."""
    vals = []
    for k, v in enumerate(parts):
        col = _COLUMNS[k] if len(parts) <= 6 else ("class id" if k == 0 else f"{'xy'[(k - 1) % 2]}{(k + 1) // 2}")
        vals.append(number(v, col))
    return vals


def read_yolo(path: str | Path, classes: Sequence[str] | None = None, *, on_outside: str = "clip", dup_iou: float = 0.95,
              check_images: bool = True, name: str | None = None) -> Dataset:
    """Read a YOLO dataset from a data.yaml file or a folder (see module doc). ``classes`` overrides the names."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"YOLO dataset not found: {path}")
    rep = ValidationReport(title=f"YOLO import of {path}")
    yaml_path = path if path.is_file() else next((path / n for n in ("data.yaml", "dataset.yaml") if (path / n).exists()), None)
    base = path if path.is_dir() else path.parent
    names: list[str] | None = list(classes) if classes is not None else None
    names_src: Path | None = None  # where the names came from (None: the classes argument)
    sets: list[tuple[str | None, Path, list[Path]]] = []  # (split, key root, images)
    if yaml_path is not None:
        yaml_text = read_text(yaml_path, "data.yaml")
        try:
            cfg = yaml.safe_load(yaml_text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise LabelError(f"malformed YAML: {getattr(e, 'problem', None) or e}", file=yaml_path,
                             line=mark.line + 1 if mark else None) from None
        except RecursionError:
            raise LabelError("YAML nested too deeply to read", file=yaml_path) from None
        except ValueError as e:  # e.g. an integer of more than 4300 digits
            raise LabelError(f"YAML that cannot be read: {str(e)[:80]}", file=yaml_path) from None
        if not isinstance(cfg, dict):
            raise LabelError("must be a mapping (path, train, val, names)", file=yaml_path, field="data.yaml",
                             value=cfg)
        if names is None and "names" in cfg:
            names, names_src = _names_from(cfg["names"], yaml_path), yaml_path
        root = Path(text(cfg.get("path") or "", "path", file=yaml_path) or yaml_path.parent)
        if not root.is_absolute():
            root = (yaml_path.parent / root).resolve()
        if not root.exists():  # a data.yaml moved from another machine: its 'path' is stale
            root = yaml_path.parent
        seen: set[Path] = set()
        for split in SPLITS:
            entries = cfg.get(split)
            if not entries:
                continue
            for k, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                if not isinstance(entry, str) or "\0" in entry:
                    rep.add("malformed_file", "skipped", f"{split}[{k}]: not a folder or list file name (got {show_value(entry)})",
                            file=str(yaml_path))
                    continue
                p = root / entry
                if p.is_dir():
                    imgs, key_root = list_images(p), p
                elif p.suffix == ".txt" and p.is_file():
                    imgs = [(root / ln.strip()).resolve() for ln in read_text(p, "image list").splitlines()
                            if ln.strip() and "\0" not in ln]
                    key_root = root
                else:
                    rep.add("malformed_file", "skipped", f"{split}: {entry!r} is neither a folder nor an image list",
                            file=str(yaml_path))
                    continue
                imgs = [i for i in imgs if i not in seen]
                seen.update(imgs)
                sets.append((split, key_root, imgs))
        label_roots = [root]
    else:
        img_root = base / "images" if (base / "images").is_dir() else base
        sets.append((None, img_root, list_images(img_root)))
        label_roots = [base]
    if names is None:
        nf = next((p for d in {base, *label_roots} for n in ("classes.txt", "obj.names") if (p := d / n).exists()), None)
        if nf is None:
            raise LabelError("no class names: add 'names' to data.yaml, a classes.txt (one name per line), or pass "
                             "classes=[...]", file=yaml_path or path, field="names")
        names = _read_names_file(nf)
        names_src = nf
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise LabelError("class name given twice", file=names_src, field="names", value=dup)
    nc = len(names)
    images: list[ImageRecord] = []
    used_labels: set[Path] = set()
    for split, key_root, imgs in sets:
        for img in imgs:
            lbl = _label_for(img)
            used_labels.add(lbl.resolve())
            try:
                file = img.relative_to(key_root).as_posix()
            except ValueError:
                file = img.name
            text_ = lbl.read_text(encoding="utf-8", errors="replace") if lbl.is_file() else None
            if not img.exists():
                n = len([r for r in text_.splitlines() if r.strip()]) if text_ is not None else 0
                rep.add("missing_image", "dropped", f"image listed but not found; {n} label row(s) dropped", image=file,
                        file=str(lbl) if lbl.exists() else None)
                continue
            try:
                w, h = image_size(img)
            except OSError as e:
                rep.add("unreadable_image", "dropped", str(e), image=file, file=str(lbl))
                continue
            boxes, cids, scores = [], [], []
            has_scores = False
            if text_ is None:
                rep.add("missing_label", "kept", "no label file: treated as an image without objects", image=file,
                        file=str(lbl))
            else:
                if not text_.strip():
                    rep.add("empty_label", "kept", "empty label file: treated as an image without objects", image=file,
                            file=str(lbl))
                for ln, row in enumerate(text_.splitlines(), 1):
                    parts = row.split()
                    if not parts:
                        continue
                    has_scores |= len(parts) == 6
                    try:
                        vals = _parse_row(parts)
                    except LabelError as e:
                        rep.add("malformed_line", "dropped", e.detail, file=str(lbl), line=ln, image=file)
                        continue
                    if len(vals) in (5, 6):
                        cx, cy, bw, bh = vals[1:5]
                        nb = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
                    elif len(vals) >= 7 and len(vals) % 2 == 1:
                        xs, ys = vals[1::2], vals[2::2]
                        nb = [min(xs), min(ys), max(xs), max(ys)]
                    else:
                        rep.add("malformed_line", "dropped", f"{len(vals)} columns; expected 'class cx cy w h' (5) or a polygon",
                                file=str(lbl), line=ln, image=file)
                        continue
                    box = [nb[0] * w, nb[1] * h, nb[2] * w, nb[3] * h]
                    c = vals[0]
                    if c != int(c) or not 0 <= int(c) < nc:
                        rep.add("unknown_class", "dropped", f"class id {parts[0]} is not in 0..{nc - 1} ({names})",
                                file=str(lbl), line=ln, image=file, box=box, class_name=parts[0])
                        continue
                    boxes.append(box), cids.append(int(c)), scores.append(vals[5] if len(vals) == 6 else 1.0)
            images.append(ImageRecord(file, img, w, h, np.array(boxes, np.float64).reshape(-1, 4), cids,
                                      scores=scores if has_scores else None, split=split, meta={"label_file": str(lbl)}))
    # label files whose image is absent
    for d in label_roots:
        for t in sorted(d.rglob("*.txt")):
            if t.name in ("classes.txt", "obj.names") or t.resolve() in used_labels:
                continue
            if yaml_path is not None and f"{os.sep}labels{os.sep}" not in str(t):
                continue
            if yaml_path is None and (t.parent / "images").is_dir():
                continue
            rows = [r for r in t.read_text(encoding="utf-8", errors="replace").splitlines() if r.strip()]
            rep.add("missing_image", "dropped", f"label file has no image (looked for {t.stem} with {'/'.join(IMAGE_EXTS)}); "
                    f"{len(rows)} box(es) dropped", file=str(t), image=t.stem)
    ds = Dataset(images, names, sets[0][1] if len(sets) == 1 else base, rep, name or base.name)
    infer_source_frame(ds.images)
    return validate(ds, on_outside=on_outside, dup_iou=dup_iou, check_images=False)


def write_yolo(ds: Dataset, out: str | Path, *, images: str = "copy", decimals: int = 6, with_scores: bool = False,
               default_split: str = "train", portable: bool = False) -> Path:
    """Write the Ultralytics layout ``images/<split>/``, ``labels/<split>/``, ``data.yaml`` and ``classes.txt``.

    Images without a split go to ``default_split``. When no 'val' split exists, data.yaml's val
    points at the train images (Ultralytics needs one); use :func:`pockit.data.split` first for training.
    portable: leave 'path' out of data.yaml (it then resolves relative to the yaml's folder).
    Returns the data.yaml path.
    """
    out = Path(out).resolve()
    splits = set()
    dests = []  # every output path checked before anything is written
    for im in ds.images:
        split = im.split or default_split
        splits.add(split)
        lf = im.meta.get("label_file")
        img_dest = out_path(out / "images", im.file, folder=split, label_file=lf, follow_last=False)
        lbl = out_path(out / "labels", str(PurePosixPath(im.file.replace("\\", "/")).with_suffix(".txt")), folder=split,
                       label_file=lf)
        dests.append((im, lbl, img_dest))
    for im, lbl, img_dest in dests:
        lbl.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        W, H = float(im.width), float(im.height)
        for j, (b, c) in enumerate(zip(im.xyxy, im.class_ids)):
            x1, y1, x2, y2 = np.clip(b, 0, [W, H, W, H])
            vals = [(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H]
            row = " ".join([str(int(c))] + [fmt_num(v, decimals) for v in vals])
            if with_scores and im.scores is not None:
                row += f" {im.scores[j]:.4f}"
            rows.append(row)
        lbl.write_text("\n".join(rows) + ("\n" if rows else ""), encoding="utf-8")
        place_image(im, img_dest, images)
    cfg = {} if portable else {"path": str(out)}
    for s in SPLITS:
        if s in splits:
            cfg[s] = f"images/{s}"
    if "val" not in cfg and "train" in cfg:
        cfg["val"] = cfg["train"]
    cfg["nc"] = len(ds.class_names)
    cfg["names"] = dict(enumerate(ds.class_names))
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (out / "classes.txt").write_text("\n".join(ds.class_names) + "\n", encoding="utf-8")
    return out / "data.yaml"


def export_ultralytics(ds: Dataset, out: str | Path, *, images: str = "copy") -> Path:
    """Write an Ultralytics-ready folder (``images/``, ``labels/``, ``data.yaml`` with an absolute path).

    Needs a 'train' and a 'val' split (run :func:`pockit.data.split` first); images with no split
    raise instead of silently landing in train. Returns the data.yaml path.
    """
    splits = {im.split for im in ds.images}
    if None in splits:
        n = sum(im.split is None for im in ds.images)
        raise ValueError(f"{n} image(s) have no split; call pockit.data.split(dataset, val=0.2) before exporting for training")
    if not {"train", "val"} <= splits:
        raise ValueError(f"training needs 'train' and 'val' images; the dataset has splits {sorted(splits)}")
    unknown = splits - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; use {SPLITS}")
    return write_yolo(ds, out, images=images)
