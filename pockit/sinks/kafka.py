"""Kafka sink (confluent-kafka, ``pip install pockit[kafka]``): each event is produced as JSON through the
durable delivery queue (:mod:`pockit.sinks.delivery`), the protocol DeepStream's message broker speaks.

An event file leaves the queue only when the broker acknowledged the record (``acks=all``, idempotent
producer); with the broker down, events stay queued on disk, are retried while the run lasts and at
``close()``, and are sent first by the next run. A record the broker refuses for good (too large, invalid
topic, not authorised) goes to ``dead_letter/``. Records are keyed ``<box>/<camera>`` so the events of one
camera stay in order in one partition. Delivery is at-least-once: a consumer may see an event twice after a
retry (``pockit collect`` deduplicates on the box and event id).

Options: ``host``/``port`` (the bootstrap broker; ``host`` may list several ``h1:9092,h2:9092``),
``topic``, ``username``/``password`` (SASL/PLAIN), ``tls`` with ``ca_certs``, ``snapshots``.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from ..core import Event
from .delivery import DeliveryQueue, PermanentError, QueuedSink, TransientError
from .webhook import _scrubber

log = logging.getLogger(__name__)

TOPIC_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def bootstrap_servers(host: str, port: int | None) -> str:
    """``host:port`` (default port 9092), or ``host`` itself when it already lists ``h:p`` entries."""
    if "," in host or (":" in host and not host.startswith("[")):
        return host
    return f"{host}:{int(port or 9092)}"


class KafkaSink(QueuedSink):
    kind = "kafka"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, topic: str = "pockit-events",
                 queue_dir: str | Path | None = None, timeout: float = 5.0, username: str | None = None,
                 password: str | None = None, tls: bool = False, ca_certs: str | None = None,
                 retries: int = 5, queue_max: int = 10000, drain_timeout: float | None = None,
                 backoff: float = 0.25, snapshot_root: str | Path | None = None,
                 snapshot_max_bytes: int = 256 << 10) -> None:
        super().__init__()
        try:
            import confluent_kafka as ck
        except ImportError as e:
            raise ImportError("the kafka sink needs confluent-kafka: pip install 'pockit[kafka]'") from e
        if not topic or len(topic) > 249 or set(topic) - TOPIC_CHARS or topic in (".", ".."):
            raise ValueError(f"kafka sink: topic {topic!r} is not a valid Kafka topic name "
                             "(1-249 of letters, digits, '.', '_', '-')")
        if queue_dir is None:
            raise ValueError("kafka sink: queue_dir is required (make_sinks sets <outputs.dir>/_delivery/<name>)")
        from ..collect.consumers import kafka_client_conf

        self._ck = ck
        self.topic = topic
        self.timeout = float(timeout)
        self.bootstrap = bootstrap_servers(host, port)
        self.target = f"kafka{'s' if tls else ''}://{self.bootstrap}/{topic}"
        self.snapshot_root = Path(snapshot_root) if snapshot_root is not None else None
        self.snapshot_max_bytes = int(snapshot_max_bytes)
        ms = max(1000, int(self.timeout * 1000))
        conf = kafka_client_conf(self.bootstrap, username, password, tls, ca_certs)
        conf.update({"acks": "all", "enable.idempotence": True, "message.timeout.ms": ms,
                     "socket.timeout.ms": ms, "reconnect.backoff.max.ms": 5000, "linger.ms": 0,
                     "error_cb": self._on_error})
        self._conf = conf
        self._fatal: str | None = None
        self.producer = ck.Producer(conf)
        self._lock = threading.Lock()
        self.scrub = _scrubber([password or ""])
        self.queue = DeliveryQueue(queue_dir, self._send, sink=self.kind, target=self.target, retries=retries,
                                   queue_max=queue_max, deadline=self.timeout * 2 if drain_timeout is None
                                   else drain_timeout, backoff=backoff, scrub=self.scrub)

    def _on_error(self, err) -> None:
        if err.fatal():  # an idempotent producer can fail for good: _send makes a new one
            self._fatal = err.str()
        log.debug("kafka %s: %s", self.target, err)

    def _send(self, body: bytes) -> None:
        ck = self._ck
        try:
            d = json.loads(body)
            key = f"{(d.get('extra') or {}).get('box', '')}/{d.get('source', '')}".encode()
        except (ValueError, AttributeError):
            key = None
        result: list = []
        with self._lock:
            if self._fatal is not None:
                log.warning("kafka %s: producer failed for good (%s); starting a new one", self.target, self._fatal)
                self._fatal = None
                self.producer = ck.Producer(self._conf)
            try:
                self.producer.produce(self.topic, value=body, key=key, on_delivery=lambda e, m: result.append(e))
            except BufferError as e:  # librdkafka's local queue is full: the broker has been away a while
                self.producer.poll(0.5)
                raise TransientError(f"producer queue full: {e}", unreachable=True) from None
            except ck.KafkaException as e:
                err = e.args[0]
                if err.code() == ck.KafkaError.MSG_SIZE_TOO_LARGE:
                    raise PermanentError(f"record too large: {err.str()}") from None
                raise TransientError(err.str(), unreachable=True) from None
            # message.timeout.ms bounds the wait: the delivery report comes (ok or failed) within it
            self.producer.flush(self.timeout + 5.0)
        if not result:
            raise TransientError(f"no delivery report from {self.bootstrap} within {self.timeout:g} s",
                                 unreachable=True)
        err = result[0]
        if err is None:
            return
        if err.fatal() or err.code() in (ck.KafkaError.PRODUCER_FENCED, ck.KafkaError.INVALID_PRODUCER_EPOCH,
                                         ck.KafkaError.UNKNOWN_PRODUCER_ID,
                                         ck.KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER):
            # this producer's id/epoch is no longer accepted (seen with a broker that came up after the first
            # sends timed out: every later send was "fenced"); the next attempt starts a new producer
            with self._lock:
                self._fatal = self._fatal or err.str()
        permanent = {ck.KafkaError.MSG_SIZE_TOO_LARGE, ck.KafkaError.INVALID_MSG_SIZE, ck.KafkaError.INVALID_MSG,
                     ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, ck.KafkaError.TOPIC_EXCEPTION,
                     ck.KafkaError.RECORD_LIST_TOO_LARGE}
        if err.code() in permanent:
            raise PermanentError(f"broker refused the record: {err.str()}")
        raise TransientError(f"not delivered: {err.str()}",
                             unreachable=err.code() in (ck.KafkaError._MSG_TIMED_OUT, ck.KafkaError._TRANSPORT,
                                                        ck.KafkaError._ALL_BROKERS_DOWN,
                                                        ck.KafkaError._TIMED_OUT))

    # -- QueuedSink ------------------------------------------------------------------------------
    def _payload(self, event: Event) -> str | bytes:
        from ..collect.wire import encode

        return encode(event, self.snapshot_root, self.snapshot_max_bytes)

    def _close_transport(self) -> None:
        self.producer.flush(1.0)
