"""Open any supported label set by path, guessing the format."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .coco import read_coco
from .dataset import Dataset
from .mot import read_mot_dataset
from .voc import read_voc
from .yolo import read_yolo

FORMATS = ("voc", "coco", "yolo", "mot")


def detect_format(path: str | Path) -> str:
    """'coco' (a .json), 'yolo' (data.yaml, classes.txt/obj.names, or .txt labels), 'mot' (seqinfo.ini or gt/gt.txt), 'voc' (.xml)."""
    p = Path(path)
    if p.is_file():
        if p.suffix == ".json":
            return "coco"
        if p.suffix in (".yaml", ".yml"):
            return "yolo"
        raise ValueError(f"cannot tell the label format of file {p}: give a COCO .json, a YOLO data.yaml or a folder")
    if (p / "seqinfo.ini").exists() or (p / "gt" / "gt.txt").exists():
        return "mot"
    if any((p / n).exists() for n in ("data.yaml", "dataset.yaml", "obj.names")):
        return "yolo"
    if (p / "Annotations").is_dir() or next(p.glob("*.xml"), None) is not None:
        return "voc"
    if len(list(p.glob("*.json"))) == 1:
        return "coco"
    if (p / "classes.txt").exists() or (p / "labels").is_dir():
        return "yolo"
    raise ValueError(f"cannot tell the label format of {p}: expected VOC (Annotations/ or .xml), COCO (.json), "
                     "YOLO (data.yaml / classes.txt + .txt labels) or a MOT sequence (seqinfo.ini, gt/gt.txt); pass fmt=")


def load_dataset(path: str | Path, fmt: str = "auto", **kw: Any) -> Dataset:
    """Read a label set (``fmt``: auto, voc, coco, yolo, mot); keyword arguments go to the reader."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"voc": read_voc, "coco": read_coco, "yolo": read_yolo, "mot": read_mot_dataset}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}; expected auto or one of {FORMATS}")
    return readers[fmt](path, **kw)


def save_dataset(ds: Dataset, out: str | Path, fmt: str, **kw: Any) -> Path:
    """Write ``ds`` as voc, coco or yolo under ``out`` (see the writers for options)."""
    from .coco import write_coco
    from .voc import write_voc
    from .yolo import write_yolo

    writers = {"voc": write_voc, "coco": write_coco, "yolo": write_yolo}
    if fmt not in writers:
        raise ValueError(f"cannot write format {fmt!r}; expected one of {sorted(writers)}")
    return writers[fmt](ds, out, **kw)
