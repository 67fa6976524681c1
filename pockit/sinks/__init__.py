"""pockit.sinks: where alarm events go (JSONL, CSV, webhook, MQTT) and how they are drawn.

``make_sinks(OutputConfig, run_dir)`` builds the configured event sinks (each has ``write(event)``,
``close()`` and ``delivery()``; ``delivery_summary(sinks)`` adds them up for run.json); ``annotate`` draws boxes, zones and lines; ``SnapshotWriter``, ``ClipRecorder`` and
``VideoWriterSink`` write the visual evidence of a run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..config import redact, redact_url
from .delivery import DeliveryQueue, PermanentError, TransientError
from .draw import ClipRecorder, SnapshotWriter, VideoWriterSink, annotate
from .files import CSV_FIELDS, CsvSink, EventSink, JsonlSink, csv_safe
from .webhook import WebhookSink

DELIVERY_DIR = "_delivery"


def queue_home(sc, outputs_dir: str | Path = "runs") -> Path:
    """The delivery queue folder of a webhook/mqtt :class:`pockit.config.SinkConfig` (absolute, resolved once).

    ``queue_dir`` when set (relative = to the working directory), else
    ``<outputs_dir>/_delivery/<name>`` or ``<outputs_dir>/_delivery/<type>-<hash of the target>``: every
    later run of any config sending to the same receiver finds and resends what is left there.
    """
    if sc.queue_dir:
        return Path(sc.queue_dir).expanduser().resolve()
    if sc.name:
        sub = sc.name
    else:
        target = redact_url(sc.url or "") if sc.type == "webhook" else f"{sc.host}:{sc.port or ''}/{sc.topic}"
        sub = f"{sc.type}-{hashlib.sha256(target.encode('utf-8')).hexdigest()[:12]}"
    return (Path(outputs_dir).expanduser() / DELIVERY_DIR / sub).resolve()


def make_sink(sc, run_dir: str | Path, outputs_dir: str | Path | None = None,
              where: str = "outputs.sinks") -> EventSink:
    """One sink from a :class:`pockit.config.SinkConfig`: jsonl/csv ``path`` relative to ``run_dir``;
    webhook/mqtt queue in :func:`queue_home` (``outputs_dir`` defaults to ``run_dir``'s parent).
    ``${VAR}`` references are expanded here (ConfigError naming ``where`` when a variable is unset)."""
    run_dir = Path(run_dir)
    sc = sc.expanded(where)

    def _p(default: str) -> Path:
        p = Path(sc.path or default)
        return p if p.is_absolute() else run_dir / p

    fsync = bool(getattr(sc, "fsync", False))
    if sc.type == "jsonl":
        return JsonlSink(_p("events.jsonl"), fsync=fsync)
    if sc.type == "csv":
        return CsvSink(_p("events.csv"), fsync=fsync)
    home = queue_home(sc, run_dir.resolve().parent if outputs_dir is None else outputs_dir)
    if sc.type == "webhook":
        if not sc.url:
            raise ValueError(f"{where}: a webhook sink needs 'url' (http://host:port/path)")
        return WebhookSink(sc.url, home, timeout=sc.timeout, retries=sc.retries, queue_max=sc.queue_max,
                           headers=sc.headers, drain_timeout=sc.drain_timeout, token=sc.token,
                           username=sc.username, password=sc.password, tls_verify=sc.tls_verify,
                           ca_certs=sc.ca_certs, client_cert=sc.client_cert, client_key=sc.client_key)
    snap = {"snapshot_root": run_dir if sc.snapshots else None, "snapshot_max_bytes": sc.snapshot_max_kb << 10}
    if sc.type == "mqtt":
        from .mqtt import MqttSink

        return MqttSink(sc.host, sc.port, sc.topic, queue_dir=home, timeout=sc.timeout, qos=sc.qos,
                        client_id=sc.client_id, username=sc.username, password=sc.password, tls=sc.tls,
                        ca_certs=sc.ca_certs, client_cert=sc.client_cert, client_key=sc.client_key,
                        tls_verify=sc.tls_verify, retries=sc.retries, queue_max=sc.queue_max,
                        drain_timeout=sc.drain_timeout, **snap)
    if sc.type == "kafka":
        from .kafka import KafkaSink

        return KafkaSink(sc.host, sc.port, "pockit-events" if sc.topic == "pockit/events" else sc.topic,
                         queue_dir=home, timeout=sc.timeout, username=sc.username, password=sc.password,
                         tls=sc.tls, ca_certs=sc.ca_certs, retries=sc.retries, queue_max=sc.queue_max,
                         drain_timeout=sc.drain_timeout, **snap)
    raise ValueError(f"{where}: sink type {sc.type!r} is not supported by this pockit version; "
                     "use jsonl, csv, webhook, mqtt or kafka")


def make_sinks(outputs, run_dir: str | Path) -> list[EventSink]:
    """All sinks of an :class:`pockit.config.OutputConfig` (closes the ones opened if one fails);
    network sinks queue under ``<outputs.dir>/_delivery/``."""
    sinks: list[EventSink] = []
    try:
        for i, sc in enumerate(outputs.sinks):
            sinks.append(make_sink(sc, run_dir, outputs_dir=outputs.dir, where=f"outputs.sinks[{i}]"))
    except Exception:
        for s in sinks:
            s.close()
        raise
    return sinks


def delivery_summary(sinks) -> dict:
    """What became of the events of a run, per sink (call after every sink is closed)::

        {"sinks": [sink.delivery(), ...], "raised": n, "delivered": n, "pending": n, "dead_letter": n,
         "dropped": n, "all_delivered": bool, "problems": ["webhook https://vms/...: 2 pending in <dir>", ...]}

    ``all_delivered`` is True when every sink delivered every event it was given (raised == delivered).
    """
    rows = [redact(s.delivery()) for s in sinks]
    out: dict = {"sinks": rows}
    for k in ("raised", "delivered", "pending", "dead_letter", "dropped"):
        out[k] = sum(int(r.get(k) or 0) for r in rows)
    problems = []
    for r in rows:
        bits = [f"{r[k]} {k.replace('_', '-')}" for k in ("pending", "dead_letter", "dropped") if r.get(k)]
        if r.get("raised", 0) != r.get("delivered", 0) and not bits:
            bits.append(f"{r['raised'] - r['delivered']} not delivered")
        if bits:
            where = r.get("dead_letter_dir") if r.get("dead_letter") or r.get("dropped") else r.get("queue_dir")
            problems.append(f"{r['sink']} {r['target']}: {r['delivered']} of {r['raised']} event(s) delivered, "
                            + ", ".join(bits) + (f" (see {where})" if where else ""))
    out["all_delivered"] = not problems
    out["problems"] = problems
    return out


__all__ = ["CSV_FIELDS", "ClipRecorder", "CsvSink", "DeliveryQueue", "EventSink", "JsonlSink", "PermanentError",
           "SnapshotWriter", "TransientError", "VideoWriterSink", "WebhookSink", "annotate", "csv_safe",
           "delivery_summary", "make_sink", "make_sinks", "queue_home"]
