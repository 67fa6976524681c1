"""What every rule type is built from: the config base classes, the per-frame view, the "held for N
seconds" helper and the runtime base class :class:`Rule`.

A rule type is one module of :mod:`pockit.rules.types` holding its pydantic schema (a subclass of
:class:`RuleBase`) and its implementation (a subclass of :class:`Rule` decorated with
:func:`pockit.rules.registry.register`). Rules read the frame only through the :class:`RuleView`
they are given (anchors, zone membership, attached attributes, the frame, its timestamp); they keep
per-track state in small dataclasses through :meth:`Rule.track`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..core import Detections, Event, Frame
from ..resolve import class_error, match_classes
from .geometry import Polygon, geometry_problem, is_normalized, to_pixels

log = logging.getLogger("pockit.rules.engine")

EPS = 1e-6  # seconds: absorbs float rounding of index / fps in every duration comparison
ALARM_HOLD = 2.0  # seconds an object stays in .alarmed after a point event (crossing, exit)

Point = tuple[float, float]
S = TypeVar("S")


# ------------------------------------------------------------------------------------------------ config
class RuleBase(BaseModel):
    """Fields every rule has. A rule type's schema subclasses this (or :class:`ZoneRuleBase`) and adds
    ``type: Literal["<type>"]`` plus its own fields. Geometry fields named ``zone``, ``line``, ``fence``
    or ``region`` are checked at load time (:func:`pockit.rules.geometry.geometry_problem`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    classes: list[str | int] | None = Field(None, description="class filter: names or ids; None = all")
    min_score: float = Field(0.0, ge=0, le=1)
    anchor: Literal["bottom_center", "center", "top_center"] = "bottom_center"
    cooldown: float = Field(0.0, ge=0, description="seconds before the same track can raise this rule again")
    sources: list[str] | None = Field(None, description="source ids this rule applies to; None = all")
    normalized: bool | None = Field(None, description="coordinates in [0,1]; None = auto-detect")
    enabled: bool = True

    @field_validator("zone", "line", "fence", "region", check_fields=False)
    @classmethod
    def _geometry(cls, v, info: ValidationInfo):
        problem = geometry_problem(info.field_name, v, info.data.get("normalized"))
        if problem:
            raise ValueError(f"rule {info.data.get('name', '?')!r}: {problem}")
        return v


class ZoneRuleBase(RuleBase):
    """A rule on a required zone polygon."""

    zone: list[Point] = Field(..., min_length=3, description="polygon vertices")
    zone_name: str | None = None


# ------------------------------------------------------------------------------------------------ helpers
def isin(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """np.isin for a handful of allowed class ids, without its fixed overhead."""
    if len(allowed) == 0:
        return np.zeros(len(values), bool)
    if len(allowed) == 1:
        return values == allowed[0]
    return (values[:, None] == allowed[None, :]).any(1)


def as_box(xyxy) -> list[float]:
    return [float(v) for v in xyxy]


@dataclass(slots=True)
class Held:
    """A condition held for N seconds over a track's observations (the one helper of dwell, fall, ...).

    ``observe(cond, t)`` once per observation: ``True`` extends the current run (starting one at t),
    ``False`` ends it (and re-arms ``fire`` unless ``rearm=False``), ``None`` neither counts nor resets.
    With ``max_gap``, a run whose last ``True`` observation is more than ``max_gap`` seconds old
    restarts at the next ``True`` one (a long absence ends the episode and re-arms). ``fire(t, s)``
    is True once per run, at the first call where the run has lasted ``s`` seconds.
    """

    since: float | None = None  # start of the current run
    last: float | None = None  # last observation where the condition held
    fired: bool = False

    def observe(self, cond: bool | None, t: float, *, rearm: bool = True, max_gap: float | None = None) -> None:
        if cond is None:
            return
        if not cond:
            self.since = None
            if rearm:
                self.fired = False
            return
        if self.since is not None and max_gap is not None and t - self.last > max_gap + EPS:
            self.since, self.fired = None, False
        if self.since is None:
            self.since = t
        self.last = t

    def duration(self, t: float) -> float:
        return 0.0 if self.since is None else t - self.since

    def due(self, t: float, seconds: float) -> bool:
        return self.since is not None and t - self.since >= seconds - EPS

    def fire(self, t: float, seconds: float) -> bool:
        if self.fired or not self.due(t, seconds):
            return False
        self.fired = True
        return True


# ------------------------------------------------------------------------------------------------ view
class FrameView:
    """Read-only view of one frame, shared by every rule of the engine for that frame.

    ``t`` (timestamp, s), ``index``, ``frame`` (:class:`~pockit.core.Frame` or None on replayed tracks),
    ``dets`` (the tracker's output), ``names`` (class id -> name), ``source_id``, ``frame_size``.
    Anchors (clipped to the frame), class/score selections and zone memberships are computed once per
    frame and shared between rules. The arrays returned must not be written to.
    """

    __slots__ = (
        "_all_tracked",
        "_anchors",
        "_inside",
        "_masks",
        "dets",
        "frame",
        "frame_size",
        "index",
        "names",
        "source_id",
        "t",
    )

    def __init__(self, t: float, index: int, frame: Frame | None, dets: Detections, names: Mapping[int, str],
                 source_id: str, frame_size: tuple[int, int] | None) -> None:
        self.t, self.index, self.frame, self.dets, self.names = t, index, frame, dets, names
        self.source_id, self.frame_size = source_id, frame_size
        self._anchors: dict[str, np.ndarray] = {}
        self._inside: dict = {}
        self._masks: dict = {}
        self._all_tracked: bool | None = None

    @property
    def image(self) -> np.ndarray | None:
        return None if self.frame is None else self.frame.image

    def anchors(self, kind: str) -> np.ndarray:
        """(N, 2) anchor points of every detection (clipped to the frame when its size is known)."""
        a = self._anchors.get(kind)
        if a is None:
            a = self.dets.anchors(kind).astype(np.float64)
            if self.frame_size is not None and len(a):
                w, h = self.frame_size
                np.clip(a[:, 0], 0, w, out=a[:, 0])
                np.clip(a[:, 1], 0, h, out=a[:, 1])
            a.flags.writeable = False
            self._anchors[kind] = a
        return a

    def selection(self, class_ids: np.ndarray | None, min_score: float, key=None) -> np.ndarray:
        """Mask of confirmed tracks (track_id >= 0) of ``class_ids`` (None = all) scoring >= min_score;
        ``key``: a hashable stand-in for ``class_ids`` (computed from them when None)."""
        key = (None if class_ids is None else key if key is not None else tuple(int(c) for c in class_ids), min_score)
        m = self._masks.get(key)
        if m is None:
            d = self.dets
            m = d.track_ids >= 0
            if min_score > 0:
                m &= d.scores >= min_score
            if class_ids is not None:
                m &= isin(d.class_ids, class_ids)
            m.flags.writeable = False
            self._masks[key] = m
        return m

    def all_tracked(self) -> bool:
        if self._all_tracked is None:
            self._all_tracked = bool((self.dets.track_ids >= 0).all())
        return self._all_tracked

    def inside(self, polygon: Polygon, key: bytes, anchor: str) -> np.ndarray:
        """Membership of every detection's ``anchor`` in ``polygon`` (``key`` identifies the polygon)."""
        k = (anchor, key)
        full = self._inside.get(k)
        if full is None:
            full = self._inside[k] = polygon.contains(self.anchors(anchor))
            full.flags.writeable = False
        return full

    def attr(self, name: str, field: str | None = None) -> np.ndarray | None:
        """The attached attribute ``data[name]`` (or ``data["name.field"]``) of every detection; None when
        this frame's detections carry no such attribute (see docs/CONTRACTS.md, multi-model)."""
        return self.dets.data.get(name if field is None else f"{name}.{field}")


class RuleView(NamedTuple):
    """One rule's view of a frame (immutable): the tracks passing its class/score filter (``ids``,
    ``xyxy``, ``anchors`` of its anchor kind, ``cls``) and, through them, zone membership and attached
    attributes. Frame-level values (``t``, ``index``, ``frame``, ``image``, ``dets``, ``names``) are those
    of the shared :class:`FrameView` (``full``). Built by :meth:`Rule.view`."""

    full: FrameView
    rows: np.ndarray | None  # boolean mask into full.dets, None = every detection
    anchor: str
    t: float
    index: int
    frame: Frame | None
    dets: Detections
    names: Mapping[int, str]
    ids: np.ndarray
    xyxy: np.ndarray
    anchors: np.ndarray
    cls: np.ndarray

    @classmethod
    def of(cls, full: FrameView, rows: np.ndarray | None, anchor: str) -> RuleView:
        d, a = full.dets, full.anchors(anchor)
        if rows is None:
            return cls(full, None, anchor, full.t, full.index, full.frame, d, full.names, d.track_ids, d.xyxy, a,
                       d.class_ids)
        return cls(full, rows, anchor, full.t, full.index, full.frame, d, full.names, d.track_ids[rows], d.xyxy[rows],
                   a[rows], d.class_ids[rows])

    @property
    def image(self) -> np.ndarray | None:
        return self.full.image

    def _sub(self, a: np.ndarray) -> np.ndarray:
        return a if self.rows is None else a[self.rows]

    def inside(self, polygon: Polygon, key: bytes) -> np.ndarray:
        """Membership of this rule's anchors in ``polygon`` (computed once per frame per polygon/anchor)."""
        return self._sub(self.full.inside(polygon, key, self.anchor))

    def attr(self, name: str, field: str | None = None) -> np.ndarray | None:
        """The attached attribute of this rule's tracks (``data[name]`` or ``data["name.field"]``), None if absent."""
        a = self.full.attr(name, field)
        return None if a is None else self._sub(a)

    def labels(self, name: str) -> list[str | None]:
        """Class name of the detection attached as ``name`` to each of this rule's tracks, without a
        ``"<name>."`` prefix (a class renamed because an earlier model has the same name); None where
        nothing is attached (``""``/NaN/None) or when the frame carries no such attribute."""
        a = self.attr(name)
        if a is None:
            return [None] * len(self.ids)
        prefix = f"{name.lower()}."
        out: list[str | None] = []
        for x in a.tolist():
            s = x.strip() if isinstance(x, str) else ""
            out.append((s[len(prefix):] if s.lower().startswith(prefix) else s) or None)
        return out


# ------------------------------------------------------------------------------------------------ rule
class Rule:
    """Runtime base of a rule type: class/score filter, geometry in pixels, per-track state, cooldown,
    events and alarm bookkeeping. Subclasses implement :meth:`step` (and :meth:`finish` if they keep
    episodes open). ``schema`` and ``type`` are set by :func:`pockit.rules.registry.register`."""

    schema: ClassVar[type[RuleBase]]
    type: ClassVar[str]
    needs_frames = False  # True: the rule reads frame images (the pipeline must keep them)
    geometry_kind: str | None = None  # "zone" | "line" | "fence" (drawing; "zone" names events' zone)

    def __init__(self, cfg: RuleBase, source_id: str = "0") -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.source_id = str(source_id)
        self.state: dict[Any, Any] = {}
        self.last_seen: dict[Any, float] = {}
        self.last_event: dict[Any, float] = {}
        self.alarm_until: dict[Any, float] = {}
        self.alarm_box: dict[Any, tuple[np.ndarray, float]] = {}
        self.counts: dict[str, int] = {"events": 0}
        self.points: np.ndarray | None = None  # pixel geometry (zone polygon / line / fence)
        self.polygon: Polygon | None = None
        self._poly_key = b""
        self.names: Mapping[int, str] = {}
        self._allowed_cache: tuple | None = None
        self._warned: set[str] = set()

    # -- setup -------------------------------------------------------------------------------------
    def raw_geometry(self):
        """The config's geometry drawn by this rule (default: its ``zone``)."""
        return getattr(self.cfg, "zone", None)

    def prepare(self, frame_size) -> None:
        """Geometry to pixels (called once the frame size is known)."""
        g = self.raw_geometry()
        if g is not None:
            self.points = to_pixels(g, is_normalized(g, self.cfg.normalized), frame_size, f"rule {self.name!r}")
            if self.geometry_kind in (None, "zone"):
                self.polygon = Polygon(self.points)
                self._poly_key = self.points.tobytes()

    def shape(self) -> dict[str, Any] | None:
        """Geometry for drawing (pixels): kind (zone|line|fence|box), points (K, 2), name, direction."""
        if self.points is None:
            return None
        nm = getattr(self.cfg, "line_name", None) or getattr(self.cfg, "zone_name", None) or self.name
        return {"rule": self.name, "type": self.type, "kind": self.geometry_kind or "zone", "name": nm,
                "points": self.points, "direction": getattr(self.cfg, "direction", None), "counts": dict(self.counts)}

    def inside(self, v: RuleView) -> np.ndarray:
        """Zone membership of the view's tracks (shared between rules with the same zone and anchor)."""
        return v.inside(self.polygon, self._poly_key)

    def warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("rule %r: %s", self.name, msg)

    def allowed_ids(self, names: Mapping[int, str], spec=None, key: str = "classes") -> np.ndarray | None:
        """Class ids matching a names/ids filter (None = every class)."""
        spec = self.cfg.classes if spec is None and key == "classes" else spec
        if spec is None:
            return None
        ids, unknown = match_classes(spec, names, check_ids=False)
        for c in unknown if names else ():
            self.warn_once(f"{key}:{c}", class_error(key, c, names) + "; it matches nothing")
        return np.asarray(ids, np.int32)

    def view(self, fv: FrameView) -> RuleView:
        """This rule's tracks in frame ``fv``: confirmed tracks passing ``classes`` and ``min_score``."""
        if self.cfg.classes is None and self.cfg.min_score <= 0 and fv.all_tracked():
            return RuleView.of(fv, None, self.cfg.anchor)
        ids = key = None
        if self.cfg.classes is not None:
            if self._allowed_cache is None or self._allowed_cache[0] != id(fv.names):
                ids = self.allowed_ids(fv.names)
                self._allowed_cache = (id(fv.names), ids, tuple(ids.tolist()))
            _, ids, key = self._allowed_cache
        return RuleView.of(fv, fv.selection(ids, self.cfg.min_score, key), self.cfg.anchor)

    def states(self, v: RuleView, factory: Callable[[], S]) -> list[S]:
        """The per-track state of each of the view's tracks (in ``v.ids`` order; missing ones created by
        ``factory``); records that they were seen now. One call per frame: cheaper than :meth:`track`."""
        ids = v.ids.tolist()
        self.last_seen.update(dict.fromkeys(ids, v.t))
        st = self.state
        return [st.get(k) or st.setdefault(k, factory()) for k in ids]

    def track(self, tid, t: float, factory: Callable[[], S]) -> S:
        """The per-track state of ``tid`` (created by ``factory``); records that the track was seen at t."""
        self.last_seen[tid] = t
        st = self.state.get(tid)
        if st is None:
            st = self.state[tid] = factory()
        return st

    # -- events ------------------------------------------------------------------------------------
    def cool(self, key, t: float) -> bool:
        """True if ``key`` may raise at time t (and records it)."""
        last = self.last_event.get(key)
        if last is not None and t - last < self.cfg.cooldown - EPS:
            return False
        self.last_event[key] = t
        return True

    def event(self, t: float, index: int, track_id=None, box=None, class_id=None, **kw) -> Event:
        self.counts["events"] = self.counts.get("events", 0) + 1
        cls = None if class_id is None else self.names.get(int(class_id), str(int(class_id)))
        ev = Event(rule=self.name, type=self.type, source=self.source_id, time=float(t), frame=int(index),
                   track_id=track_id, class_name=cls, bbox=None if box is None else as_box(box), **kw)
        if getattr(self.cfg, "zone_name", None) or self.geometry_kind == "zone":
            ev.zone = getattr(self.cfg, "zone_name", None) or self.name
        return ev

    def hold(self, key, t: float, box=None, seconds: float = ALARM_HOLD) -> None:
        self.alarm_until[key] = t + seconds
        if box is not None:
            self.alarm_box[key] = (np.asarray(box, np.float64), t + seconds)

    def alarmed(self, t: float) -> set:
        return {k for k, until in self.alarm_until.items() if until >= t and isinstance(k, (int, np.integer))}

    def boxes(self, t: float) -> list[np.ndarray]:
        return [b for b, until in self.alarm_box.values() if until >= t]

    def forget(self, t: float, horizon: float) -> None:
        old = [k for k, v in self.last_seen.items() if t - v > horizon]
        for k in old:
            self.last_seen.pop(k, None)
            self.state.pop(k, None)
        for k in [k for k, v in self.alarm_until.items() if v < t - horizon]:
            self.alarm_until.pop(k, None)
            self.alarm_box.pop(k, None)

    # -- per frame ---------------------------------------------------------------------------------
    def run(self, fv: FrameView) -> list[Event]:
        """Called by the engine once per frame."""
        self.names = fv.names
        return self.step(self.view(fv))

    def step(self, v: RuleView) -> list[Event]:  # pragma: no cover
        raise NotImplementedError

    def finish(self, t: float, index: int) -> list[Event]:
        return []
