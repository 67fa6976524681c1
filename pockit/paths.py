"""Where pockit finds shared footage and keeps its caches.

POCKIT_DATA_DIR: local directory with sample footage (default: ``../shared/data`` beside the
repository checkout, the layout of the development machines).
POCKIT_CACHE_DIR: downloaded models and media (default ``~/.cache/pockit``).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    env = os.environ.get("POCKIT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def cache_dir() -> Path:
    env = os.environ.get("POCKIT_CACHE_DIR")
    p = Path(env).expanduser() if env else Path.home() / ".cache" / "pockit"
    p.mkdir(parents=True, exist_ok=True)
    return p


def contained(base: str | Path, rel: str | Path, what: str = "path") -> Path:
    """``base/rel`` resolved (symlinks and ``..`` followed), refused unless it lies strictly inside
    ``base``: the one containment check every writer uses before it creates or deletes a file named
    by user input (config names, label file names, ...).

    Raises ``ValueError(f"{what} {rel!r} escapes {base}")`` for an absolute path outside ``base``,
    a ``..`` that climbs out, or a symlink leading out; ``ValueError`` too when ``rel`` names ``base``
    itself (empty, ``.``) or holds a NUL byte.
    """
    if "\x00" in str(rel):
        raise ValueError(f"{what} {rel!r} contains a NUL byte")
    root = Path(base).expanduser().resolve()
    target = (root / Path(rel)).resolve()
    if target == root:
        raise ValueError(f"{what} {rel!r} names {base} itself, not a path inside it")
    if root not in target.parents:
        raise ValueError(f"{what} {rel!r} escapes {base}")
    return target
