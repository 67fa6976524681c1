"""Pseudo-labels for a class no model here has: a bigger "teacher" model that knows it labels the frames.

A stand-in for hand labels when a PoC has none yet: the teacher's misses and false boxes become the
fine-tuned student's, and a held-out split labelled the same way measures agreement with the teacher,
not accuracy. Label a few frames by hand as soon as you can (any format :func:`pockit.data.load_dataset` reads).

:func:`pseudo_label` keeps the boxes of a ``hosts`` detector (e.g. the person detector labelling its own
classes, so that fine-tuning does not teach it to forget them) and runs the teacher on a zoomed crop of
each host's top part (a helmet on a 40-px head is found in the crop, seldom in the whole frame).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from .dataset import Dataset


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def crop_region(host: np.ndarray, width: int, height: int, top: float = 0.4, pad: float = 0.2) -> tuple[int, int, int, int]:
    """The part of the frame the teacher looks at for one host box (x1, y1, x2, y2 in pixels): the top ``top``
    fraction of the box, widened by ``pad`` box widths each side and raised by ``pad`` * ``top`` box heights."""
    x1, y1, x2, y2 = (float(v) for v in host)
    w, h = x2 - x1, y2 - y1
    cx1, cx2 = int(max(0, np.floor(x1 - pad * w))), int(min(width, np.ceil(x2 + pad * w)))
    cy1, cy2 = int(max(0, np.floor(y1 - pad * top * h))), int(min(height, np.ceil(y1 + top * h)))
    return cx1, cy1, cx2, cy2


def pseudo_label(ds: Dataset, teacher: Any, classes: Mapping[str, str], *, hosts: Any = None,
                 host_classes: Sequence[str] | None = None, conf: float = 0.25, top: float = 0.4, pad: float = 0.2,
                 dedup_iou: float = 0.5, progress: bool = True) -> Dataset:
    """Label ``ds`` (frames, e.g. from :func:`pockit.data.capture`) with the teacher's ``classes``.

    teacher: a pockit detector (``load_detector(..., conf=low)``) that knows the new class; classes: teacher
    class name -> new class name (``{"With Helmet": "helmet"}``). hosts: a detector whose boxes are kept as
    labels of ``host_classes`` (default: all its classes) and where the teacher looks: on each host's
    :func:`crop_region` (zoomed to the teacher's input size), else (hosts None) on the whole frame. In a
    crop only the teacher's best box counts, and only when it is one of ``classes`` with score >= ``conf``
    (a head the teacher calls 'With Helmet' 0.2 and 'Without Helmet' 0.3 is no helmet label); boxes of
    one class found from two hosts with IoU >= ``dedup_iou`` are one (the higher score kept).
    Returns a copy of ``ds`` whose labels are host classes then new classes, scores kept, and
    ``meta['pseudo']`` naming the teacher's classes on every image.
    """
    from tqdm import tqdm

    tnames = dict(teacher.class_names)
    missing = [c for c in classes if c not in tnames.values()]
    if missing:
        raise ValueError(f"teacher classes {sorted(tnames.values())} lack {missing}")
    new_names = list(dict.fromkeys(classes.values()))
    hnames = dict(hosts.class_names) if hosts is not None else {}
    if host_classes is None:
        host_classes = [hnames[i] for i in sorted(hnames)]
    unknown = [c for c in host_classes if c not in hnames.values()]
    if unknown:
        raise ValueError(f"host detector classes {sorted(hnames.values())} lack {unknown}")
    clash = [c for c in new_names if c in host_classes]
    if clash:
        raise ValueError(f"new classes {clash} are already host classes {list(host_classes)}")
    names = list(host_classes) + new_names
    host_lut = {i: names.index(n) for i, n in hnames.items() if n in host_classes}
    out = ds.copy()
    out.class_names = names
    for rec in tqdm(out.images, desc="pseudo-label", unit="frame", disable=not progress, leave=False):
        img = cv2.imread(str(rec.path))
        if img is None:
            raise OSError(f"cannot read image {rec.path}")
        H, W = img.shape[:2]
        boxes, cids, scores = [], [], []
        regions = [(0, 0, W, H)]
        if hosts is not None:
            hd = hosts.detect([img])[0]
            regions = []
            for b, c, s in zip(hd.xyxy, hd.class_ids, hd.scores):
                if int(c) in host_lut:
                    boxes.append(np.asarray(b, float))
                    cids.append(host_lut[int(c)])
                    scores.append(float(s))
                    regions.append(crop_region(b, W, H, top, pad))
        found: list[tuple[np.ndarray, int, float]] = []
        for x1, y1, x2, y2 in regions:
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            d = teacher.detect([img[y1:y2, x1:x2]])[0]
            if not len(d):
                continue
            cands = range(len(d)) if hosts is None else [int(np.argmax(d.scores))]
            for j in cands:
                tname, s = tnames.get(int(d.class_ids[j])), float(d.scores[j])
                if tname in classes and s >= conf:
                    b = np.asarray(d.xyxy[j], float) + [x1, y1, x1, y1]
                    found.append((b, names.index(classes[tname]), s))
        found.sort(key=lambda t: -t[2])
        kept: list[tuple[np.ndarray, int, float]] = []
        for b, c, s in found:
            if all(c != kc or _iou(b, kb) < dedup_iou for kb, kc, _ in kept):
                kept.append((b, c, s))
        for b, c, s in kept:
            boxes.append(b)
            cids.append(c)
            scores.append(s)
        rec.xyxy = np.array(boxes, np.float64).reshape(-1, 4)
        rec.class_ids = np.array(cids, np.int64)
        rec.scores = np.array(scores, float)
        rec.ignore = np.zeros(len(cids), bool)
        rec.meta = dict(rec.meta, pseudo=sorted(classes))
    return out


def split_by_seconds(ds: Dataset, held_out: Sequence[int], fps: float | None = None) -> Dataset:
    """A copy of ``ds`` with ``split`` = 'val' for the images in the whole seconds ``held_out`` of their footage, else
    'train': no second of footage on both sides. The second is the image's timestamp, else its frame number / ``fps``
    (file names like ``cam_000123.jpg`` give the frame); an image with neither is named in the error."""
    out = ds.copy()
    held = {int(s) for s in held_out}
    for im in out.images:
        t = im.timestamp
        if t is None and im.frame is not None and fps:
            t = im.frame / fps
        if t is None:
            raise ValueError(f"{im.file}: no timestamp and no frame number (with fps) to split by time; name frames "
                             f"<source>_<frame>.jpg and pass fps, or capture them with pockit.data.capture")
        im.split = "val" if int(t) in held else "train"
    return out
