"""Small helpers shared by the label readers/writers."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .dataset import IMAGE_EXTS, ImageRecord

IMAGE_MODES = ("copy", "link", "none")


def place_image(im: ImageRecord, dest: Path, mode: str) -> None:
    """Copy, symlink or skip the image of ``im`` to ``dest`` (a missing source image is left out, not an error)."""
    if mode not in IMAGE_MODES:
        raise ValueError(f"images must be one of {IMAGE_MODES}, not {mode!r}")
    if mode == "none" or not im.path.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        if dest.resolve() == im.path.resolve():
            return
        dest.unlink()
    if mode == "copy":
        shutil.copy2(im.path, dest)
    else:
        os.symlink(im.path.resolve(), dest)


def find_image(directory: Path, stem: str) -> Path | None:
    """The image named ``stem`` with any known extension in ``directory`` (None if absent)."""
    for ext in IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        p = directory / f"{stem}{ext}"
        if p.exists():
            return p
    return None


def list_images(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def fmt_num(v: float, decimals: int) -> str:
    """Number text with at most ``decimals`` decimals, trailing zeros removed (``12`` not ``12.000``)."""
    if decimals <= 0:
        return str(int(round(v)))
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s
