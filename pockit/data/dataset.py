"""pockit's labelled-image dataset: the one object every reader returns and every writer, split and trainer takes.

Boxes are ``xyxy`` float pixels in the image (origin top-left, x2/y2 exclusive edges, so a box
covering the whole 640x480 image is ``0,0,640,480``). Class ids index ``Dataset.class_names``.
"""
from __future__ import annotations

import copy as _copy
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Detections, box_iou
from .report import ValidationReport

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# COCO area ranges (pixels^2): small < 32^2 <= medium < 96^2 <= large
COCO_SMALL, COCO_LARGE = 32**2, 96**2


def size_category(area: np.ndarray) -> np.ndarray:
    """COCO size bucket per box area: 'small' (<32^2), 'medium', 'large' (>=96^2)."""
    area = np.asarray(area, float)
    return np.where(area < COCO_SMALL, "small", np.where(area < COCO_LARGE, "medium", "large"))


@dataclass
class ImageRecord:
    """One image and its boxes.

    file: path relative to the dataset root (posix, used as the image key when writing);
    path: absolute path; xyxy (N,4) float64; class_ids (N,) int; ignore (N,) bool (VOC 'difficult' /
    COCO 'iscrowd'); scores (N,) float or None (pre-labels); source: camera/sequence id;
    frame/timestamp: position in the source when known (used by group-aware splits).
    """

    file: str
    path: Path
    width: int
    height: int
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    ignore: np.ndarray | None = None
    scores: np.ndarray | None = None
    source: str = "default"
    split: str | None = None
    frame: int | None = None
    timestamp: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.xyxy = np.asarray(self.xyxy, np.float64).reshape(-1, 4)
        n = len(self.xyxy)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(-1)
        self.ignore = np.zeros(n, bool) if self.ignore is None else np.asarray(self.ignore, bool).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        for name in ("class_ids", "ignore") + (("scores",) if self.scores is not None else ()):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.file}: {name} has {len(getattr(self, name))} entries for {n} boxes")

    def __len__(self) -> int:
        return len(self.xyxy)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the boxes where mask is True (in place)."""
        mask = np.asarray(mask, bool)
        self.xyxy, self.class_ids, self.ignore = self.xyxy[mask], self.class_ids[mask], self.ignore[mask]
        if self.scores is not None:
            self.scores = self.scores[mask]

    @property
    def stem(self) -> str:
        return Path(self.file).stem


class Dataset:
    """Images with boxes, class names and the report of how they were loaded.

    ``images``: list of :class:`ImageRecord`; ``class_names``: list, index = class id;
    ``root``: directory the image ``file`` names are relative to; ``report``: :class:`ValidationReport`.
    """

    def __init__(self, images: Iterable[ImageRecord] = (), class_names: Sequence[str] = (), root: str | Path | None = None,
                 report: ValidationReport | None = None, name: str = "dataset"):
        self.images: list[ImageRecord] = list(images)
        self.class_names: list[str] = list(class_names)
        self.root = Path(root) if root is not None else None
        self.report = report if report is not None else ValidationReport(title=name)
        self.name = name
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"duplicate class names in {self.class_names}")

    # -- container ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.images)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.images[i]

    def __repr__(self) -> str:
        splits = sorted({str(im.split) for im in self.images})
        return (f"Dataset({self.name!r}, images={len(self)}, boxes={self.n_boxes}, classes={self.class_names}, "
                f"splits={splits}, issues={len(self.report)})")

    @property
    def n_boxes(self) -> int:
        return sum(len(im) for im in self.images)

    @property
    def sources(self) -> list[str]:
        return sorted({im.source for im in self.images})

    def copy(self) -> Dataset:
        return _copy.deepcopy(self)

    def class_id(self, name: str) -> int:
        try:
            return self.class_names.index(name)
        except ValueError:
            raise KeyError(f"class {name!r} not in dataset classes {self.class_names}") from None

    def filter(self, fn: Callable[[ImageRecord], bool]) -> Dataset:
        """New dataset (shared records) of the images where fn(image) is true."""
        return Dataset([im for im in self.images if fn(im)], self.class_names, self.root, self.report, self.name)

    def subset(self, split: str | Sequence[str]) -> Dataset:
        """Images of one split (or several)."""
        splits = {split} if isinstance(split, str) else set(split)
        return self.filter(lambda im: im.split in splits)

    @staticmethod
    def concat(datasets: Sequence[Dataset], name: str = "dataset") -> Dataset:
        """Join datasets; class lists are unioned by name (ids are remapped)."""
        names: list[str] = []
        for d in datasets:
            names += [n for n in d.class_names if n not in names]
        out = Dataset(class_names=names, name=name)
        roots = {d.root for d in datasets}
        out.root = roots.pop() if len(roots) == 1 else None
        for d in datasets:
            lut = np.array([names.index(n) for n in d.class_names], np.int64)
            for im in d.images:
                im = _copy.deepcopy(im)
                im.class_ids = lut[im.class_ids] if len(im) else im.class_ids
                out.images.append(im)
            out.report.extend(d.report)
        return out

    # -- conversions -------------------------------------------------------------------------
    def detections(self, image: ImageRecord | int, include_ignored: bool = True) -> Detections:
        """Boxes of one image as pockit Detections (scores 1 unless pre-labelled)."""
        im = self.images[image] if isinstance(image, int) else image
        m = np.ones(len(im), bool) if include_ignored else ~im.ignore
        return Detections(xyxy=im.xyxy[m], scores=None if im.scores is None else im.scores[m], class_ids=im.class_ids[m],
                          class_names=dict(enumerate(self.class_names)))

    def boxes_frame(self):
        """pandas DataFrame, one row per box: image, source, split, class, x1..y2, w, h, area, size, aspect."""
        import pandas as pd

        rows = []
        for im in self.images:
            for (x1, y1, x2, y2), c, ig in zip(im.xyxy, im.class_ids, im.ignore):
                w, h = x2 - x1, y2 - y1
                rows.append((im.file, im.source, im.split, int(c), self.class_names[c] if 0 <= c < len(self.class_names) else str(c),
                             x1, y1, x2, y2, w, h, w * h, w / h if h > 0 else np.nan, bool(ig), im.width, im.height))
        df = pd.DataFrame(rows, columns=["image", "source", "split", "class_id", "class", "x1", "y1", "x2", "y2", "w", "h",
                                         "area", "aspect", "ignore", "image_w", "image_h"])
        df["size"] = size_category(df["area"].to_numpy()) if len(df) else pd.Series(dtype=str)
        return df

    def images_frame(self):
        """pandas DataFrame, one row per image: file, source, split, frame, timestamp, width, height, boxes."""
        import pandas as pd

        return pd.DataFrame([(im.file, str(im.path), im.source, im.split, im.frame, im.timestamp, im.width, im.height, len(im))
                             for im in self.images],
                            columns=["file", "path", "source", "split", "frame", "timestamp", "width", "height", "boxes"])


_NAME_FRAME = re.compile(r"(.+?)[_-](\d+)")
_IMAGE_DIRS = {"img1", "images", "jpegimages", "train", "val", "test", "."}


def infer_source_frame(images: Iterable[ImageRecord]) -> int:
    """Recover ``source`` and ``frame`` from the image name where the labels do not carry them.

    YOLO files, and VOC/COCO re-saved by LabelImg or CVAT, lose pockit's source/frame/timestamp;
    without them every image would be its own split group and consecutive frames of one camera would
    land on both sides of a split. Two naming schemes are recognised: pockit's capture names
    ``<source>_<frame>.jpg`` (also ``-``), and numbered frames in a per-camera folder
    (``TUD-Campus/img1/000012.jpg``: source = the nearest folder that is not img1/images/train/...).
    Only images with source 'default' and no frame/timestamp are touched. Returns how many were filled.
    """
    n = 0
    for im in images:
        if im.source != "default" or im.frame is not None or im.timestamp is not None:
            continue
        p = Path(im.file)
        m = _NAME_FRAME.fullmatch(p.stem)
        if m:
            im.source, im.frame = m.group(1), int(m.group(2))
        elif p.stem.isdigit():
            folder = next((d for d in reversed(p.parent.parts) if d.lower() not in _IMAGE_DIRS), None)
            if folder is None:
                continue
            im.source, im.frame = folder, int(p.stem)
        else:
            continue
        im.meta["source_from_name"] = True
        n += 1
    return n


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header (PIL, no full decode). Raises OSError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Image.open of the PIL module itself: Ultralytics, once imported, patches Image.open to
        # retry unknown files with a HEIF plugin it tries to install (fails offline)
        opener = Image.open
        if getattr(opener, "__module__", "").startswith("ultralytics"):
            import ultralytics.utils.patches as _p

            opener = getattr(_p, "_image_open", opener)
        with opener(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (UnidentifiedImageError, SyntaxError, ValueError, ImportError) as e:
        raise OSError(f"cannot read image {path}: {e}") from e


def duplicate_boxes(xyxy: np.ndarray, class_ids: np.ndarray, min_iou: float) -> list[tuple[int, int, float]]:
    """Duplicates among one image's boxes, in box order: ``(j, i, iou)`` for each box j that has an
    earlier box i of the same class, itself not a duplicate, with IoU >= ``min_iou`` (i: the first
    such box).

    Exactly what the full n x n IoU matrix gives, in O(n) memory: a sweep over the boxes sorted by
    x1 compares box j only with the earlier kept boxes of its class whose x1 can be that close.
    IoU >= t > 0 needs an intersection width >= t * each box's width, hence
    |x1_i - x1_j| <= (1 - t) / t * w_j (and x1_i <= x2_j); so 20,000 boxes on one image take
    megabytes and about a second, not the 3.2 GB of one IoU matrix.
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids).reshape(-1)
    found: list[tuple[int, int, float]] = []
    if min_iou > 1:
        return found
    reach = (1 - min_iou) / min_iou if min_iou > 0 else np.inf
    for c in np.unique(class_ids):
        idx = np.flatnonzero(class_ids == c)  # ascending box order
        if len(idx) < 2:
            continue
        order = idx[np.argsort(xyxy[idx, 0], kind="stable")]  # box indices by x1
        x1s = xyxy[order, 0]
        rank = np.empty(len(xyxy), np.int64)
        rank[order] = np.arange(len(order))
        kept = np.zeros(len(order), bool)  # by x1 rank: an earlier box that is not a duplicate
        for j in idx:
            x1, x2 = xyxy[j, 0], xyxy[j, 2]
            if min_iou > 0:
                r = reach * (x2 - x1)
                tol = 1e-9 * (abs(x1) + abs(x2) + 1)  # rounding margin: never miss a pair on the bound
                lo = np.searchsorted(x1s, x1 - r - tol, "left")
                hi = np.searchsorted(x1s, min(x1 + r, x2) + tol, "right")
            else:  # IoU 0 counts too: every earlier box
                lo, hi = 0, len(order)
            cand = order[lo:hi][kept[lo:hi]]
            if len(cand):
                iou = box_iou(xyxy[j], xyxy[cand])[0]
                hits = np.flatnonzero(iou >= min_iou)
                if len(hits):
                    first = hits[np.argmin(cand[hits])]
                    found.append((int(j), int(cand[first]), float(iou[first])))
                    continue
            kept[rank[j]] = True
    return sorted(found)


