"""MQTT sink (paho-mqtt, ``pip install pockit[sinks]``): each event is published as JSON with QoS 1.

paho keeps QoS-1 messages queued while the broker is unreachable and resends them on reconnection;
``close()`` waits up to ``timeout`` seconds for every message to be acknowledged.
"""
from __future__ import annotations

import logging
import threading
import time

from ..core import Event
from .files import EventSink

log = logging.getLogger(__name__)


class MqttSink(EventSink):
    def __init__(self, host: str = "127.0.0.1", port: int | None = None, topic: str = "pockit/events",
                 timeout: float = 5.0, qos: int = 1, client_id: str = "") -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as e:
            raise ImportError("the mqtt sink needs paho-mqtt: pip install 'pockit[sinks]' (or paho-mqtt>=2)") from e
        self.topic = topic
        self.qos = qos
        self.timeout = float(timeout)
        self._pending: set[int] = set()
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set() if not rc.is_failure else None
        self.client.on_publish = self._on_publish
        self.client.connect_async(host, int(port or 1883), keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(self.timeout):  # not fatal: QoS-1 messages wait in paho's queue
            log.warning("mqtt: broker %s:%s not reachable yet; events are queued", host, port or 1883)

    def _on_publish(self, client, userdata, mid, rc=None, props=None) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
            else:
                self._acked.add(mid)  # acknowledged before publish() returned

    def write(self, event: Event) -> None:
        info = self.client.publish(self.topic, event.to_json(), qos=self.qos)
        with self._lock:
            if info.mid in self._acked:
                self._acked.discard(info.mid)
            else:
                self._pending.add(info.mid)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        end = time.monotonic() + self.timeout
        while self.pending and time.monotonic() < end:
            time.sleep(0.02)
        if self.pending:
            log.error("mqtt: %d event(s) not acknowledged by the broker within %.1fs", self.pending, self.timeout)
        self.client.loop_stop()
        self.client.disconnect()
