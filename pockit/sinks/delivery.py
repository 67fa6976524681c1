"""The durable delivery queue every network sink (webhook, MQTT) sends through: no alarm is lost.

Layout of a queue folder (``home``)::

    <home>/<event id>.json               one pending event (the JSON body sent), written atomically
    <home>/dead_letter/<event id>.json   {"event": ..., "kind": "rejected"|"overflow", "reason": ..., "at": ...}

* ``put(event)`` writes ``<event id>.json`` (temporary file, fsync, rename, fsync of the folder) before it
  returns; the file is removed only after the receiver acknowledged the event (HTTP 2xx, MQTT PUBACK).
  Files are named by the event's unique id, so several runs (or sinks) may share one folder.
* A background thread sends pending events oldest first (earlier runs' leftovers before new ones).
  A transient failure (connection refused, timeout, HTTP 5xx/408/429, broker down) is retried with
  exponential backoff (``backoff`` s doubling, at most 30 s) up to ``retries`` attempts; the event then
  waits (stays pending) while later events get their turn. It is tried again in the final pass at
  ``close()`` and by the next run; an event that waits only because the receiver was unreachable also gets
  a new round as soon as the receiver accepts another event (it came back).
* A permanent rejection (HTTP 4xx other than 408/429, an MQTT payload the broker cannot take) moves the
  event to ``dead_letter/`` with the reason: it never blocks later events.
* When ``queue_max`` events are pending, a new event is not queued: it is written to ``dead_letter/``
  (kind ``overflow``), logged as an error and counted as ``dropped``.
* ``close()`` stops the thread and keeps resending for at most ``deadline`` seconds; what is still
  pending stays on disk and is sent first by the next queue opened on the same folder.
* Two senders on one folder (two runs at once) never send the same file at the same time: a sender
  holds an exclusive ``flock`` on an event file while it sends it.

``delivery()`` accounts for this run's events: ``raised = delivered + pending + dead_letter + dropped``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/Jetson
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
MAX_BACKOFF = 30.0


class PermanentError(Exception):
    """The receiver refused this event for good (it goes to the dead-letter folder)."""


class TransientError(Exception):
    """The event could not be delivered now: retry later. ``unreachable``: the receiver could not be reached
    at all (connection refused, timeout, broker not connected) rather than answering with an error."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def safe_name(event_id: str) -> str:
    """A file name for an event id: the id itself when it is a plain name, else a readable part + hash."""
    s = str(event_id)
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", s).strip(".")[:80]
    if clean == s and s:
        return s
    return f"{clean or 'event'}-{hashlib.sha256(s.encode('utf-8')).hexdigest()[:12]}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves either the old state or the whole new file."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


