"""HTTP webhook sink: POST each event as JSON through the durable delivery queue (never losing one).

Each event is written to the queue folder (see :mod:`pockit.sinks.delivery`) before ``write`` returns and
removed only after a 2xx answer. HTTP 4xx answers other than 408/429 are permanent rejections: the event
goes to ``dead_letter/`` and later events go on. Connection errors, timeouts, 5xx, 408 and 429 are retried.

Authentication and TLS: ``headers`` (sent with every request), ``token`` (``Authorization: Bearer``),
``username``/``password`` (HTTP basic, or user:password in the URL), ``tls_verify`` (False accepts any
certificate), ``ca_certs`` (a CA bundle to verify the receiver), ``client_cert``/``client_key`` (mutual TLS).
Secrets never appear in logs, dead-letter files or ``delivery()``: the target is shown redacted.
"""
from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests

from ..config import is_secret_key, redact_url
from .delivery import DeliveryQueue, PermanentError, QueuedSink, TransientError

log = logging.getLogger(__name__)


def _scrubber(secrets: list[str]):
    secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for s in secrets:
            text = text.replace(s, "***")
        return text

    return scrub


class WebhookSink(QueuedSink):
    kind = "webhook"

    def __init__(self, url: str, queue_dir: str | Path, timeout: float = 5.0, retries: int = 5,
                 queue_max: int = 10000, headers: dict | None = None, drain_timeout: float | None = None,
                 token: str | None = None, username: str | None = None, password: str | None = None,
                 tls_verify: bool = True, ca_certs: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, backoff: float = 0.25) -> None:
        super().__init__()
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook sink: url must start with http:// or https://, got {redact_url(str(url))!r}")
        parts = urlsplit(url)
        secrets = [token or "", password or "", *(str(v) for v in (headers or {}).values())]
        secrets += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_secret_key(k)]
        if parts.password:  # user:password@ in the URL: sent as basic auth, never logged
            secrets.append(parts.password)
            username = username or parts.username
            password = password or parts.password
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        self.url = url
        self.target = redact_url(url)
        self.timeout = float(timeout)
        self.headers = {"Content-Type": "application/json", **{str(k): str(v) for k, v in (headers or {}).items()}}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._session = requests.Session()
        if username is not None or password is not None:
            self._session.auth = (username or "", password or "")
        self._session.verify = ca_certs if (ca_certs and tls_verify) else bool(tls_verify)
        if client_cert:
            self._session.cert = (client_cert, client_key) if client_key else client_cert
        self.scrub = _scrubber(secrets)
        self.queue = DeliveryQueue(queue_dir, self._send, sink=self.kind, target=self.target, retries=retries,
                                   queue_max=queue_max, deadline=self.timeout * 2 if drain_timeout is None
                                   else drain_timeout, backoff=backoff, scrub=self.scrub)

    def _send(self, body: bytes) -> None:
        try:
            r = self._session.post(self.url, data=body, headers=self.headers, timeout=self.timeout)
        except requests.RequestException as e:
            raise TransientError(f"{type(e).__name__}: {e}", unreachable=True) from None
        if 200 <= r.status_code < 300:
            return
        text = (r.text or "").strip().replace("\n", " ")[:200]
        msg = f"HTTP {r.status_code} {r.reason or ''}".strip() + (f": {text}" if text else "")
        if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
            raise PermanentError(msg)
        raise TransientError(msg)

    # -- QueuedSink ------------------------------------------------------------------------------
    def _close_transport(self) -> None:
        self._session.close()
