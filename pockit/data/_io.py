"""Small helpers shared by the label readers/writers."""
from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..paths import contained
from .dataset import IMAGE_EXTS, ImageRecord
from .errors import LabelError

IMAGE_MODES = ("copy", "link", "none")


def out_path(base: Path, rel: str, what: str = "image file name", *, folder: str | None = None,
             label_file: str | None = None, follow_last: bool = True) -> Path:
    """Where a writer puts ``rel`` (an image key read from the labels) under ``base`` (/ ``folder``,
    e.g. a split name, also from the labels).

    Every writer of pockit.data names its output files through this function. Backslashes count as
    folder separators (keys written on Windows); an absolute key or a drive letter is refused, and
    the result must stay inside ``base`` (:func:`pockit.paths.contained`: no ``..`` or symlink
    leading out). A refusal is a LabelError naming the key and the label file it came from.
    follow_last=False checks only the folder (the file itself may be a symlink the writer
    replaces: linked images).
    """
    try:
        parts = []
        for part, name in ((folder, "folder"), (rel, what)):
            if part is None:
                continue
            norm = str(part).replace("\\", "/")
            if any(PureWindowsPath(p).drive for p in norm.split("/")):
                raise ValueError(f"{name} {part!r} has a Windows drive letter, not a path inside {base}")
            if norm.startswith("/"):
                raise ValueError(f"{name} {part!r} is absolute: it escapes {base}")
            parts.append(norm)
        target = PurePosixPath("/".join(parts))
        if "\0" in str(target):
            raise ValueError(f"{what} {rel!r} contains a NUL byte")
        if target.name in ("", ".", ".."):
            raise ValueError(f"{what} {rel!r} does not end in a file name")
        check = target if follow_last else target.parent
        try:
            resolved = Path(base).resolve() if str(check) == "." else contained(base, str(check), what)
        except ValueError:
            raise ValueError(f"{what} {rel!r}{f' (folder {folder!r})' if folder else ''} escapes {base}") from None
        return resolved if follow_last else resolved / target.name
    except ValueError as e:
        raise LabelError(str(e), file=label_file) from None


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
        return str(round(v))
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def read_text(path: Path, what: str = "file") -> str:
    """A UTF-8 text file's content; a file that is not UTF-8 is a LabelError naming its line and the bad byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LabelError(f"{what} is not UTF-8 text (byte {e.start})", file=path, line=data[:e.start].count(b"\n") + 1,
                         value=data[e.start:e.start + 1]) from None
