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
