"""What one event message between a box and ``pockit collect`` holds (MQTT payload, Kafka record value).

The message is the event's JSON (:meth:`pockit.core.Event.to_dict`), unchanged for any other consumer; with
``snapshots: true`` on the box's mqtt/kafka sink it also carries the event's snapshot JPEG under
:data:`SNAPSHOT_FIELD` (base64), at most ``max_bytes`` before encoding: a larger JPEG is re-encoded at a lower
quality, then smaller, until it fits (:func:`bounded_jpeg`). Event and snapshot travel in one message, so
they are acknowledged, deduplicated and stored together. A snapshot that cannot be read or made to fit is
left out and named in :data:`SNAPSHOT_MISSING_FIELD` (the event still goes).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import Path
from typing import Any

from ..core import Event

log = logging.getLogger(__name__)

SNAPSHOT_FIELD = "snapshot_jpeg_b64"
SNAPSHOT_MISSING_FIELD = "snapshot_missing"
JPEG_MAGIC = b"\xff\xd8\xff"


def bounded_jpeg(data: bytes, max_bytes: int) -> bytes | None:
    """``data`` (a JPEG) if it is at most ``max_bytes``, else the image re-encoded at quality 80, 60, 40, then
    halved in size (quality 60) until it fits; None when it cannot be decoded or does not fit at 64 px."""
    if len(data) <= max_bytes:
        return data
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    for q in (80, 60, 40):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok and buf.nbytes <= max_bytes:
            return buf.tobytes()
    while min(img.shape[:2]) > 64:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 60])
        if ok and buf.nbytes <= max_bytes:
            return buf.tobytes()
    return None


def encode(event: Event, snapshot_root: str | Path | None = None, max_bytes: int = 256 << 10) -> str:
    """The message body of ``event``: its JSON, plus its snapshot when ``snapshot_root`` (the run directory
    ``event.snapshot`` is relative to) is given and the event has one."""
    d: dict[str, Any] = event.to_dict()
    if snapshot_root is None or not event.snapshot:
        return json.dumps(d, ensure_ascii=False)
    path = Path(snapshot_root) / event.snapshot
    try:
        raw = path.read_bytes()
    except OSError as e:
        d[SNAPSHOT_MISSING_FIELD] = f"cannot read {event.snapshot}: {e.strerror or e}"
    else:
        jpg = bounded_jpeg(raw, max_bytes)
        if jpg is None:
            d[SNAPSHOT_MISSING_FIELD] = f"{event.snapshot} ({len(raw)} bytes) cannot be made to fit {max_bytes} bytes"
        else:
            d[SNAPSHOT_FIELD] = base64.b64encode(jpg).decode("ascii")
    if SNAPSHOT_MISSING_FIELD in d:
        log.warning("event %s: snapshot not sent: %s", event.id, d[SNAPSHOT_MISSING_FIELD])
    return json.dumps(d, ensure_ascii=False)


def decode(payload: bytes | str) -> tuple[dict[str, Any], bytes | None]:
    """(event record, snapshot JPEG or None) of a message; ValueError saying what is wrong otherwise."""
    try:
        d = json.loads(payload)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {type(d).__name__}")  # noqa: TRY004 - one error type for callers
    b64 = d.pop(SNAPSHOT_FIELD, None)
    snap = None
    if b64 is not None:
        try:
            snap = base64.b64decode(b64, validate=True) if isinstance(b64, str) else None
        except (binascii.Error, ValueError):
            snap = None
        if snap is None or not snap.startswith(JPEG_MAGIC):
            raise ValueError(f"{SNAPSHOT_FIELD} is not a base64 JPEG")
    ev = Event.from_dict(d)  # validates rule/type/time/bbox; unknown keys land in extra
    if not isinstance(ev.id, str) or not ev.id:
        raise ValueError("event has no id")
    return ev.to_dict(), snap
