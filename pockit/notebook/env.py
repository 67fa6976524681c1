"""Notebook environment: fast mode for CI and the shared work directory between notebooks."""
from __future__ import annotations

import os
from pathlib import Path


def fast_mode() -> bool:
    """True under CI (env ``CI``) or with ``POCKIT_NB_FAST=1``: notebooks use small sizes."""
    flag = os.environ.get("POCKIT_NB_FAST", "").strip().lower()
    if flag in ("0", "false", "no"):
        return False
    ci = os.environ.get("CI", "").strip().lower()
    return bool(flag) or ci not in ("", "0", "false", "no")


def work_dir(create: bool = True) -> Path:
    """Where notebooks leave artefacts for the next one: env ``POCKIT_NB_WORK``, else ``./work``."""
    p = Path(os.environ.get("POCKIT_NB_WORK") or "work").expanduser().resolve()
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p
