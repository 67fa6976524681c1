"""The zone / line / fence editor's state, with no browser or widget in it.

:class:`SceneEditor` holds the shapes drawn on one camera frame (in pixels of that frame), turns
mouse presses, drags and releases into edits, and converts to and from the PoC config's rules
(:mod:`pockit.rules.schema`). The ipycanvas widget (:mod:`pockit.notebook.editor`) only forwards
mouse events here and draws what it is told, so everything below is unit-tested without a browser.

Mouse semantics (``press`` / ``move`` / ``release``):

- press on a vertex: select its shape and drag the vertex (on the first vertex of an unfinished
  zone with 3+ points: close the zone instead);
- a double-click (two timed presses at one place, ``press(x, y, t=...)``) finishes the zone or fence
  being drawn;
- press elsewhere while the selected shape is unfinished and of the current mode: add a point
  (a line is finished at its 2nd point);
- press on an edge of the selected finished zone/fence: insert a vertex there and drag it;
- press anywhere else: start a new shape of the current mode with that point.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..rules import schema as S

KINDS = ("zone", "line", "fence")
#: rule types the editor can draw, per shape kind (first = default)
RULE_TYPES_BY_KIND: dict[str, tuple[str, ...]] = {
    "zone": ("zone_enter", "zone_exit", "loitering", "crowd", "presence", "abandoned_object", "fall", "no_helmet",
             "phone_use", "face_match", "unknown_face"),
    "line": ("line_crossing",),
    "fence": ("fence_crossing", "climbing"),  # polylines (climbing: the top of a wall)
}
#: rule types whose zone is optional: without one they watch the whole frame (nothing to draw)
WHOLE_FRAME_TYPES = frozenset({"abandoned_object", "fall", "no_helmet", "phone_use", "face_match", "unknown_face"})
KIND_OF_TYPE = {t: k for k, ts in RULE_TYPES_BY_KIND.items() for t in ts}
GEOMETRY_FIELD = {"zone": "zone", "line": "line", "fence": "fence"}
#: rule types that keep their drawn geometry in another field than their kind's
GEOMETRY_FIELD_OF_TYPE = {"climbing": "line"}
MIN_POINTS = {"zone": 3, "line": 2, "fence": 2}
DOUBLE_CLICK_S = 0.45  # two presses this close in time (and within hit_radius) are a double-click
MODELS: dict[str, type] = dict(S.SCHEMAS)  # rule type -> pydantic model, from the rule registry
#: values for required parameters when a shape is created or its rule type changed
REQUIRED_DEFAULTS: dict[str, Any] = {"dwell": 10.0, "min_count": 3, "min_duration": 0.0,
                                     "watchlist": "watchlist.npz"}
#: fields the editor manages itself (not shown as parameters)
MANAGED_FIELDS = {"type", "zone", "line", "fence", "normalized"}
_RULE_ADAPTER = TypeAdapter(S.RuleConfig)
_PLACEHOLDER = {"zone": [[0, 0], [1, 0], [1, 1]], "line": [[0, 0], [1, 1]], "fence": [[0, 0], [1, 1]]}


class EditorError(ValueError):
    """A shape or rule parameter the editor cannot turn into a valid rule (message names the rule)."""


def rule_kind(rule: dict | Any) -> str | None:
    """The editable shape kind of a rule (zone/line/fence), or None when it has no drawable geometry."""
    d = rule if isinstance(rule, dict) else rule.model_dump()
    kind = KIND_OF_TYPE.get(d.get("type"))
    if kind is None:
        return None
    if d.get(geometry_field(kind, d.get("type"))) is None and d.get("type") in WHOLE_FRAME_TYPES:
        return None  # whole-frame rule: nothing to draw
    return kind


def geometry_field(kind: str, rule_type: str | None = None) -> str:
    """The rule field holding a shape's points: the kind's, unless the rule type keeps them elsewhere."""
    return GEOMETRY_FIELD_OF_TYPE.get(str(rule_type), GEOMETRY_FIELD[kind])


def _field_errors(err: ValidationError, name: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in S.RULE_TYPES)
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return f"rule {name!r}: " + "; ".join(parts)


@dataclass
class Shape:
    """One drawn rule: its kind, its points in frame pixels, and the rule's other fields."""

    kind: str
    points: list[list[float]] = field(default_factory=list)
    rule: dict[str, Any] = field(default_factory=dict)  # name, type and parameters (no geometry)
    finished: bool = False

    @property
    def name(self) -> str:
        return str(self.rule.get("name", ""))

    @property
    def type(self) -> str:
        return str(self.rule.get("type", RULE_TYPES_BY_KIND[self.kind][0]))

    def complete(self) -> bool:
        n = len({tuple(p) for p in self.points})
        return n >= MIN_POINTS[self.kind]


