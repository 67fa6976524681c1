"""The scenario rules engine: confirmed tracks in, alarm :class:`~pockit.core.Event` records out.

The rule types are the modules of :mod:`pockit.rules.types` (schema + implementation, found through
:mod:`pockit.rules.registry`); each frame, the engine builds one read-only
:class:`~pockit.rules.base.FrameView` and hands every rule its own :class:`~pockit.rules.base.RuleView`.

Shared semantics (every rule):

* Rules see only confirmed tracks (``track_id >= 0``) that pass the rule's class filter (names or
  ids) and ``min_score``. A track's position is the rule's anchor point of its box; when the frame size
  is known, anchors are clipped to the frame, so a zone drawn up to the frame edge holds a person whose
  box runs off the image.
* "Consecutive frames" are consecutive *observations* of the track: a frame where the tracker does
  not report the track neither extends nor breaks a run. Per-track state is forgotten after the track
  has been unseen for ``forget`` seconds (default 300).
* Times are frame timestamps in seconds; every duration is in seconds (a tolerance of 1e-6 s absorbs
  float rounding of ``index / fps``).
* ``cooldown``: a track cannot raise the same rule again until ``cooldown`` seconds after its last
  event (event times compared). Suppressed events still change the rule's state (re-arm follows the
  semantics, not the cooldown). ``crowd`` and foreground ``abandoned_object`` apply it per rule / per blob.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..core import Detections, Event, Frame
from . import registry
from . import schema as S
from .base import ALARM_HOLD, EPS, FrameView, Rule

log = logging.getLogger(__name__)

__all__ = ["ALARM_HOLD", "EPS", "RuleEngine"]


class RuleEngine:
    """Runs a source's rules frame by frame.

    ``rules``: rule configs (pydantic models or dicts); disabled rules and rules restricted to other
    ``sources`` are skipped. ``frame_size`` (w, h) is needed for normalized geometry; when None it is
    taken from the first frame. ``class_names`` maps class ids to names (the detections' own mapping wins).
    """

    def __init__(self, rules: Iterable[S.RuleConfig | dict], source_id: str = "0",
                 frame_size: tuple[int, int] | None = None, class_names: Mapping[int, str] | None = None,
                 forget: float = 300.0) -> None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(S.RuleConfig)
        cfgs = [adapter.validate_python(r) if isinstance(r, dict) else r for r in rules]
        self.source_id = str(source_id)
        self.rules: list[Rule] = [registry.make(c, self.source_id) for c in cfgs
                                  if c.enabled and (c.sources is None or self.source_id in c.sources)]
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate rule names: {sorted({n for n in names if names.count(n) > 1})}")
        self.frame_size = tuple(int(v) for v in frame_size) if frame_size else None
        self.class_names = dict(class_names or {})
        self.forget = float(forget)
        self._prepared = False
        self._last_t = 0.0
        self._last_purge = None
        self._try_prepare(raise_=False)

    def _try_prepare(self, raise_: bool = True) -> bool:
        try:
            for r in self.rules:
                r.prepare(self.frame_size)
        except ValueError:
            if raise_:
                raise
            return False
        self._prepared = True
        return True

    # -- main API ----------------------------------------------------------------------------------
    def update(self, frame: Frame | None, dets: Detections, timestamp: float, index: int) -> list[Event]:
        """Feed one frame's tracked detections; returns the events raised on this frame."""
        if self.frame_size is None and frame is not None:
            self.frame_size = frame.size
            self._prepared = False
        if not self._prepared:
            self._try_prepare(raise_=True)
        t = float(timestamp)
        self._last_t = t
        names = dets.class_names if dets.class_names else self.class_names
        fv = FrameView(t, int(index), frame, dets, names, self.source_id, self.frame_size)
        out: list[Event] = []
        for r in self.rules:
            out.extend(r.run(fv))
        if self._last_purge is None or t - self._last_purge > 10.0:
            self._last_purge = t
            for r in self.rules:
                r.forget(t, self.forget)
        return out

    def finish(self, timestamp: float, index: int) -> list[Event]:
        """End of stream: closes open episodes (crowd) and returns their closing records."""
        out: list[Event] = []
        for r in self.rules:
            out.extend(r.finish(float(timestamp), int(index)))
        return out

    # -- state for drawing / counting --------------------------------------------------------------
    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Per rule: running counters (line/fence: 'in'/'out' crossings; every rule: 'events')."""
        return {r.name: dict(r.counts) for r in self.rules}

    @property
    def alarmed(self) -> dict[str, set[int]]:
        """Per rule: track ids in alarm now (while the condition holds, or 2 s after a point event)."""
        return {r.name: r.alarmed(self._last_t) for r in self.rules}

    @property
    def alarmed_ids(self) -> set[int]:
        return set().union(*self.alarmed.values()) if self.rules else set()

    @property
    def alarm_boxes(self) -> dict[str, list[np.ndarray]]:
        """Per rule: boxes in alarm that are not tracks (foreground blobs, guarded regions)."""
        return {r.name: r.boxes(self._last_t) for r in self.rules}

    @property
    def shapes(self) -> list[dict[str, Any]]:
        """Geometry in pixels for drawing: rule, type, kind (zone|line|fence|box), points (K,2), name, direction."""
        out = []
        if not self._prepared and not self._try_prepare(raise_=False):
            return out
        for r in self.rules:
            s = r.shape()
            if s is not None:
                out.append(s)
        return out

    @property
    def needs_frames(self) -> bool:
        return any(r.needs_frames for r in self.rules)
