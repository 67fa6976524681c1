"""Broker consumers of ``pockit collect``: MQTT (paho-mqtt) and Kafka (confluent-kafka), each feeding a
:class:`~pockit.collect.store.CollectStore` and telling the broker an event was received only once it is on
disk there.

* MQTT: a persistent session (fixed client id, clean session off, QoS 1) with manual acknowledgement: the
  PUBACK of a message is sent after :meth:`CollectStore.accept` returned, so a collector killed before that
  gets the message again from the broker; while the collector is away, the broker keeps its messages for it
  (run the broker with ``persistence true`` so they also survive a broker restart).
* Kafka: the partitions of the topic are assigned directly (no consumer-group rebalancing) from the offsets
  in ``state.json``, saved atomically after the events of a poll are on disk; a restart re-reads at most the
  last poll, whose events the journal drops as duplicates. The topic is created when missing.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .store import CollectStore

log = logging.getLogger(__name__)


class CollectError(RuntimeError):
    """The collector cannot go on (broker refused us, disk full); the message says why."""


class MqttConsumer:
    kind = "mqtt"

    def __init__(self, store: CollectStore, host: str = "127.0.0.1", port: int | None = None,
                 topic: str = "pockit/events", client_id: str = "pockit-collect", qos: int = 1,
                 username: str | None = None, password: str | None = None, tls: bool = False,
                 ca_certs: str | None = None, keepalive: int = 30) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as e:
            raise ImportError("pockit collect --mqtt needs paho-mqtt: pip install 'pockit[sinks]'") from e
        if qos not in (1, 2):
            raise ValueError(f"collect: qos must be 1 or 2 (acknowledged delivery), got {qos}")
        if not client_id:
            raise ValueError("collect: a fixed --client-id is needed (the broker keeps the session under it)")
        self.store = store
        self.topic = topic
        self.qos = qos
        self.port = int(port or (8883 if tls else 1883))
        self.target = f"mqtt{'s' if tls else ''}://{host}:{self.port}/{topic}"
        self.failed: BaseException | None = None
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        if username is not None or password is not None:
            self.client.username_pw_set(username or "", password)
        if tls:
            self.client.tls_set(ca_certs=ca_certs or None)
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.connect_async(host, self.port, keepalive=keepalive)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc, props=None) -> None:
        if rc.is_failure:
            log.error("collect %s: the broker refused the connection: %s", self.target, rc)
            return
        client.subscribe(self.topic, qos=self.qos)  # again on every connect: a broker without persistence forgets it
        self.connected.set()
        log.info("collect %s: connected (session present: %s)", self.target, getattr(flags, "session_present", "?"))

    def _on_disconnect(self, client, userdata, flags, rc, props=None) -> None:
        if self.connected.is_set():
            log.warning("collect %s: disconnected (%s); reconnecting", self.target, rc)
        self.connected.clear()

    def _on_message(self, client, userdata, msg) -> None:
        if self.failed is not None:
            return  # not acknowledged: the broker resends it to the next collector
        try:
            self.store.accept(msg.payload, origin=f"mqtt:{msg.topic}")
        except BaseException as e:  # noqa: BLE001 - disk full etc.: stop, unacknowledged
            self.failed = e
            log.error("collect: cannot store a message (%s); stopping without acknowledging it", e)
            return
        client.ack(msg.mid, msg.qos)

    def poll(self, timeout: float) -> None:
        if self.failed is not None:
            raise CollectError(f"storing an event failed: {self.failed}")
        time.sleep(timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class KafkaConsumer:
    kind = "kafka"

    def __init__(self, store: CollectStore, bootstrap: str = "127.0.0.1:9092", topic: str = "pockit-events",
                 partitions: int = 1, username: str | None = None, password: str | None = None,
                 tls: bool = False, ca_certs: str | None = None, batch: int = 100) -> None:
        try:
            import confluent_kafka as ck
            from confluent_kafka.admin import AdminClient
        except ImportError as e:
            raise ImportError("pockit collect --kafka needs confluent-kafka: pip install 'pockit[kafka]'") from e
        self._ck = ck
        self.store = store
        self.topic = topic
        self.partitions = max(1, int(partitions))
        self.batch = int(batch)
        self.target = f"kafka://{bootstrap}/{topic}"
        self.conf = kafka_client_conf(bootstrap, username, password, tls, ca_certs)
        self.admin = AdminClient(dict(self.conf))
        self.consumer = ck.Consumer({**self.conf, "group.id": "pockit-collect", "enable.auto.commit": False,
                                     "enable.auto.offset.store": False, "enable.partition.eof": False})
        st = store.load_state().get("kafka", {})
        self.positions: dict[int, int] = {int(p): int(o) for p, o in (st.get(topic) or {}).items()}
        self.assigned: set[int] = set()
        self._next_check = 0.0

    def _ensure_assigned(self) -> None:
        """Assign every partition of the topic (created when missing) at its saved offset."""
        if time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + 10.0
        ck = self._ck
        try:
            md = self.admin.list_topics(self.topic, timeout=5)
            t = md.topics.get(self.topic)
            if t is None or t.error is not None:
                from confluent_kafka.admin import NewTopic

                fut = self.admin.create_topics([NewTopic(self.topic, self.partitions, 1)])[self.topic]
                try:
                    fut.result(10)
                    log.info("collect: created topic %s with %d partition(s)", self.topic, self.partitions)
                except ck.KafkaException as e:
                    if e.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
                md = self.admin.list_topics(self.topic, timeout=5)
                t = md.topics[self.topic]
            parts = sorted(t.partitions)
        except ck.KafkaException as e:
            self._next_check = time.monotonic() + 1.0
            log.warning("collect %s: broker not reachable (%s); retrying", self.target, e)
            return
        new = [p for p in parts if p not in self.assigned]
        if new:
            self.consumer.incremental_assign([ck.TopicPartition(self.topic, p, self.positions.get(p, ck.OFFSET_BEGINNING))
                                              for p in new])
            self.assigned.update(new)
            log.info("collect %s: reading partition(s) %s from %s", self.target, new,
                     {p: self.positions.get(p, "the start") for p in new})

    def poll(self, timeout: float) -> None:
        self._ensure_assigned()
        if not self.assigned:
            time.sleep(timeout)
            return
        msgs = self.consumer.consume(num_messages=self.batch, timeout=timeout)
        moved = False
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != self._ck.KafkaError._PARTITION_EOF:
                    log.warning("collect %s: %s", self.target, err)
                continue
            try:
                self.store.accept(m.value() or b"", origin=f"kafka:{m.topic()}/{m.partition()}@{m.offset()}")
            except OSError as e:  # disk full etc.: stop; the offset is not saved, the record is read again
                raise CollectError(f"storing an event failed: {e}") from e
            self.positions[m.partition()] = m.offset() + 1
            moved = True
        if moved:  # after the events are on disk: a crash before this re-reads them, the journal drops them
            self.store.save_state({"kafka": {self.topic: {str(p): o for p, o in sorted(self.positions.items())}}})

    def close(self) -> None:
        self.consumer.close()


def kafka_client_conf(bootstrap: str, username: str | None = None, password: str | None = None,
                      tls: bool = False, ca_certs: str | None = None) -> dict[str, Any]:
    """librdkafka settings shared by the Kafka sink and the collector: SASL/PLAIN when a user is given,
    TLS when asked (``ca_certs`` = the CA bundle)."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap,  # librdkafka's log lines go to Python logging
                            "logger": logging.getLogger("pockit.kafka.librdkafka")}
    if username is not None:
        conf.update({"security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                     "sasl.username": username, "sasl.password": password or ""})
    elif tls:
        conf["security.protocol"] = "SSL"
    if tls and ca_certs:
        conf["ssl.ca.location"] = ca_certs
    return conf


def run_collector(store: CollectStore, consumer, stop: threading.Event | None = None,
                  idle_exit: float | None = None, duration: float | None = None,
                  poll: float = 0.2) -> dict[str, Any]:
    """Consume until ``stop`` is set, ``duration`` s passed, or (``idle_exit``) no new event came for that many
    seconds after at least one did; then flush events.jsonl and return the statistics."""
    stop = stop or threading.Event()
    t0 = time.monotonic()
    last_new, seen = t0, len(store.events)
    try:
        while not stop.is_set():
            consumer.poll(poll)
            store.flush()
            n = len(store.events)
            now = time.monotonic()
            if n != seen:
                seen, last_new = n, now
            if duration is not None and now - t0 >= duration:
                break
            if idle_exit is not None and n and now - last_new >= idle_exit:
                break
    finally:
        try:
            consumer.close()
        finally:
            store.close()
    return store.stats()
