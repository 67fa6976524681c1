"""Pick the frames worth labelling from site footage, and pre-label them with the current model.

:func:`capture` reads any pockit source and keeps a frame only if it passes every filter that is
switched on, in this order (the first failing one is the frame's skip reason):

1. ``interval``: sample points are the frames at least ``every_s`` seconds after the previous
   sample point (every frame when every_s is None); the other frames are skipped;
2. ``no_motion``: at least ``motion`` (fraction 0..1) of the pixels changed since the previous
   sample point (grey 160-px-wide thumbnails, blurred, |difference| > ``motion_delta`` levels);
3. ``duplicate``: perceptual hash (imagehash.phash, 64 bits) within ``dedup_hamming`` bits of a frame
   already kept from this source;
4. ``confident``: the detector finds no box with a score in the ``unsure`` band [lo, hi) (it needs
   ``detector.conf <= lo`` so that low scores are returned at all).

Kept frames are written as ``<source>_<frame:06d>.jpg`` with ``manifest.csv`` (file, source, frame,
timestamp, motion, phash, unsure scores) and ``capture.json`` (settings and counts).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._io import out_path
from .dataset import Dataset, ImageRecord

log = logging.getLogger(__name__)
SKIP_REASONS = ("interval", "no_motion", "duplicate", "confident")


@dataclass
class CaptureReport:
    """Outcome of :func:`capture`: ``kept`` frames, ``skipped`` per reason, ``manifest`` DataFrame."""

    out_dir: Path
    decoded: int
    kept: int
    skipped: dict[str, int]
    manifest: Any
    settings: dict = field(default_factory=dict)
    source_stats: dict = field(default_factory=dict)
    wall_s: float = 0.0

    def text(self) -> str:
        parts = ", ".join(f"{v} {k}" for k, v in self.skipped.items() if v) or "none"
        return (f"captured {self.kept} of {self.decoded} decoded frames into {self.out_dir} (skipped: {parts}); "
                f"settings {self.settings}")

    def __str__(self) -> str:
        return self.text()


def _thumb(img: np.ndarray, width: int = 160) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(g, (5, 5), 0)


def _phash(img: np.ndarray) -> int:
    import imagehash
    from PIL import Image

    h = imagehash.phash(Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    return int(str(h), 16)


def _hamming(hashes: list[int], h: int) -> np.ndarray:
    """Bit distance of ``h`` to each 64-bit hash."""
    x = np.array(hashes, np.uint64) ^ np.uint64(h)
    if hasattr(np, "bitwise_count"):  # NumPy >= 2
        return np.bitwise_count(x).astype(int)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def capture(source: Any, out_dir: str | Path, *, every_s: float | None = None, motion: float | None = None,
            motion_delta: int = 15, dedup_hamming: int | None = 4, unsure: tuple[float, float] | None = None,
            detector: Any = None, max_frames: int | None = None, max_kept: int | None = None, source_id: str | None = None,
            jpeg_quality: int = 95, progress: bool = True, **source_options: Any) -> CaptureReport:
    """Sample frames of ``source`` (a uri for :func:`pockit.sources.open_source`, or an opened Source) into ``out_dir``.

    See the module doc for the filters. dedup_hamming=None keeps near-duplicates (phash sees whole-frame
    change: on a static camera a small walker moves it by only a few bits, so keep this low or use motion); unsure needs a
    ``detector`` (e.g. ``pockit.inference.load_detector('person-yolov8s', conf=0.1)``).
    Appends to an existing manifest in ``out_dir`` (file names are unique per source and frame).
    """
    import pandas as pd
    from tqdm import tqdm

    if unsure is not None:
        lo, hi = unsure
        if detector is None:
            raise ValueError("unsure=(lo, hi) needs a detector: pass detector=load_detector(..., conf=lo)")
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"unsure band must satisfy 0 <= lo < hi <= 1, got {unsure}")
        dconf = getattr(detector, "conf", None)
        if dconf is not None and dconf > lo:
            raise ValueError(f"detector.conf={dconf} hides scores below it, so the unsure band {unsure} cannot be seen; "
                             f"load the detector with conf={lo}")
    if every_s is not None and every_s <= 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    if motion is not None and not 0 <= motion <= 1:
        raise ValueError(f"motion is a fraction of changed pixels in [0, 1], got {motion}")
    from ..sources import open_source

    src = open_source(source, source_id=source_id, max_frames=max_frames, **source_options) if isinstance(source, (str, Path, int)) \
        else source
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped = {r: 0 for r in SKIP_REASONS}
    rows: list[dict] = []
    hashes: list[int] = []
    last_sample_ts: float | None = None
    prev_thumb = None
    decoded = 0
    t0 = time.perf_counter()
    with src:
        bar = tqdm(src, total=src.total, desc=f"capture {src.source_id}", unit="frame", disable=not progress, leave=False)
        for fr in bar:
            decoded += 1
            if every_s is not None and last_sample_ts is not None and fr.timestamp - last_sample_ts < every_s - 1e-9:
                skipped["interval"] += 1
                continue
            last_sample_ts = fr.timestamp
            moved = None
            if motion is not None:
                thumb = _thumb(fr.image)
                moved = 1.0 if prev_thumb is None or prev_thumb.shape != thumb.shape else \
                    float((cv2.absdiff(thumb, prev_thumb) > motion_delta).mean())
                prev_thumb = thumb
                if moved < motion:
                    skipped["no_motion"] += 1
                    continue
            ph = None
            if dedup_hamming is not None:
                ph = _phash(fr.image)
                if hashes and int(_hamming(hashes, ph).min()) <= dedup_hamming:
                    skipped["duplicate"] += 1
                    continue
            scores: list[float] = []
            if unsure is not None:
                det = detector.detect([fr.image])[0]
                s = det.scores[(det.scores >= unsure[0]) & (det.scores < unsure[1])]
                if not len(s):
                    skipped["confident"] += 1
                    continue
                scores = [round(float(v), 4) for v in s]
            name = f"{fr.source_id}_{fr.index:06d}.jpg"
            dest = out_path(out, name, "frame file name (source id)")  # a source id cannot place frames outside out
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(dest), fr.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"could not write {dest}: check disk space and permissions")
            if ph is not None:
                hashes.append(ph)
            reasons = [r for r, on in (("interval", every_s), ("motion", motion), ("unsure", unsure)) if on is not None]
            rows.append({"file": name, "source": fr.source_id, "frame": fr.index, "timestamp": round(float(fr.timestamp), 4),
                         "width": fr.size[0], "height": fr.size[1], "reason": "+".join(reasons) or "all",
                         "motion": None if moved is None else round(moved, 4),
                         "phash": None if ph is None else f"{ph:016x}", "unsure_scores": json.dumps(scores) if scores else ""})
            if max_kept is not None and len(rows) >= max_kept:
                break
        stats = dict(getattr(src, "stats", {}) or {})
    manifest = pd.DataFrame(rows, columns=["file", "source", "frame", "timestamp", "width", "height", "reason", "motion",
                                           "phash", "unsure_scores"])
    mpath = out / "manifest.csv"
    if mpath.exists():
        old = pd.read_csv(mpath, dtype={"phash": str, "unsure_scores": str}, keep_default_na=False)
        manifest_all = pd.concat([old[~old["file"].isin(manifest["file"])], manifest], ignore_index=True)
    else:
        manifest_all = manifest
    manifest_all.to_csv(mpath, index=False)
    settings = {"every_s": every_s, "motion": motion, "motion_delta": motion_delta, "dedup_hamming": dedup_hamming,
                "unsure": list(unsure) if unsure else None, "source": str(source) if isinstance(source, (str, Path, int)) else
                getattr(src, "source_id", "?")}
    rep = CaptureReport(out, decoded, len(rows), skipped, manifest, settings, stats, time.perf_counter() - t0)
    (out / "capture.json").write_text(json.dumps({"decoded": decoded, "kept": len(rows), "skipped": skipped,
                                                  "settings": settings, "source_stats": stats}, indent=1, default=str))
    return rep


def read_capture(out_dir: str | Path, class_names: Sequence[str] = ()) -> Dataset:
    """The captured images of ``out_dir`` (via manifest.csv) as an unlabelled Dataset with source/frame/timestamp."""
    import pandas as pd

    out = Path(out_dir)
    mpath = out / "manifest.csv"
    if not mpath.exists():
        raise FileNotFoundError(f"no manifest.csv in {out}: capture frames with pockit.data.capture first")
    m = pd.read_csv(mpath, keep_default_na=False, dtype={"phash": str})
    ims = [ImageRecord(r.file, out / r.file, int(r.width), int(r.height), source=str(r.source), frame=int(r.frame),
                       timestamp=float(r.timestamp)) for r in m.itertuples()]
    return Dataset(ims, class_names, out, name=out.name)


def prelabel(images: Dataset | str | Path, detector: Any, out: str | Path, fmt: str = "yolo", *, batch: int = 4,
             class_names: Sequence[str] | None = None, progress: bool = True, images_mode: str = "copy") -> Dataset:
    """Run ``detector`` on the images and write its boxes as labels (``fmt``: yolo, coco or voc) for review.

    images: a Dataset, or a capture folder (manifest.csv) or plain image folder. The result keeps
    scores (COCO writes them; YOLO/VOC files stay in the plain format review tools read).
    Returns the pre-labelled Dataset.
    """
    from tqdm import tqdm

    from ._io import list_images
    from .dataset import image_size, infer_source_frame

    if fmt not in ("yolo", "coco", "voc"):
        raise ValueError(f"fmt must be yolo, coco or voc, not {fmt!r}")
    if not isinstance(images, Dataset):
        p = Path(images)
        if (p / "manifest.csv").exists():
            images = read_capture(p)
        else:
            files = list_images(p)
            if not files:
                raise FileNotFoundError(f"no images in {p}")
            images = Dataset([ImageRecord(f.relative_to(p).as_posix(), f, *image_size(f)) for f in files], root=p, name=p.name)
            infer_source_frame(images.images)
    names_map = dict(detector.class_names)
    names = list(class_names) if class_names else [names_map.get(i, str(i)) for i in range(max(names_map, default=-1) + 1)]
    ds = images.copy()
    ds.class_names = names
    recs = ds.images
    for i in tqdm(range(0, len(recs), batch), desc="pre-label", unit="batch", disable=not progress, leave=False):
        chunk = recs[i:i + batch]
        imgs = []
        for r in chunk:
            img = cv2.imread(str(r.path))
            if img is None:
                raise OSError(f"cannot read image {r.path}")
            imgs.append(img)
        for r, det in zip(chunk, detector.detect(imgs)):
            r.xyxy, r.class_ids, r.scores = det.xyxy.astype(np.float64), det.class_ids.astype(np.int64), det.scores.astype(float)
            r.ignore = np.zeros(len(det), bool)
    from .coco import write_coco
    from .voc import write_voc
    from .yolo import write_yolo

    if fmt == "yolo":
        write_yolo(ds, out, images=images_mode, portable=True)
    elif fmt == "coco":
        write_coco(ds, out, images=images_mode, with_scores=True)
    else:
        write_voc(ds, out, images=images_mode, decimals=1)
    return ds
