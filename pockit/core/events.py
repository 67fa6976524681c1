"""Alarm records: one JSON-serializable dataclass, written one line per event to events.jsonl."""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable


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
        d = asdict(self)
        d["class"] = d.pop("class_name")
        if d["bbox"] is not None:
            d["bbox"] = [round(float(v), 2) for v in d["bbox"]]
        d["time"] = round(float(d["time"]), 4)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        d = dict(d)
        if "class" in d:
            d["class_name"] = d.pop("class")
        known = {f.name for f in fields(cls)}
        extra = {k: d.pop(k) for k in list(d) if k not in known}
        for key in ("rule", "type", "time"):
            if key not in d:
                raise ValueError(f"event record lacks required field {key!r}: {d}")
        d.setdefault("source", "0")
        d.setdefault("frame", -1)
        ev = cls(**d)
        ev.extra.update(extra)
        return ev


def read_events(path: str | Path) -> list[Event]:
    """Read an events.jsonl file; a malformed line raises ValueError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"events file not found: {path}")
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(Event.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{lineno}: bad event record: {e}") from e
    return out


def write_events(events: Iterable[Event], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(ev.to_json() + "\n")
    return path
