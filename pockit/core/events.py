"""Alarm records: one JSON-serializable dataclass, written one line per event to events.jsonl."""
from __future__ import annotations

import copy
import json
import logging
import math
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)


@dataclass
class Event:
    rule: str
    type: str
    source: str
    time: float
    frame: int
    track_id: int | list[int] | None = None
    class_name: str | None = None  # serialized as "class"
    bbox: list[float] | None = None
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    count: int | None = None
    duration: float | None = None
    end: float | None = None
    snapshot: str | None = None
    clip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_dict(self) -> dict[str, Any]:
        """The JSON record: fields in declaration order, ``class_name`` last as ``class``, None and {} left out,
        mutable values copied (what :func:`dataclasses.asdict` gives, at a fifth of its cost: the results
        thread writes every event of every stream)."""
        d: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            v = getattr(self, name)
            if v is None or (isinstance(v, dict) and not v):
                continue
            d[name] = v if isinstance(v, (str, int, float)) else _plain(v)
        d["time"] = round(float(self.time), 4)
        if self.bbox is not None:
            d["bbox"] = [round(float(v), 2) for v in self.bbox]
        if self.class_name is not None:
            d["class"] = self.class_name
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        d = dict(d)
        if "class" in d:
            d["class_name"] = d.pop("class")
        known = _KNOWN
        extra = {k: d.pop(k) for k in list(d) if k not in known}
        for key in ("rule", "type", "time"):
            if key not in d:
                raise ValueError(f"event record lacks required field {key!r}: {d}")
        d.setdefault("source", "0")
        d.setdefault("frame", -1)

        def num(v: Any) -> bool:  # a finite number (a JSON integer too large for a float is not)
            try:
                return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            except OverflowError:
                return False
        if not num(d["time"]):  # to_dict and every reader of events need numbers here
            raise ValueError(f"event field 'time' is not a finite number: {str(d['time'])[:40]!r}")
        if d.get("bbox") is not None and not (isinstance(d["bbox"], list) and len(d["bbox"]) == 4 and all(map(num, d["bbox"]))):
            raise ValueError(f"event field 'bbox' is not [x1, y1, x2, y2]: {str(d['bbox'])[:60]}")
        ev = cls(**d)
        ev.extra.update(extra)
        return ev


_FIELD_NAMES = tuple(f.name for f in fields(Event) if f.name != "class_name")
_KNOWN = frozenset(f.name for f in fields(Event))


def _plain(v: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples copied down; other objects deep-copied), as asdict."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return copy.deepcopy(v)


class EventList(list):
    """A list of events read from a file; ``skipped`` holds ``(line number, reason)`` of the lines left out."""

    skipped: list[tuple[int, str]]

    def __init__(self, items=(), skipped=None):
        super().__init__(items)
        self.skipped = list(skipped or [])


def read_events(path: str | Path) -> EventList:
    """Read an events.jsonl file.

    A malformed line raises ValueError naming file and line, except the last one: a run killed while it
    wrote an event leaves a torn last line, which is skipped with a warning (counted in ``.skipped`` of the
    returned :class:`EventList`).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"events file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [(n, ln.strip()) for n, ln in enumerate(f, 1) if ln.strip()]
    out = EventList()
    for i, (lineno, line) in enumerate(lines):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise TypeError(f"expected a JSON object, got {type(rec).__name__}")
            out.append(Event.from_dict(rec))
        except (json.JSONDecodeError, TypeError, ValueError, RecursionError) as e:  # RecursionError: nested too deeply
            if i < len(lines) - 1:
                raise ValueError(f"{path}:{lineno}: bad event record: {e}") from e
            reason = f"{e}"
            out.skipped.append((lineno, reason))
            log.warning("%s:%d: last line is not a complete event record (%s); skipped (a run that was "
                        "killed while writing it leaves such a line)", path, lineno, reason[:120])
    return out


def write_events(events: Iterable[Event], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(ev.to_json() + "\n")
    return path
