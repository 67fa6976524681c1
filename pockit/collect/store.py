"""The collection folder of ``pockit collect``: every box's events in one place, each exactly once.

Layout of ``out``::

    journal.jsonl            every new event, in arrival order, appended and fsync'ed before the broker is
                             told it was received (MQTT PUBACK / Kafka offset saved): the durable record
    events.jsonl             the same events ordered by time (rewritten atomically, at most once a second and
                             at most ~10 % of the time; always at exit)
    snapshots/<box>/<id>.jpg the snapshots the boxes sent (event.snapshot points here, relative to out)
    state.json               consumer position (Kafka offsets per partition), written atomically
    rejected/                messages that are not events (kept with the reason, never block the stream)
    collect.json             counts and alarm-to-collection latency, written at every flush

An event is identified by (box, id): ``extra.box`` stamped by the box (``outputs.box_id``) and its id; a
message seen again (at-least-once redelivery, a box resending after a crash) is counted as a duplicate
and dropped. After a restart the journal gives back the seen ids (a torn last line, from a crash while it
was written, is cut off: that message was not acknowledged, so the broker sends it again).

Order of events.jsonl: the wall-clock time the box raised the alarm (``extra.raised_at``; boxes need
synchronised clocks, NTP), then box, camera, event time and id; an event without ``raised_at`` is placed at
the time it was collected.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..sinks.delivery import _fsync_dir, atomic_write, safe_name
from .wire import decode

log = logging.getLogger(__name__)


def event_key(d: dict[str, Any]) -> tuple[str, str]:
    """(box, id) of an event record: unique across boxes."""
    return str((d.get("extra") or {}).get("box") or ""), str(d.get("id"))


def order_key(d: dict[str, Any]) -> tuple:
    ex = d.get("extra") or {}
    t = ex.get("raised_at")
    if not isinstance(t, (int, float)):
        t = ex.get("collected_at", 0.0)
    return (float(t), str(ex.get("box") or ""), str(d.get("source", "")), float(d.get("time", 0.0)), str(d.get("id")))


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation) of ``values``; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class CollectStore:
    """The collection folder (see the module docstring). ``accept(payload)`` is thread-safe."""

    def __init__(self, out: str | Path, rewrite_interval: float = 1.0) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "snapshots").mkdir(exist_ok=True)
        self.journal_path = self.out / "journal.jsonl"
        self.rewrite_interval = float(rewrite_interval)
        self._lock = threading.Lock()
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.received = 0
        self.duplicates = 0
        self.rejected = 0
        self.resumed = 0
        self._dirty = False
        self._last_rewrite = 0.0
        self._gap = self.rewrite_interval  # grows with the rewrite time: at most ~10 % of the time spent rewriting
        self._load()
        self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115 - open until close()

    # -- restart -------------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.journal_path.exists():
            return
        raw = self.journal_path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a crash while a line was written: that message was never acknowledged
            log.warning("%s: cutting a torn last line (%d bytes) left by a crash; the broker resends that event",
                        self.journal_path, len(raw) - end)
            with open(self.journal_path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        for n, line in enumerate(raw[:end].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{self.journal_path}:{n}: not a JSON line ({e}); the journal was edited or "
                                 "damaged: move it away to start a new collection") from None
            self.events[event_key(d)] = d
        self.resumed = len(self.events)
        if self.resumed:
            log.info("%s: resuming with %d event(s) already collected", self.out, self.resumed)
            self._dirty = True

    # -- messages ------------------------------------------------------------------------------
    def accept(self, payload: bytes | str, origin: str = "") -> bool:
        """Store one message durably; True when it was a new event (False: duplicate or rejected).
        Returns only once the event (and its snapshot) is on disk: acknowledge the message after it."""
        now = time.time()
        try:
            d, snap = decode(payload)
        except ValueError as e:
            self._reject(payload, str(e), origin)
            return False
        key = event_key(d)
        with self._lock:
            self.received += 1
            if key in self.events:
                self.duplicates += 1
                return False
            box, eid = key
            extra = d.setdefault("extra", {})
            on_box = d.pop("snapshot", None)
            if snap is not None:
                rel = Path("snapshots") / safe_name(box or "_") / f"{safe_name(eid)}.jpg"
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                tmp = self.out / rel.with_suffix(".tmp")
                with open(tmp, "wb") as f:
                    f.write(snap)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.out / rel)
                d["snapshot"] = rel.as_posix()
            elif on_box:
                extra["snapshot_on_box"] = on_box
            extra["collected_at"] = round(now, 3)
            if origin:
                extra.setdefault("collected_from", origin)
            self._journal.write(json.dumps(d, ensure_ascii=False) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())
            self.events[key] = d
            self._dirty = True
        return True

    def _reject(self, payload: bytes | str, reason: str, origin: str) -> None:
        with self._lock:
            self.received += 1
            self.rejected += 1
            rdir = self.out / "rejected"
            rdir.mkdir(exist_ok=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
            rec = {"reason": reason, "origin": origin, "at": round(time.time(), 3), "payload": text[:65536]}
            atomic_write(rdir / f"{time.time_ns()}.json", json.dumps(rec, ensure_ascii=False))
        log.error("message from %s is not an event (%s); kept in %s", origin or "the broker", reason, rdir)

    # -- outputs -------------------------------------------------------------------------------
    def flush(self, force: bool = False) -> bool:
        """Rewrite events.jsonl (sorted) and collect.json when something changed (at most every
        ``rewrite_interval`` s unless ``force``); True when they were written."""
        with self._lock:
            if not self._dirty or (not force and time.monotonic() - self._last_rewrite < self._gap):
                return False
            events = sorted(self.events.values(), key=order_key)
            self._dirty = False
            self._last_rewrite = time.monotonic()
            stats = self._stats_locked()
        t0 = time.monotonic()
        atomic_write(self.out / "events.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in events))
        atomic_write(self.out / "collect.json", json.dumps(stats, indent=1))
        self._gap = max(self.rewrite_interval, 10 * (time.monotonic() - t0))
        return True

    def _stats_locked(self) -> dict[str, Any]:
        lat = [d["extra"]["collected_at"] - d["extra"]["raised_at"] for d in self.events.values()
               if isinstance((d.get("extra") or {}).get("raised_at"), (int, float))]
        boxes: dict[str, int] = {}
        cams: set[tuple[str, str]] = set()
        for (box, _), d in self.events.items():
            boxes[box] = boxes.get(box, 0) + 1
            cams.add((box, str(d.get("source"))))
        p50, p95 = percentile(lat, 50), percentile(lat, 95)
        return {"events": len(self.events), "received": self.received, "duplicates": self.duplicates,
                "rejected": self.rejected, "resumed_with": self.resumed, "boxes": dict(sorted(boxes.items())),
                "cameras": len(cams), "snapshots": sum(1 for d in self.events.values()
                                                       if str(d.get("snapshot", "")).startswith("snapshots/")),
                "latency_s": {"n": len(lat), "p50": round(p50, 3) if p50 is not None else None,
                              "p95": round(p95, 3) if p95 is not None else None,
                              "what": "box raised the alarm (extra.raised_at) -> event on disk here "
                                      "(extra.collected_at); wall clocks, same machine or NTP"}}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats_locked()

    def save_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.out / "state.json", json.dumps(state, indent=1))

    def load_state(self) -> dict[str, Any]:
        p = self.out / "state.json"
        if not p.exists():
            return {}
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ValueError(f"{p}: not JSON ({e}); remove it to re-read the topic from the start (the journal "
                             "drops what was already collected)") from None

    def close(self) -> None:
        self.flush(force=True)
        if not self._journal.closed:
            self._journal.close()
        _fsync_dir(self.out)
