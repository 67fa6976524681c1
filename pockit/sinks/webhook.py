"""HTTP webhook sink: POST each event as JSON, never losing one while the receiver is down.

Every event is first written to a bounded on-disk queue (one file per event in ``queue_dir``); a
background thread POSTs queued events oldest first and deletes a file only after a 2xx answer.
Failures back off exponentially (0.25 s doubling, capped at 30 s) and retry indefinitely; events
still queued at ``close()`` stay on disk and are sent by the next sink opened on the same
``queue_dir``. When the queue holds ``queue_max`` events the oldest is dropped (logged as an error).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import requests

from ..core import Event
from .files import EventSink

log = logging.getLogger(__name__)


class WebhookSink(EventSink):
    def __init__(self, url: str, queue_dir: str | Path, timeout: float = 5.0, retries: int = 5,
                 queue_max: int = 10000, headers: dict | None = None, drain_timeout: float | None = None) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook sink: url must start with http:// or https://, got {url!r}")
        self.url = url
        self.timeout = float(timeout)
        self.max_backoff_exp = max(0, int(retries))
        self.queue_max = int(queue_max)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.drain_timeout = self.timeout * 2 if drain_timeout is None else float(drain_timeout)
        self.queue_dir = Path(queue_dir)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self._seq = self._last_seq() + 1
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="webhook-sink", daemon=True)
        self._thread.start()

    def _files(self) -> list[Path]:
        return sorted(self.queue_dir.glob("*.json"))

    def _last_seq(self) -> int:
        files = self._files()
        return int(files[-1].stem) if files else 0

    @property
    def pending(self) -> int:
        return len(self._files())

    def write(self, event: Event) -> None:
        with self._lock:
            path = self.queue_dir / f"{self._seq:012d}.json"
            self._seq += 1
            tmp = path.with_suffix(".tmp")
            tmp.write_text(event.to_json(), encoding="utf-8")
            os.replace(tmp, path)
            files = self._files()
            for old in files[: max(0, len(files) - self.queue_max)]:
                old.unlink(missing_ok=True)
                self.dropped += 1
                log.error("webhook queue full (%d): dropped oldest event %s", self.queue_max, old.name)
        self._wake.set()

    def _post(self, body: str) -> bool:
        try:
            r = self._session.post(self.url, data=body.encode("utf-8"), headers=self.headers, timeout=self.timeout)
            return 200 <= r.status_code < 300
        except requests.RequestException:
            return False

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            files = self._files()
            if not files:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            f = files[0]
            try:
                body = f.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            if self._post(body):
                f.unlink(missing_ok=True)
                self.sent += 1
                k = 0
                continue
            self.failures += 1
            delay = min(0.25 * 2 ** min(k, self.max_backoff_exp), 30.0)
            k += 1
            if k == 1 or k % 10 == 0:
                log.warning("webhook %s unreachable; %d event(s) queued, retrying in %.2fs", self.url, len(files), delay)
            self._stop.wait(delay)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the queue to drain; True when empty."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self._files():
                return True
            self._wake.set()
            time.sleep(0.05)
        return not self._files()

    def close(self) -> None:
        if self._stop.is_set():
            return
        if not self.flush(self.drain_timeout):
            log.error("webhook %s: %d event(s) not delivered yet; kept in %s and resent next time",
                      self.url, self.pending, self.queue_dir)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.timeout + 1)
        self._session.close()
