"""MQTT sink (paho-mqtt 2, ``pip install pockit[sinks]``): each event is published as JSON through the
durable delivery queue (:mod:`pockit.sinks.delivery`).

An event file leaves the queue only when the broker acknowledged the publish (QoS 1 PUBACK / QoS 2 PUBCOMP,
``wait_for_publish``); with the broker down or unreachable, events stay queued on disk, are retried while
the run lasts and at ``close()``, and are sent first by the next run. A payload the broker cannot take (too
large, invalid topic) is a permanent rejection: the event goes to ``dead_letter/``. QoS 1 is
at-least-once: a receiver may see an event twice after a reconnection (deduplicate on the event ``id``).

Options: ``username``/``password``, ``tls`` (with ``ca_certs``, ``client_cert``/``client_key``,
``tls_verify``), ``client_id``, ``qos``.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..core import Event
from .delivery import DeliveryQueue, PermanentError, QueuedSink, TransientError
from .webhook import _scrubber

log = logging.getLogger(__name__)


class MqttSink(QueuedSink):
    kind = "mqtt"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, topic: str = "pockit/events",
                 queue_dir: str | Path | None = None, timeout: float = 5.0, qos: int = 1, client_id: str = "",
                 username: str | None = None, password: str | None = None, tls: bool = False,
                 ca_certs: str | None = None, client_cert: str | None = None, client_key: str | None = None,
                 tls_verify: bool = True, retries: int = 5, queue_max: int = 10000,
                 drain_timeout: float | None = None, backoff: float = 0.25,
                 snapshot_root: str | Path | None = None, snapshot_max_bytes: int = 256 << 10) -> None:
        super().__init__()
        self.snapshot_root = Path(snapshot_root) if snapshot_root is not None else None  # snapshots: true
        self.snapshot_max_bytes = int(snapshot_max_bytes)
        try:
            import paho.mqtt.client as mqtt
        except ImportError as e:
            raise ImportError("the mqtt sink needs paho-mqtt: pip install 'pockit[sinks]' (or paho-mqtt>=2)") from e
        if not topic or any(c in topic for c in "+#\0"):
            raise ValueError(f"mqtt sink: topic {topic!r} is not a topic one can publish to (no + or # wildcards)")
        if queue_dir is None:
            raise ValueError("mqtt sink: queue_dir is required (make_sinks sets <outputs.dir>/_delivery/<name>)")
        if qos not in (0, 1, 2):
            raise ValueError(f"mqtt sink: qos must be 0, 1 or 2, got {qos!r}")
        self._mqtt = mqtt
        self.host = host
        self.port = int(port or (8883 if tls else 1883))
        self.topic = topic
        self.qos = int(qos)
        self.timeout = float(timeout)
        self.target = f"mqtt{'s' if tls else ''}://{host}:{self.port}/{topic}"
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        if username is not None or password is not None:
            self.client.username_pw_set(username or "", password)
        if tls:
            import ssl

            self.client.tls_set(ca_certs=ca_certs or None, certfile=client_cert or None, keyfile=client_key or None,
                                cert_reqs=ssl.CERT_REQUIRED if tls_verify else ssl.CERT_NONE)
            if not tls_verify:
                self.client.tls_insecure_set(True)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self._connected.clear()
        self.scrub = _scrubber([password or ""])
        try:
            self.client.connect_async(host, self.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise ValueError(f"mqtt sink: cannot connect to {host}:{self.port}: {e}") from None
        self.client.loop_start()
        self.queue = DeliveryQueue(queue_dir, self._send, sink=self.kind, target=self.target, retries=retries,
                                   queue_max=queue_max, deadline=self.timeout * 2 if drain_timeout is None
                                   else drain_timeout, backoff=backoff, scrub=self.scrub)

    def _on_connect(self, client, userdata, flags, rc, props=None) -> None:
        if rc.is_failure:
            log.error("mqtt %s: the broker refused the connection: %s", self.target, rc)
            self._connected.clear()
        else:
            self._connected.set()

    def _send(self, body: bytes) -> None:
        if not self._connected.is_set():
            raise TransientError(f"broker {self.host}:{self.port} not connected", unreachable=True)
        try:
            info = self.client.publish(self.topic, body, qos=self.qos)
        except ValueError as e:  # payload too large, bad topic
            raise PermanentError(f"publish refused: {e}") from None
        mqtt = self._mqtt
        if info.rc == mqtt.MQTT_ERR_PAYLOAD_SIZE:
            raise PermanentError("payload too large for MQTT")
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            raise TransientError(f"broker {self.host}:{self.port} not connected", unreachable=True)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as e:
            raise TransientError(str(e), unreachable=True) from None
        if not info.is_published():
            raise TransientError(f"no acknowledgement from the broker within {self.timeout:g} s", unreachable=True)

    # -- QueuedSink ------------------------------------------------------------------------------
    def _payload(self, event: Event) -> str | bytes:
        from ..collect.wire import encode

        # the event's JSON, plus its snapshot with snapshots: true
        return encode(event, self.snapshot_root, self.snapshot_max_bytes)

    def _close_transport(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
