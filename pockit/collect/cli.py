"""``pockit collect``: one events.jsonl (and the snapshots) from the boxes of a PoC, through MQTT or Kafka."""
from __future__ import annotations

import json
import signal
import threading

import click


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    if not host:
        host, port = value, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise click.BadParameter(f"expected HOST or HOST:PORT, got {value!r}") from None


@click.command("collect")
@click.option("--mqtt", "mqtt", metavar="HOST[:PORT]", help="MQTT broker the boxes publish to")
@click.option("--kafka", "kafka", metavar="HOST:PORT[,...]", help="Kafka bootstrap broker(s) the boxes produce to")
@click.option("--topic", help="topic (MQTT default pockit/events, wildcards allowed; Kafka default pockit-events)")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="collection folder: events.jsonl, snapshots/, journal.jsonl, state.json, collect.json")
@click.option("--client-id", default="pockit-collect", show_default=True,
              help="MQTT client id: the broker keeps the collector's session (and its messages) under it")
@click.option("--partitions", default=1, show_default=True, help="Kafka: partitions when the topic is created")
@click.option("--username", help="broker user (MQTT / Kafka SASL PLAIN)")
@click.option("--password", envvar="POCKIT_COLLECT_PASSWORD", help="broker password (or POCKIT_COLLECT_PASSWORD)")
@click.option("--tls", is_flag=True, help="TLS to the broker")
@click.option("--ca-certs", type=click.Path(exists=True, dir_okay=False), help="CA bundle for --tls")
@click.option("--idle-exit", type=float, help="stop after this many seconds without a new event (once one came)")
@click.option("--duration", type=float, help="stop after this many seconds")
def collect_cmd(mqtt, kafka, topic, out, client_id, partitions, username, password, tls, ca_certs, idle_exit,
                duration):
    """Gather the events of every box of a PoC from a broker into one folder (Ctrl-C / SIGTERM stop cleanly).

    Each event is kept once (box id + event id), events.jsonl is ordered by the time the box raised it, and a
    restart resumes where the last run stopped without losing or repeating an event.
    """
    from .consumers import CollectError, KafkaConsumer, MqttConsumer, run_collector
    from .store import CollectStore

    if bool(mqtt) == bool(kafka):
        raise click.UsageError("give exactly one of --mqtt HOST[:PORT] or --kafka HOST:PORT")
    try:
        store = CollectStore(out)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    try:
        if mqtt:
            host, port = _host_port(mqtt, 8883 if tls else 1883)
            consumer = MqttConsumer(store, host, port, topic or "pockit/events", client_id=client_id,
                                    username=username, password=password, tls=tls, ca_certs=ca_certs)
        else:
            consumer = KafkaConsumer(store, kafka, topic or "pockit-events", partitions=partitions,
                                     username=username, password=password, tls=tls, ca_certs=ca_certs)
    except (ValueError, ImportError) as e:
        store.close()
        raise click.ClickException(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"collecting from {consumer.target} into {out} (resumed with {store.resumed} event(s))", err=True)
    try:
        stats = run_collector(store, consumer, stop, idle_exit=idle_exit, duration=duration)
    except CollectError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(stats, indent=1))
