"""MQTT sink (paho-mqtt, ``pip install pockit[sinks]``): each event is published as JSON with QoS 1.

paho keeps QoS-1 messages queued while the broker is unreachable and resends them on reconnection;
``close()`` waits up to ``timeout`` seconds for every message to be acknowledged.
"""
from __future__ import annotations

import logging
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
        self._infos = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)
        self.client.connect_async(host, int(port or 1883), keepalive=30)
        self.client.loop_start()

    def write(self, event: Event) -> None:
        info = self.client.publish(self.topic, event.to_json(), qos=self.qos)
        self._infos.append(info)
        self._infos = [i for i in self._infos if not i.is_published()]

    def close(self) -> None:
        end = time.monotonic() + self.timeout
        while self._infos and time.monotonic() < end:
            self._infos = [i for i in self._infos if not i.is_published()]
            time.sleep(0.02)
        if self._infos:
            log.error("mqtt: %d event(s) not acknowledged by the broker within %.1fs", len(self._infos), self.timeout)
        self.client.loop_stop()
        self.client.disconnect()
