"""MOTChallenge sequences as detection datasets: one image per frame, the gt boxes of that frame.

Reads ``seqinfo.ini`` (image folder, frame rate, size) and ``gt/gt.txt`` through
:func:`pockit.core.read_mot` (rows with consider=0 skipped). Every frame image becomes an image,
frames without gt rows included (as background), so note that some sequences annotate only
part of the view (PETS09: a tracking area).
"""
from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from ..core import read_mot
from ..core.mot import MotFormatError
from ._io import list_images, read_text
from .dataset import Dataset, ImageRecord, validate
from .errors import LabelError, number
from .report import ValidationReport


def read_mot_dataset(seq_dir: str | Path, class_name: str = "person", *, every: int = 1, min_visibility: float = 0.0,
                     on_outside: str = "clip", dup_iou: float = 1.01, check_images: bool = True,
                     root: str | Path | None = None) -> Dataset:
    """One MOT sequence folder -> Dataset (source = sequence name, timestamp = (frame-1)/fps).

    every: keep every n-th frame; root: directory the image keys are relative to (default: the
    sequence's parent, so keys look like ``TUD-Campus/img1/000001.jpg`` and sequences can be joined).
    dup_iou defaults to off (>1): crowds legitimately overlap in MOT ground truth.
    """
    seq = Path(seq_dir)
    ini = seq / "seqinfo.ini"
    info = {"name": seq.name, "imdir": "img1", "framerate": "0", "imwidth": "0", "imheight": "0", "imext": ".jpg"}
    if ini.exists():
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read_string(read_text(ini, "seqinfo.ini"), source=str(ini))
        except configparser.Error as e:
            raise LabelError(f"not an INI file: {e.message.splitlines()[0]}", file=ini, line=getattr(e, "lineno", None)) from None
        if cp.has_section("Sequence"):
            info.update({k.lower(): v for k, v in cp.items("Sequence")})
    if not info["imdir"] or "\0" in info["imdir"]:
        raise LabelError("not a folder name", file=ini, field="[Sequence] imDir", value=info["imdir"])
    img_dir = seq / info["imdir"]
    if not img_dir.is_dir():
        if ini.exists() and info["imdir"] != "img1":  # the file names a folder that is not there
            raise LabelError(f"image folder not found: {img_dir}", file=ini, field="[Sequence] imDir", value=info["imdir"])
        raise FileNotFoundError(f"MOT image folder not found: {img_dir} (seqinfo.ini imDir)")
    gt_path = seq / "gt" / "gt.txt"
    if not gt_path.exists():
        raise FileNotFoundError(f"MOT ground truth not found: {gt_path}")
    fps = number(info["framerate"], "[Sequence] frameRate", minimum=0, file=ini) or None
    w, h = (int(number(info[k], f"[Sequence] {k}", minimum=0, file=ini)) for k in ("imwidth", "imheight"))
    try:
        gt = read_mot(gt_path, class_names={0: class_name}, gt=True, min_visibility=min_visibility)
    except MotFormatError as e:  # "<file>:<line>: problem"
        msg = str(e)
        head, _, problem = msg[len(str(gt_path)) + 1:].partition(": ") if msg.startswith(f"{gt_path}:") else ("", "", msg)
        raise LabelError(problem, file=gt_path, line=int(head) if head.isdigit() else None) from None
    except UnicodeDecodeError as e:
        raise LabelError(f"not UTF-8 text (byte {e.start})", file=gt_path) from None
    root = Path(root) if root is not None else seq.parent
    rep = ValidationReport(title=f"MOT import of {seq}")
    images = []
    frames_seen = set()
    for p in list_images(img_dir):
        try:
            frame = int(p.stem)
        except ValueError:
            continue
        frames_seen.add(frame)
        if (frame - 1) % every:
            continue
        d = gt.get(frame)
        xyxy = d.xyxy.astype(np.float64) if d is not None else np.zeros((0, 4))
        images.append(ImageRecord(p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name, p, w, h, xyxy,
                                  np.zeros(len(xyxy), np.int64), source=info["name"], frame=frame - 1,
                                  timestamp=(frame - 1) / fps if fps else None,
                                  meta={"label_file": str(gt_path), "track_ids": d.track_ids.tolist() if d is not None else []}))
    for frame in sorted(set(gt) - frames_seen):
        rep.add("missing_image", "dropped", f"gt has {len(gt[frame])} box(es) for frame {frame} but no image {frame:06d}"
                f"{info['imext']} in {img_dir}", file=str(gt_path), image=f"{frame:06d}{info['imext']}")
    ds = Dataset(images, [class_name], root, rep, info["name"])
    return validate(ds, on_outside=on_outside, dup_iou=dup_iou, check_images=check_images)
