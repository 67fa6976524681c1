"""Notebook helpers: the interactive zone/line editor, rule replay panel and display helpers.

The logic lives in pure-Python modules (:mod:`.scene`, :mod:`.configio`); the widgets
(:mod:`.editor`, :mod:`.display`) import ipywidgets/ipycanvas lazily, so ``pockit`` itself
never needs Jupyter.
"""
from __future__ import annotations

from .configio import load_scene, replace_rules_block, save_scene
from .scene import KINDS, RULE_TYPES_BY_KIND, EditorError, SceneEditor, Shape

__all__ = [
    "KINDS",
    "RULE_TYPES_BY_KIND",
    "EditorError",
    "SceneEditor",
    "Shape",
    "ZoneEditor",
    "fast_mode",
    "load_scene",
    "replace_rules_block",
    "save_scene",
    "work_dir",
]


def __getattr__(name):
    if name == "ZoneEditor":
        from .editor import ZoneEditor

        return ZoneEditor
    if name in ("fast_mode", "work_dir"):
        from . import env

        return getattr(env, name)
    raise AttributeError(name)
