"""File sinks: JSONL (one event per line) and CSV, flushed on every event.

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) are written with a leading apostrophe (:func:`csv_safe`, the OWASP CSV-injection rule);
numbers stay numbers.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..core import Event

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A cell value a spreadsheet shows as text: strings starting like a formula get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class EventSink:
    """Base: ``write(event)`` delivers one event, ``close()`` flushes and releases resources.

    ``delivery()`` says what became of the events written: raised, delivered, pending, dead_letter, dropped.
    """

    kind = "sink"

    def __init__(self) -> None:
        self.written = 0
        self.failed = 0

    def write(self, event: Event) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass

    def delivery(self) -> dict:
        """File sinks: an event is delivered once its line is written and flushed."""
        return {"sink": self.kind, "target": str(getattr(self, "path", "")), "raised": self.written + self.failed,
                "delivered": self.written, "pending": 0, "dead_letter": 0, "dropped": self.failed}

    def _counted(self, fn, event: Event) -> None:
        try:
            fn(event)
        except Exception:
            self.failed += 1
            raise
        self.written += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class JsonlSink(EventSink):
    """Appends ``event.to_json()`` lines to ``path``; flushed per event, optionally fsync'ed (``fsync=True``)."""

    kind = "jsonl"

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, event: Event) -> None:
        self._counted(self._write, event)

    def _write(self, event: Event) -> None:
        self._f.write(event.to_json() + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()


CSV_FIELDS = ["id", "rule", "type", "source", "time", "frame", "track_id", "class", "x1", "y1", "x2", "y2",
              "zone", "line", "direction", "count", "duration", "end", "snapshot", "clip", "extra"]


class CsvSink(EventSink):
    """One row per event with columns :data:`CSV_FIELDS` (bbox split in x1..y2, lists and extra as JSON);
    every text cell goes through :func:`csv_safe`."""

    kind = "csv"

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.fsync = fsync
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        self._w = csv.DictWriter(self._f, fieldnames=CSV_FIELDS)
        if new:
            self._w.writeheader()
            self._f.flush()

    def write(self, event: Event) -> None:
        self._counted(self._write, event)

    def _write(self, event: Event) -> None:
        d = event.to_dict()
        row = {k: d.get(k, "") for k in CSV_FIELDS}
        bbox = d.get("bbox") or ["", "", "", ""]
        row.update(x1=bbox[0], y1=bbox[1], x2=bbox[2], y2=bbox[3])
        if isinstance(d.get("track_id"), list):
            row["track_id"] = json.dumps(d["track_id"])
        row["extra"] = json.dumps(d["extra"], ensure_ascii=False) if d.get("extra") else ""
        self._w.writerow({k: csv_safe(v) for k, v in row.items()})
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