class SceneEditor:
    """Shapes drawn on one frame of ``frame_size`` = (width, height) pixels.

    ``hit_radius``: how close (frame pixels) a press must be to a vertex or edge to grab it;
    default 1.5 % of the larger frame side, at least 6 px. ``default_sources``: the ``sources``
    filter given to new rules (set it to ``[camera id]`` when the config has several cameras).
    """

    def __init__(self, frame_size: tuple[int, int], shapes: Iterable[Shape] = (), mode: str = "zone",
                 hit_radius: float | None = None, source_id: str | None = None,
                 default_sources: list[str] | None = None) -> None:
        w, h = int(frame_size[0]), int(frame_size[1])
        if w <= 0 or h <= 0:
            raise EditorError(f"frame_size must be positive (width, height), got {frame_size}")
        self.frame_size = (w, h)
        self.shapes: list[Shape] = list(shapes)
        self.source_id = source_id
        self.default_sources = default_sources  # ``sources`` given to new rules (multi-camera configs)
        self.hit_radius = float(hit_radius) if hit_radius else max(6.0, 0.015 * max(w, h))
        self.active: int | None = len(self.shapes) - 1 if self.shapes else None
        self._mode = "zone"
        self.mode = mode
        self._drag: tuple[int, int] | None = None
        self._moved = False
        self._last_press: tuple[float, float, float] | None = None  # (t, x, y) of the last timed press

    # -- mode and selection ----------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in KINDS:
            raise EditorError(f"mode must be one of {KINDS}, got {value!r}")
        self._mode = value

    @property
    def current(self) -> Shape | None:
        return self.shapes[self.active] if self.active is not None else None

    @property
    def dragging(self) -> tuple[int, int] | None:
        """(shape index, point index) being dragged, or None."""
        return self._drag

    def select(self, index: int | str | None) -> None:
        """Select a shape by index or rule name (None: no selection)."""
        if isinstance(index, str):
            names = [s.name for s in self.shapes]
            if index not in names:
                raise EditorError(f"no rule named {index!r}; rules: {names}")
            index = names.index(index)
        if index is not None and not 0 <= index < len(self.shapes):
            raise EditorError(f"shape index {index} out of range (0..{len(self.shapes) - 1})")
        self.active = index
        if index is not None:
            self._mode = self.shapes[index].kind

    def _unique_name(self, base: str) -> str:
        names = {s.name for s in self.shapes}
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    # -- shape operations ------------------------------------------------------------------------
    def new_shape(self, kind: str | None = None, rule_type: str | None = None, name: str | None = None,
                  **params: Any) -> Shape:
        """Start an empty shape (of the current mode by default) and select it."""
        kind = kind or self.mode
        if kind not in KINDS:
            raise EditorError(f"kind must be one of {KINDS}, got {kind!r}")
        rule_type = rule_type or RULE_TYPES_BY_KIND[kind][0]
        if rule_type not in RULE_TYPES_BY_KIND[kind]:
            raise EditorError(f"a {kind} can carry rule types {RULE_TYPES_BY_KIND[kind]}, not {rule_type!r}")
        if name is not None and name in {s.name for s in self.shapes}:
            raise EditorError(f"a rule named {name!r} already exists")
        rule: dict[str, Any] = {"name": name or self._unique_name(kind), "type": rule_type}
        rule.update(self._required_defaults(rule_type))
        if self.default_sources is not None and params.get("sources") is None:
            rule["sources"] = list(self.default_sources)
        rule.update(params)
        shape = Shape(kind=kind, rule=rule)
        self.shapes.append(shape)
        self.active = len(self.shapes) - 1
        self._mode = kind
        return shape

    @staticmethod
    def _required_defaults(rule_type: str) -> dict[str, Any]:
        model = MODELS[rule_type]
        return {k: REQUIRED_DEFAULTS[k] for k, f in model.model_fields.items()
                if f.is_required() and k in REQUIRED_DEFAULTS}

    def add_point(self, x: float, y: float) -> None:
        """Append a point to the selected shape (starting a new one when none is selected)."""
        if self.current is None or self.current.finished:
            self.new_shape()
        s = self.current
        s.points.append(self._clamp(x, y))
        if s.kind == "line" and len(s.points) >= 2:
            s.finished = True

    def finish(self) -> None:
        """Mark the selected shape finished (the next press starts a new shape)."""
        if self.current is not None:
            self.current.finished = True

    def undo_point(self) -> None:
        """Remove the last point of the selected shape (and reopen it)."""
        s = self.current
        if s is not None and s.points:
            s.points.pop()
            s.finished = False

    def delete(self, index: int | None = None) -> None:
        """Delete a shape (the selected one by default)."""
        index = self.active if index is None else index
        if index is None:
            return
        del self.shapes[index]
        self._drag = None
        self.active = (min(index, len(self.shapes) - 1) if self.shapes else None)

    def duplicate(self, index: int | None = None, rule_type: str | None = None) -> Shape:
        """Copy a shape's geometry into a new rule (e.g. intrusion + loitering on one zone)."""
        index = self.active if index is None else index
        if index is None:
            raise EditorError("nothing selected to duplicate")
        src = self.shapes[index]
        params = {k: v for k, v in src.rule.items() if k not in ("name", "type")}
        shape = self.new_shape(src.kind, rule_type or src.type, name=self._unique_name(src.name.rstrip("_0123456789") or src.kind))
        if rule_type is None:
            shape.rule.update(params)
        else:
            allowed = MODELS[shape.type].model_fields
            shape.rule.update({k: v for k, v in params.items() if k in allowed})
        shape.points = [list(p) for p in src.points]
        shape.finished = True
        return shape

    def set_rule_type(self, rule_type: str, index: int | None = None) -> None:
        """Change a shape's rule type, keeping the parameters the new type also has."""
        s = self.shapes[self.active if index is None else index]
        if rule_type not in RULE_TYPES_BY_KIND[s.kind]:
            raise EditorError(f"rule {s.name!r} is a {s.kind}: rule types {RULE_TYPES_BY_KIND[s.kind]}, "
                              f"not {rule_type!r}")
        allowed = MODELS[rule_type].model_fields
        rule = {k: v for k, v in s.rule.items() if k in allowed}
        rule["type"] = rule_type
        for k, v in self._required_defaults(rule_type).items():
            rule.setdefault(k, v)
        s.rule = rule

    def set_param(self, key: str, value: Any, index: int | None = None) -> None:
        """Set one rule parameter, validated by the rule schema (EditorError names the field)."""
        i = self.active if index is None else index
        if i is None:
            raise EditorError("no rule selected")
        s = self.shapes[i]
        if key in MANAGED_FIELDS:
            raise EditorError(f"{key!r} is set by the editor, not as a parameter")
        if key not in MODELS[s.type].model_fields:
            raise EditorError(f"rule type {s.type!r} has no parameter {key!r}; "
                              f"parameters: {sorted(set(MODELS[s.type].model_fields) - MANAGED_FIELDS)}")
        if key == "name" and value in {t.name for j, t in enumerate(self.shapes) if j != i}:
            raise EditorError(f"a rule named {value!r} already exists")
        trial = dict(s.rule)
        if value is None:
            trial.pop(key, None)
        else:
            trial[key] = value
        validated = self._validate(s.kind, trial, _PLACEHOLDER[s.kind])
        # store the validated (coerced) value so widgets and YAML agree
        if value is None:
            s.rule.pop(key, None)
        else:
            v = getattr(validated, key)
            s.rule[key] = list(v) if isinstance(v, tuple) else v

    @staticmethod
    def _validate(kind: str, rule: dict, geometry: list) -> Any:
        data = dict(rule)
        data[geometry_field(kind, rule.get("type"))] = geometry
        data["normalized"] = True if geometry is _PLACEHOLDER[kind] else data.get("normalized")
        try:
            return _RULE_ADAPTER.validate_python(data)
        except ValidationError as e:
            raise EditorError(_field_errors(e, str(rule.get("name")))) from None

    # -- mouse -----------------------------------------------------------------------------------
    def _clamp(self, x: float, y: float) -> list[float]:
        w, h = self.frame_size
        return [min(max(float(x), 0.0), float(w)), min(max(float(y), 0.0), float(h))]

    def hit_vertex(self, x: float, y: float) -> tuple[int, int] | None:
        """(shape, point) of the nearest vertex within ``hit_radius``; the selected shape wins ties."""
        order = list(range(len(self.shapes) - 1, -1, -1))
        if self.active is not None:
            order.remove(self.active)
            order.insert(0, self.active)
        best, best_d = None, self.hit_radius
        for si in order:
            for pi, (px, py) in enumerate(self.shapes[si].points):
                d = math.hypot(px - x, py - y)
                if d <= best_d and (best is None or d < best_d or si == order[0] and best[0] != si):
                    best, best_d = (si, pi), d
        return best

    def hit_edge(self, x: float, y: float, index: int | None = None) -> int | None:
        """Index i of the edge (point i -> i+1, closing edge for zones) of a shape within ``hit_radius``."""
        i = self.active if index is None else index
        if i is None:
            return None
        s = self.shapes[i]
        pts = s.points
        n = len(pts)
        edges = [(k, (k + 1) % n) for k in range(n)] if s.kind == "zone" and n >= 3 else \
            [(k, k + 1) for k in range(n - 1)]
        best, best_d = None, self.hit_radius
        for a, b in edges:
            d = _segment_distance((x, y), pts[a], pts[b])
            if d <= best_d:
                best, best_d = a, d
        return best

    def press(self, x: float, y: float, t: float | None = None) -> str:
        """Mouse down at frame pixel (x, y); returns what it did: close, drag, add, insert or new.

        ``t``: the press time in seconds (any monotonic clock); a second press within
        :data:`DOUBLE_CLICK_S` and ``hit_radius`` of the previous one (a double-click) finishes the
        selected zone (3+ points) or fence (2+ points) being drawn ("close") instead of adding a point.
        """
        last, self._last_press = self._last_press, (None if t is None else (float(t), float(x), float(y)))
        cur = self.current
        if (t is not None and last is not None and 0 <= t - last[0] <= DOUBLE_CLICK_S
                and math.hypot(x - last[1], y - last[2]) <= self.hit_radius and cur is not None
                and not cur.finished and cur.kind in ("zone", "fence") and cur.complete()):
            cur.finished = True
            self._drag = None
            self._last_press = None
            return "close"
        hit = self.hit_vertex(x, y)
        if hit is not None:
            si, pi = hit
            s = self.shapes[si]
            if (si == self.active and s.kind == "zone" and not s.finished and pi == 0 and len(s.points) >= 3):
                s.finished = True
                return "close"
            self.active = si
            self._mode = s.kind
            self._drag, self._moved = (si, pi), False
            return "drag"
        if cur is not None and not cur.finished and cur.kind == self.mode:
            self.add_point(x, y)
            return "add"
        if cur is not None and cur.finished and cur.kind in ("zone", "fence") and cur.kind == self.mode:
            e = self.hit_edge(x, y)
            if e is not None:
                cur.points.insert(e + 1, self._clamp(x, y))
                self._drag, self._moved = (self.active, e + 1), False
                return "insert"
        self.new_shape(self.mode)
        self.add_point(x, y)
        return "new"

    def move(self, x: float, y: float) -> bool:
        """Mouse move; returns True when a dragged vertex moved (the view must redraw)."""
        if self._drag is None:
            return False
        si, pi = self._drag
        p = self._clamp(x, y)
        if self.shapes[si].points[pi] == p:
            return False
        self.shapes[si].points[pi] = p
        self._moved = True
        return True

    def release(self, x: float | None = None, y: float | None = None) -> bool:
        """Mouse up (or out): ends a drag; returns True when something was dragged."""
        if self._drag is None:
            return False
        if x is not None and y is not None:
            self.move(x, y)
        moved, self._drag = self._moved, None
        return moved

    # -- rules <-> shapes ------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Why the current shapes cannot all be saved (empty when they can)."""
        out = []
        for s in self.shapes:
            try:
                self.rule_config(s)
            except EditorError as e:
                out.append(str(e))
        return out

    def rule_config(self, shape: Shape, normalized: bool = True, precision: int = 4) -> Any:
        """The validated rule (pydantic model of :mod:`pockit.rules.schema`) for one shape."""
        n = len({tuple(p) for p in shape.points})
        if n < MIN_POINTS[shape.kind]:
            raise EditorError(f"rule {shape.name!r}: a {shape.kind} needs at least {MIN_POINTS[shape.kind]} "
                              f"distinct points, it has {n}: click more points on the frame or delete it")
        if shape.kind == "line" and len(shape.points) != 2:
            raise EditorError(f"rule {shape.name!r}: a line has exactly 2 points, it has {len(shape.points)}")
        w, h = self.frame_size
        if normalized:
            geom = [[round(x / w, precision), round(y / h, precision)] for x, y in shape.points]
        else:
            geom = [[_num(round(x, 1)), _num(round(y, 1))] for x, y in shape.points]
        rule = dict(shape.rule)
        rule["normalized"] = bool(normalized)
        return self._validate(shape.kind, rule, geom)

    def to_rules(self, normalized: bool = True, precision: int = 4) -> list[Any]:
        """All shapes as validated rules; raises EditorError listing every incomplete/invalid one."""
        probs = self.problems()
        if probs:
            raise EditorError("cannot save the drawn rules:\n  - " + "\n  - ".join(probs))
        return [self.rule_config(s, normalized, precision) for s in self.shapes]

    def to_dicts(self, normalized: bool = True, precision: int = 4) -> list[dict[str, Any]]:
        """The rules as compact YAML-ready dicts (only non-default fields, geometry after type)."""
        return [rule_to_dict(r) for r in self.to_rules(normalized, precision)]

    @classmethod
    def from_rules(cls, rules: Sequence[Any], frame_size: tuple[int, int], source_id: str | None = None,
                   **kwargs: Any) -> SceneEditor:
        """Shapes for the drawable rules that apply to ``source_id`` (others are ignored here)."""
        ed = cls(frame_size, source_id=source_id, **kwargs)
        for r in editable_rules(rules, source_id):
            ed.shapes.append(shape_from_rule(r, ed.frame_size))
        ed.active = len(ed.shapes) - 1 if ed.shapes else None
        if ed.shapes:
            ed._mode = ed.shapes[-1].kind
        return ed


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def _segment_distance(p, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    t = 0.0 if l2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / l2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def as_rule_models(rules: Sequence[Any]) -> list[Any]:
    """Validate dicts (or pass models through) as rule models; errors name the rule index."""
    out = []
    for i, r in enumerate(rules):
        if isinstance(r, dict):
            try:
                r = _RULE_ADAPTER.validate_python(r)
            except ValidationError as e:
                raise EditorError(_field_errors(e, str(r.get("name", f"rules[{i}]")))) from None
        out.append(r)
    return out


def applies_to(rule: Any, source_id: str | None) -> bool:
    return source_id is None or rule.sources is None or source_id in rule.sources


def editable_rules(rules: Sequence[Any], source_id: str | None = None) -> list[Any]:
    """The rules the editor shows: drawable geometry and applying to ``source_id``."""
    return [r for r in as_rule_models(rules) if rule_kind(r) is not None and applies_to(r, source_id)]


def shape_from_rule(rule: Any, frame_size: tuple[int, int]) -> Shape:
    """A :class:`Shape` in frame pixels from a rule model (normalized or pixel coordinates)."""
    from ..rules.geometry import is_normalized

    kind = rule_kind(rule)
    geom = getattr(rule, geometry_field(kind, rule.type))
    norm = is_normalized(geom, rule.normalized)
    w, h = frame_size
    pts = [[float(x) * w, float(y) * h] if norm else [float(x), float(y)] for x, y in geom]
    d = rule.model_dump(mode="json", exclude_defaults=True)
    params = {k: v for k, v in d.items() if k not in MANAGED_FIELDS}
    params["name"], params["type"] = rule.name, rule.type
    return Shape(kind=kind, points=pts, rule=params, finished=True)


def rule_to_dict(rule: Any) -> dict[str, Any]:
    """A rule model as a compact dict: name, type, geometry, normalized, then non-default fields."""
    full = rule.model_dump(mode="json", exclude_defaults=True)
    out: dict[str, Any] = {"name": rule.name, "type": rule.type}
    for g in ("zone", "line", "fence", "region"):
        if full.get(g) is not None:
            out[g] = full.pop(g)
    if rule.normalized is not None:
        out["normalized"] = rule.normalized
    full.pop("normalized", None)
    for k, v in full.items():
        out.setdefault(k, v)
    return out