def validate(ds: Dataset, *, on_outside: str = "clip", dup_iou: float = 0.95, check_images: bool = True,
             min_size: float = 1.0, inplace: bool = True) -> Dataset:
    """Check images and boxes; fix or drop what is wrong and record every change in ``ds.report``.

    on_outside: 'clip' boxes that cross the image border to it, or 'drop' them (boxes fully
    outside are always dropped); boxes thinner than ``min_size`` px (after clipping) are dropped as
    zero-area; same-class boxes overlapping with IoU >= ``dup_iou`` are duplicates (later one dropped).
    check_images: open each image header (missing/unreadable images are dropped with their boxes,
    a width/height that disagrees with the label is replaced by the real one).
    """
    if on_outside not in ("clip", "drop"):
        raise ValueError(f"on_outside must be 'clip' or 'drop', not {on_outside!r}")
    if not inplace:
        ds = ds.copy()
    rep = ds.report
    kept: list[ImageRecord] = []
    nc = len(ds.class_names)
    for im in ds.images:
        name = lambda c: ds.class_names[c] if 0 <= c < nc else str(c)
        lf = im.meta.get("label_file")
        if check_images:
            if not im.path.exists():
                rep.add("missing_image", "dropped", f"image file not found at {im.path}; its {len(im)} box(es) dropped",
                        image=im.file, file=lf)
                continue
            try:
                w, h = image_size(im.path)
            except OSError as e:
                rep.add("unreadable_image", "dropped", f"{e}; its {len(im)} box(es) dropped", image=im.file, file=lf)
                continue
            if (w, h) != (im.width, im.height) and im.width > 0:
                rep.add("size_mismatch", "kept", f"label says {im.width}x{im.height}, image is {w}x{h}; using {w}x{h}",
                        image=im.file, file=lf)
            im.width, im.height = w, h
        if len(im):
            keep = np.ones(len(im), bool)
            W, H = float(im.width), float(im.height)
            eps = 1e-3
            for i, b in enumerate(im.xyxy.copy()):
                x1, y1, x2, y2 = b
                cname = name(im.class_ids[i])
                if not np.all(np.isfinite(b)) or x2 - x1 <= 0 or y2 - y1 <= 0:
                    rep.add("zero_area", "dropped", "box has zero or negative width/height", image=im.file, file=lf, box=b,
                            class_name=cname)
                    keep[i] = False
                    continue
                outside = x1 < -eps or y1 < -eps or x2 > W + eps or y2 > H + eps
                if outside:
                    c = np.array([np.clip(x1, 0, W), np.clip(y1, 0, H), np.clip(x2, 0, W), np.clip(y2, 0, H)])
                    if c[2] - c[0] < min_size or c[3] - c[1] < min_size:
                        rep.add("box_outside", "dropped", f"box lies outside the {im.width}x{im.height} image",
                                image=im.file, file=lf, box=b, class_name=cname)
                        keep[i] = False
                        continue
                    if on_outside == "drop":
                        rep.add("box_outside", "dropped", f"box crosses the {im.width}x{im.height} image border",
                                image=im.file, file=lf, box=b, class_name=cname)
                        keep[i] = False
                        continue
                    rep.add("box_outside", "clipped", f"box crosses the {im.width}x{im.height} image border; clipped to "
                            f"{[round(float(v), 2) for v in c]}", image=im.file, file=lf, box=b, class_name=cname)
                    im.xyxy[i] = c
                elif x2 - x1 < min_size or y2 - y1 < min_size:
                    rep.add("zero_area", "dropped", f"box thinner than {min_size} px", image=im.file, file=lf, box=b, class_name=cname)
                    keep[i] = False
            im.keep(keep)
            if len(im) > 1 and dup_iou <= 1.0:
                dup = np.zeros(len(im), bool)
                for j, i, iou in duplicate_boxes(im.xyxy, im.class_ids, dup_iou):
                    dup[j] = True
                    rep.add("duplicate_box", "dropped", f"same class as box #{i} with IoU {iou:.2f}",
                            image=im.file, file=lf, box=im.xyxy[j], class_name=name(im.class_ids[j]))
                im.keep(~dup)
        kept.append(im)
    ds.images = kept
    return ds