class DeliveryQueue:
    """One durable queue folder and its sender thread (see the module docstring).

    send: ``send(body: bytes)`` delivers one event and returns once the receiver acknowledged it; it raises
    :class:`PermanentError` or :class:`TransientError` (any other exception counts as transient).
    sink/target: names shown in logs and in ``delivery()`` (``target`` must already be redacted).
    scrub: removes secrets from error texts before they are logged or written.
    """

    def __init__(self, home: str | Path, send: Callable[[bytes], None], *, sink: str, target: str,
                 retries: int = 5, queue_max: int = 10000, deadline: float = 10.0, backoff: float = 0.25,
                 scrub: Callable[[str], str] = lambda s: s) -> None:
        self.dir = Path(home).resolve()
        self.dead_dir = self.dir / DEAD_LETTER
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        self.send = send
        self.sink = sink
        self.target = target
        self.retries = max(1, int(retries))
        self.queue_max = max(1, int(queue_max))
        self.deadline = max(0.0, float(deadline))
        self.backoff = float(backoff)
        self.scrub = scrub
        self.resent = 0          # events of earlier runs delivered now
        self.failures = 0        # failed attempts (any event)
        self._own: set[str] = set()       # file names of the events raised here
        self._acked: set[str] = set()     # ... acknowledged by this sender
        self._rejected: set[str] = set()  # ... dead-lettered by this sender
        self._dropped: set[str] = set()   # ... not queued (overflow or disk error)
        self._attempts: dict[str, int] = {}
        self._answered: set[str] = set()  # waiting events the receiver answered with a (transient) error
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        earlier = len(self._pending_files())
        if earlier:
            log.warning("%s %s: %d event(s) left by an earlier run in %s; resending them first", sink, target,
                        earlier, self.dir)
        self._thread = threading.Thread(target=self._run, name=f"{sink}-delivery", daemon=True)
        self._thread.start()

    # -- disk ---------------------------------------------------------------------------------
    def _pending_files(self) -> list[Path]:
        out = []
        for p in self.dir.glob("*.json"):
            try:
                out.append((p.stat().st_mtime_ns, p.name, p))
            except FileNotFoundError:
                continue
        return [p for _, _, p in sorted(out)]

    def put(self, event_id: str, body: str) -> bool:
        """Queue one event durably; False (and counted as dropped, kept in dead_letter/) when the queue is full."""
        name = safe_name(event_id) + ".json"
        with self._lock:
            self._own.add(name)  # the same event written twice is one event (one file)
            try:
                n = len(self._pending_files())
                if n >= self.queue_max:
                    self._dropped.add(name)
                    self._dead_letter(name, body, "overflow",
                                      f"queue full: {n} events pending (queue_max={self.queue_max})")
                    log.error("%s %s: queue full (%d pending, queue_max=%d): event %s not queued; kept in %s",
                              self.sink, self.target, n, self.queue_max, event_id, self.dead_dir)
                    return False
                atomic_write(self.dir / name, body)
            except OSError as e:
                self._dropped.add(name)
                log.error("%s %s: cannot queue event %s on disk (%s): not delivered", self.sink, self.target,
                          event_id, e)
                raise
        self._wake.set()
        return True

    def _dead_letter(self, name: str, body: str, kind: str, reason: str) -> None:
        try:
            ev: Any = json.loads(body)
        except ValueError:
            ev = body
        rec = {"event": ev, "kind": kind, "reason": self.scrub(reason), "sink": self.sink, "target": self.target,
               "at": datetime.now().isoformat(timespec="seconds")}
        atomic_write(self.dead_dir / name, json.dumps(rec, ensure_ascii=False, indent=1))

    # -- sending ------------------------------------------------------------------------------
    def _attempt(self, path: Path) -> str:
        """Send one pending file: 'ok', 'dead', 'retry' or 'skip' (gone, or another sender holds it)."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held open (and locked) while the event is sent
        except FileNotFoundError:
            return "skip"
        with fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return "skip"
            try:  # another sender may have delivered and removed it between open and lock
                if os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:
                    return "skip"
            except FileNotFoundError:
                return "skip"
            body = fh.read()
            name = path.name
            try:
                self.send(body)
            except PermanentError as e:
                reason = self.scrub(str(e))
                self._dead_letter(name, body.decode("utf-8", "replace"), "rejected", reason)
                path.unlink(missing_ok=True)
                with self._lock:
                    if name in self._own:
                        self._rejected.add(name)
                self._attempts.pop(name, None)
                self._answered.discard(name)
                log.error("%s %s rejected event %s for good (%s); moved to %s", self.sink, self.target,
                          path.stem, reason, self.dead_dir)
                return "dead"
            except Exception as e:  # noqa: BLE001 - TransientError and anything unexpected: keep it, retry later
                self.failures += 1
                if isinstance(e, TransientError) and not e.unreachable:
                    self._answered.add(name)
                self._last_error = self.scrub(f"{type(e).__name__}: {e}" if not isinstance(e, TransientError)
                                              else str(e))
                return "retry"
            path.unlink(missing_ok=True)
            _fsync_dir(self.dir)
        with self._lock:
            if name in self._own:
                self._acked.add(name)
            else:
                self.resent += 1
        self._attempts.pop(name, None)
        self._answered.discard(name)
        return "ok"

    def _delay(self, attempts: int) -> float:
        return min(self.backoff * 2 ** max(0, attempts - 1), MAX_BACKOFF)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - e.g. disk full: the thread lives on, the events stay pending
                log.error("%s %s: delivery thread error: %s", self.sink, self.target, self.scrub(str(e)))
                self._stop.wait(1.0)

    def _step(self) -> None:
        """One attempt at the oldest event that has attempts left (then its backoff wait), or an idle wait."""
        files = [p for p in self._pending_files() if self._attempts.get(p.name, 0) < self.retries]
        for p in files:
            if self._stop.is_set():
                return
            res = self._attempt(p)
            if res == "skip":
                continue
            if res == "ok" and self._attempts:  # reachable again: events that waited for it get a new round
                self._attempts = {k: v for k, v in self._attempts.items() if k in self._answered}
            if res == "retry":
                k = self._attempts.get(p.name, 0) + 1
                self._attempts[p.name] = k
                if k == 1 or k == self.retries:
                    log.warning("%s %s: event %s not delivered (%s); attempt %d of %d%s", self.sink, self.target,
                                p.stem, self._last_error, k, self.retries,
                                "; it waits for the receiver to accept another event, the close pass or the "
                                "next run" if k == self.retries else "")
                if k < self.retries:
                    self._stop.wait(self._delay(k))
            return
        self._wake.wait(0.5)
        self._wake.clear()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until no event is pending; True when the queue is empty."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self._pending_files():
                return True
            self._wake.set()
            time.sleep(0.05)
        return not self._pending_files()

    def close(self) -> None:
        """Stop the sender, then resend what is pending for at most ``deadline`` s; the rest stays queued."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join()
        end = time.monotonic() + self.deadline
        k = 0
        while time.monotonic() < end:
            files = self._pending_files()
            if not files:
                break
            progress = False
            for p in files:
                if time.monotonic() >= end:
                    break
                res = self._attempt(p)
                progress = progress or res in ("ok", "dead")
            if not progress:
                k += 1
                time.sleep(max(0.0, min(self._delay(k), end - time.monotonic())))
        d = self.delivery()
        if d["pending"] or d["queue_pending"]:
            log.error("%s %s: %d event(s) of this run not delivered (last error: %s); %d kept in %s and resent "
                      "by the next run", self.sink, self.target, d["pending"], self._last_error, d["queue_pending"],
                      self.dir)

    # -- accounting ---------------------------------------------------------------------------
    def delivery(self) -> dict[str, Any]:
        """This run's events: raised = delivered + pending + dead_letter + dropped (from the files on disk)."""
        pending_names = {p.name for p in self._pending_files()}
        with self._lock:
            own = set(self._own)
            dropped = set(self._dropped)
            rejected = set(self._rejected)
        dead_names = {p.name for p in self.dead_dir.glob("*.json")}
        pending = len(own & pending_names - dropped)
        dead = len((own & dead_names) - dropped | rejected)
        # a file of ours is removed only on acknowledgement (by us or by another sender on this folder)
        delivered = len(own) - pending - dead - len(dropped)
        out = {"sink": self.sink, "target": self.target, "raised": len(own), "delivered": delivered,
               "pending": pending, "dead_letter": dead, "dropped": len(dropped), "resent": self.resent,
               "queue_pending": len(pending_names), "queue_dir": str(self.dir), "dead_letter_dir": str(self.dead_dir)}
        if self._last_error and (pending or len(pending_names)):
            out["last_error"] = self._last_error
        return out


from .files import EventSink  # noqa: E402  (files does not import this module)


class QueuedSink(EventSink):
    """A network sink that sends through a :class:`DeliveryQueue` (``self.queue``, made by the subclass):
    ``write`` only queues (durable, on disk); subclasses give ``_payload(event)`` and ``_close_transport()``."""

    def _payload(self, event) -> str | bytes:
        return event.to_json()

    def _close_transport(self) -> None:
        pass

    def write(self, event) -> None:
        self.queue.put(event.id, self._payload(event))

    @property
    def pending(self) -> int:
        """Events waiting in the queue folder (this run's and earlier runs')."""
        return len(self.queue._pending_files())

    @property
    def failures(self) -> int:
        return self.queue.failures

    @property
    def queue_dir(self) -> Path:
        return self.queue.dir

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the queue to drain; True when empty."""
        return self.queue.flush(timeout)

    def delivery(self) -> dict:
        return self.queue.delivery()

    def close(self) -> None:
        try:
            self.queue.close()
        finally:
            self._close_transport()
