"""pockit.sinks: where alarm events go (JSONL, CSV, webhook, MQTT) and how they are drawn.

``make_sinks(OutputConfig, run_dir)`` builds the configured event sinks (each has ``write(event)`` and
``close()``); ``annotate`` draws boxes, zones and lines; ``SnapshotWriter``, ``ClipRecorder`` and
``VideoWriterSink`` write the visual evidence of a run.
"""
from __future__ import annotations

from pathlib import Path

from .draw import ClipRecorder, SnapshotWriter, VideoWriterSink, annotate
from .files import CSV_FIELDS, CsvSink, EventSink, JsonlSink
from .webhook import WebhookSink


def make_sink(sc, run_dir: str | Path) -> EventSink:
    """One sink from a :class:`pockit.config.SinkConfig`; relative paths are inside ``run_dir``."""
    run_dir = Path(run_dir)

    def _p(default: str) -> Path:
        p = Path(sc.path or default)
        return p if p.is_absolute() else run_dir / p

    fsync = bool(getattr(sc, "fsync", False))
    if sc.type == "jsonl":
        return JsonlSink(_p("events.jsonl"), fsync=fsync)
    if sc.type == "csv":
        return CsvSink(_p("events.csv"), fsync=fsync)
    if sc.type == "webhook":
        if not sc.url:
            raise ValueError("outputs.sinks: a webhook sink needs 'url' (http://host:port/path)")
        qd = Path(sc.queue_dir) if sc.queue_dir else run_dir / "webhook_queue"
        return WebhookSink(sc.url, qd if qd.is_absolute() else run_dir / qd, timeout=sc.timeout,
                           retries=sc.retries, queue_max=sc.queue_max)
    if sc.type == "mqtt":
        from .mqtt import MqttSink

        return MqttSink(sc.host, sc.port, sc.topic, timeout=sc.timeout)
    raise ValueError(f"outputs.sinks: sink type {sc.type!r} is not supported by this pockit version; "
                     "use jsonl, csv, webhook or mqtt")


def make_sinks(outputs, run_dir: str | Path) -> list[EventSink]:
    """All sinks of an :class:`pockit.config.OutputConfig` (closes the ones opened if one fails)."""
    sinks: list[EventSink] = []
    try:
        for sc in outputs.sinks:
            sinks.append(make_sink(sc, run_dir))
    except Exception:
        for s in sinks:
            s.close()
        raise
    return sinks


__all__ = ["CSV_FIELDS", "ClipRecorder", "CsvSink", "EventSink", "JsonlSink", "SnapshotWriter",
           "VideoWriterSink", "WebhookSink", "annotate", "make_sink", "make_sinks"]
