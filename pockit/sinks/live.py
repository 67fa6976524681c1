"""The live view: every source's annotated frames as MJPEG over HTTP while a run goes (``outputs.live``).

Three parts, so the pipeline never waits for a viewer:

- :class:`LiveBoard`: one shared-memory block per source (named from the port and the source id), holding the
  latest annotated JPEG and the live counts, double-buffered with a sequence number and a CRC (a reader never
  takes a half-written frame). Worker processes and threads write to it by name.
- :class:`LivePublisher`: used by the stream's worker (:class:`pockit.pipeline.streamwork.StreamProcessor`).
  Every frame it updates the trails, the heatmap and the counts (objects in each zone now, in/out per line);
  it draws and encodes a JPEG only while someone watches that source, at most ``outputs.live.fps`` per second.
- :class:`LiveServer`: in the process that starts the run, a stdlib ``http.server`` in threads: ``/`` lists the
  sources with their live counts, ``/stream/<source>.mjpg`` is the ``multipart/x-mixed-replace`` stream of one
  source, ``/frame/<source>.jpg`` its latest frame, ``/counts.json`` every source's counts. Each client is
  served the newest frame when it is ready for one: a slow client gets fewer frames (counted as dropped for
  it) and never slows another client or the run.

``with serving(cfg) as server:`` around a run starts the server when ``cfg.outputs.live`` is set (port 0 = a
free port, written back into ``cfg`` so the workers find the boards).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import json
import logging
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import shared_memory
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import cv2
import numpy as np

from ..core import Detections, Frame
from .draw import Heatmap, Trails, ZoneCounter, _scale, _text, annotate, jpeg_bytes

log = logging.getLogger(__name__)

MAGIC = b"PKLIVE01"
_HEAD = struct.Struct("<8sQq")  # magic, seq (records written), watchers (set by the server)
_REC = struct.Struct("<IIIQ")  # jpeg bytes, meta bytes, crc32 of both, frames encoded so far
META_MAX = 64 * 1024
BOUNDARY = "pockitframe"
SEND_TIMEOUT_S = 10.0  # a client that takes no bytes for this long is disconnected
CLIENT_SNDBUF = 256 * 1024  # bytes queued per client socket: a slow client holds about one frame, not many
META_EVERY_S = 0.2  # counts are published at most this often when no frame is encoded
ATTACH_RETRY_S = 2.0
STREAMS_ON_INDEX = 4  # the index page shows this many sources as MJPEG streams; more are polled as stills


def board_name(port: int, source_id: str) -> str:
    """The shared-memory name of a source's board for the live server on ``port`` (short: macOS allows 31)."""
    return f"pklive-{int(port)}-{hashlib.sha1(str(source_id).encode('utf-8')).hexdigest()[:12]}"


def slot_bytes(max_width: int) -> int:
    """Room for one record: a JPEG of a square frame ``max_width`` wide (never exceeded in practice) + counts."""
    return int(max_width) * int(max_width) * 3 + _REC.size + META_MAX


class LiveBoard:
    """The latest frame and counts of one source in shared memory: one writer (the publisher), one reader.

    ``create=True`` (the server) makes the block, replacing a stale one left by a killed run; otherwise it
    attaches to an existing one (FileNotFoundError when there is none).
    """

    def __init__(self, name: str, size: int | None = None, create: bool = False) -> None:
        self.name = name
        if create:
            try:
                self.shm = shared_memory.SharedMemory(name=name, create=True, size=int(size))
            except FileExistsError:  # left behind by a run that was killed: the port is ours now
                old = shared_memory.SharedMemory(name=name)
                old.close()
                old.unlink()
                self.shm = shared_memory.SharedMemory(name=name, create=True, size=int(size))
            _HEAD.pack_into(self.shm.buf, 0, MAGIC, 0, 0)
        else:
            self.shm = shared_memory.SharedMemory(name=name)
            if bytes(self.shm.buf[:8]) != MAGIC:
                self.shm.close()
                raise FileNotFoundError(f"{name}: not a pockit live board")
        self.owner = create
        self.slot = (self.shm.size - _HEAD.size) // 2

    # -- header ----------------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        return _HEAD.unpack_from(self.shm.buf, 0)[1]

    @property
    def watchers(self) -> int:
        return _HEAD.unpack_from(self.shm.buf, 0)[2]

    def set_watchers(self, n: int) -> None:
        struct.pack_into("<q", self.shm.buf, 16, int(n))

    # -- records ---------------------------------------------------------------------------------
    def write(self, jpeg: bytes, meta: bytes, encoded: int) -> bool:
        """Write a record into the slot not being read and publish it; False when it does not fit."""
        if _REC.size + len(jpeg) + len(meta) > self.slot:
            return False
        seq = self.seq
        off = _HEAD.size + ((seq + 1) % 2) * self.slot
        crc = zlib.crc32(meta, zlib.crc32(jpeg))
        _REC.pack_into(self.shm.buf, off, len(jpeg), len(meta), crc, int(encoded))
        p = off + _REC.size
        self.shm.buf[p:p + len(jpeg)] = jpeg
        self.shm.buf[p + len(jpeg):p + len(jpeg) + len(meta)] = meta
        struct.pack_into("<Q", self.shm.buf, 8, seq + 1)
        return True

    def read(self, tries: int = 5) -> tuple[int, bytes, bytes, int] | None:
        """The latest record ``(seq, jpeg, meta, frames encoded)``, or None before the first one. The copy is
        checked: taken while the writer did not move past it, and its CRC matches."""
        for _ in range(tries):
            seq = self.seq
            if seq == 0:
                return None
            off = _HEAD.size + (seq % 2) * self.slot
            nj, nm, crc, encoded = _REC.unpack_from(self.shm.buf, off)
            p = off + _REC.size
            if nj + nm + _REC.size <= self.slot:
                jpeg = bytes(self.shm.buf[p:p + nj])
                meta = bytes(self.shm.buf[p + nj:p + nj + nm])
                if self.seq == seq and zlib.crc32(meta, zlib.crc32(jpeg)) == crc:
                    return seq, jpeg, meta, encoded
            time.sleep(0.001)
        return None

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # a view still exported: the mapping goes with the process
            self.shm.close()
        if self.owner:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()


# ---------------------------------------------------------------------------------------------- publisher
class LivePublisher:
    """A stream's side of the live view (``publish(frame, dets, engine)`` once per frame, ``close()`` at the end).

    ``live``: the :class:`pockit.config.LiveConfig`; ``rules``: the stream's rule configs (for the zones and
    lines counted); ``class_names``: the model's classes. Nothing is drawn or encoded while nobody watches the
    source; the counts are still published (a few times a second) for the index page.
    """

    def __init__(self, live, source_id: str, rules: Iterable = (), class_names: Mapping[int, str] | None = None) -> None:
        self.cfg = live
        self.source_id = str(source_id)
        self.name = board_name(live.port, source_id)
        rules = list(rules)
        self.zones = ZoneCounter(rules, class_names)
        self.lines = {}
        for r in rules:
            d = r if isinstance(r, Mapping) else r.model_dump()
            if d.get("type") in ("line_crossing", "fence_crossing") and d.get("enabled", True):
                self.lines[d["name"]] = d.get("line_name") or d["name"]
        self.trails = Trails(live.trails) if live.trails >= 2 else None
        self.heatmap = Heatmap(live.heatmap_half_life) if live.heatmap else None
        self.board: LiveBoard | None = None
        self._next_attach = 0.0
        self._warned = False
        self._last_frame = -1e18
        self._last_meta = -1e18
        self.frames = 0  # frames seen
        self.encoded = 0  # frames drawn and encoded (someone watched)
        self.too_big = 0
        self.errors = 0
        self._pending: tuple | None = None

    def _attach(self) -> LiveBoard | None:
        if self.board is None:
            now = time.monotonic()
            if now < self._next_attach:
                return None
            self._next_attach = now + ATTACH_RETRY_S
            try:
                self.board = LiveBoard(self.name)
            except FileNotFoundError:
                if not self._warned:
                    self._warned = True
                    log.warning("outputs.live is set but no live server serves port %s for source %s: `pockit "
                                "run`/`pockit demo` start it; from Python, run inside `with "
                                "pockit.sinks.live.serving(cfg):` or use pockit.notebook.display.run_live",
                                self.cfg.port, self.source_id)
                return None
        return self.board

    def counts(self, dets: Detections | None, size: tuple[int, int], engine=None) -> dict[str, Any]:
        """Objects in each zone now (by zone name), in/out per line (by line name), tracked objects now."""
        occ = self.zones.count(dets, size)
        zones: dict[str, int] = {}
        for rule, n in occ.items():
            zn = self.zones.names[rule]
            zones[zn if zn not in zones or zones[zn] == n else f"{zn} ({rule})"] = n
        lines = {}
        if engine is not None and self.lines:
            c = engine.counts
            for rule, ln in self.lines.items():
                rc = c.get(rule, {})
                lines[ln] = {"in": int(rc.get("in", 0)), "out": int(rc.get("out", 0))}
        tracked = int((dets.track_ids >= 0).sum()) if dets is not None and len(dets) else 0
        return {"occupancy": occ, "zones": zones, "lines": lines, "objects": tracked}

    def render(self, frame: Frame, dets: Detections | None, engine=None, occupancy: Mapping[str, int] | None = None
               ) -> np.ndarray:
        """The live picture: heatmap, zones with their counts, lines with in/out, trails, boxes, a header line."""
        img = annotate(frame.image, dets, engine, occupancy=occupancy, trails=self.trails, heatmap=self.heatmap)
        s = _scale(img)
        _text(img, f"{self.source_id}  frame {frame.index}  t={frame.timestamp:.1f}s", (8, img.shape[0] - int(10 * s)),
              (255, 255, 255), 0.5 * s)
        w = img.shape[1]
        if w > self.cfg.max_width:
            h = round(img.shape[0] * self.cfg.max_width / w)
            img = cv2.resize(img, (self.cfg.max_width, h), interpolation=cv2.INTER_AREA)
        return img

    def publish(self, frame: Frame, dets: Detections | None, engine=None) -> bool:
        """One frame: update trails/heatmap; publish counts, and a JPEG while watched. True when a frame was sent.
        A failure here is logged (once) and never stops the stream's analysis."""
        try:
            return self._publish(frame, dets, engine)
        except Exception as e:  # noqa: BLE001 - the live view is a convenience, the run's results come first
            self.errors += 1
            if self.errors == 1:
                log.error("live view of %s failed on frame %d (the run goes on): %s: %s", self.source_id,
                          frame.index, type(e).__name__, e)
            return False

    def _publish(self, frame: Frame, dets: Detections | None, engine) -> bool:
        self.frames += 1
        size = frame.size
        if self.trails is not None:
            self.trails.update(dets, frame.timestamp, size)
        if self.heatmap is not None:
            self.heatmap.update(dets, size, frame.timestamp)
        board = self._attach()
        if board is None:
            return False
        now = time.monotonic()
        send_frame = board.watchers > 0 and now - self._last_frame >= 1.0 / self.cfg.fps
        if not send_frame and now - self._last_meta < META_EVERY_S:
            self._pending = (frame.index, frame.timestamp, size, dets, engine)  # counts sent later or at close
            return False
        self._pending = None
        c = self.counts(dets, size, engine)
        jpeg = b""
        if send_frame:
            img = self.render(frame, dets, engine, c["occupancy"])
            jpeg = jpeg_bytes(img, self.cfg.quality)
            if _REC.size + len(jpeg) + META_MAX > board.slot:
                jpeg = jpeg_bytes(img, 40)
            self.encoded += 1
            self._last_frame = now
        if not board.write(jpeg, self._meta(frame.index, frame.timestamp, size, c), self.encoded):
            self.too_big += 1
            if self.too_big == 1:
                log.warning("live view %s: a %d-byte frame does not fit the board (%d bytes); lower "
                            "outputs.live.max_width or quality", self.source_id, len(jpeg), board.slot)
            return False
        self._last_meta = now
        return bool(jpeg)

    def _meta(self, index: int, timestamp: float, size: tuple[int, int], c: dict[str, Any]) -> bytes:
        meta = {"source": self.source_id, "frame": int(index), "time": round(float(timestamp), 3),
                "width": size[0], "height": size[1], "objects": c["objects"], "zones": c["zones"],
                "lines": c["lines"], "encoded": self.encoded}
        return json.dumps(meta, ensure_ascii=False).encode("utf-8")[:META_MAX]

    def close(self) -> None:
        """Publish the last frame's counts if they were held back (the final line counts), then let go."""
        if self.board is not None:
            if self._pending is not None:
                index, ts, size, dets, engine = self._pending
                with contextlib.suppress(Exception):
                    self.board.write(b"", self._meta(index, ts, size, self.counts(dets, size, engine)), self.encoded)
                self._pending = None
            self.board.close()
            self.board = None


# ---------------------------------------------------------------------------------------------- server side
class _Source:
    def __init__(self, sid: str, board: LiveBoard) -> None:
        self.id, self.board = sid, board
        self.jpeg: bytes | None = None
        self.encoded = 0  # publisher's frame number of self.jpeg
        self.meta: dict[str, Any] = {}
        self.seq = 0
        self.watchers = 0
        self.polled_until = 0.0  # /frame requests keep frames coming until then
        self.cond = threading.Condition()


class LiveHub:
    """The server process's side of the boards: creates them, follows them (a pump thread every ``poll_s``)
    and hands the newest frame to whoever waits for it. ``watch(source, +1/-1)`` tells the publisher whether to
    encode frames."""

    def __init__(self, port: int, sources: Iterable[str], max_width: int = 960, poll_s: float = 0.01) -> None:
        self.port = int(port)
        self.sources: dict[str, _Source] = {}
        try:
            for sid in sources:
                self.sources[str(sid)] = _Source(str(sid), LiveBoard(board_name(port, sid), slot_bytes(max_width) * 2
                                                                     + _HEAD.size, create=True))
        except BaseException:
            self.close()
            raise
        self.poll_s = poll_s
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self._pump = threading.Thread(target=self._run, name="live-pump", daemon=True)
        self._pump.start()

    def _run(self) -> None:
        while not self.closed.wait(self.poll_s):
            now = time.monotonic()
            for src in self.sources.values():
                with self.lock:
                    n = src.watchers + (1 if now < src.polled_until else 0)
                    if src.board.watchers != n:
                        src.board.set_watchers(n)
                if src.board.seq == src.seq:
                    continue
                rec = src.board.read()
                if rec is None:
                    continue
                seq, jpeg, meta, encoded = rec
                with src.cond:
                    src.seq = seq
                    try:
                        src.meta = json.loads(meta) if meta else src.meta
                    except ValueError:
                        pass
                    if jpeg:
                        src.jpeg, src.encoded = jpeg, encoded
                        src.cond.notify_all()

    def watch(self, source: str, delta: int) -> None:
        """A viewer of ``source`` came (+1) or left (-1): frames are drawn while any viewer is there."""
        src = self.sources[source]
        with self.lock:
            src.watchers = max(0, src.watchers + delta)
            if not self.closed.is_set():
                src.board.set_watchers(src.watchers + (1 if time.monotonic() < src.polled_until else 0))

    def poll(self, source: str, seconds: float = 3.0) -> None:
        """Someone asked for the latest frame: keep drawing frames of ``source`` for ``seconds`` more."""
        src = self.sources[source]
        with self.lock:
            src.polled_until = time.monotonic() + seconds
            if not self.closed.is_set():
                src.board.set_watchers(src.watchers + 1)

    def wait_frame(self, source: str, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame with a frame number above ``after``, waiting up to ``timeout`` s; None if none came."""
        src = self.sources[source]
        with src.cond:
            if src.encoded <= after or src.jpeg is None:
                src.cond.wait(timeout)
            if src.encoded > after and src.jpeg is not None:
                return src.encoded, src.jpeg
        return None

    def latest(self, source: str) -> tuple[int, bytes | None, dict[str, Any]]:
        src = self.sources[source]
        with src.cond:
            return src.encoded, src.jpeg, dict(src.meta)

    def close(self) -> None:
        closed = getattr(self, "closed", None)
        if closed is not None:
            with self.lock:  # watch()/poll() write to the boards under this lock: none is half-way now
                closed.set()
            self._pump.join(2)
        for src in self.sources.values():
            with src.cond:
                src.cond.notify_all()
            src.board.close()


class _Client:
    def __init__(self, source: str, peer: str, start: int) -> None:
        self.source, self.peer, self.start = source, peer, start
        self.sent = 0
        self.last = start  # frame number of the last frame sent (or the newest one at connect)
        self.connected = True
        self.sock: socket.socket | None = None


class LiveServer:
    """HTTP server of the live view for ``sources`` (ids), on ``host:port`` (port 0 = a free one; ``.port``
    says which). ``close()`` stops it and disconnects every client. ``clients()`` lists every stream client
    with its frames sent and dropped."""

    def __init__(self, sources: Iterable[str], host: str = "127.0.0.1", port: int = 8090, max_width: int = 960,
                 title: str = "pockit live", fps: float = 10.0) -> None:
        self.source_ids = [str(s) for s in sources]
        self.fps = float(fps)
        self._webrtc: _WebRTC | None = None
        if len(set(self.source_ids)) != len(self.source_ids):
            raise ValueError(f"live view: duplicate source ids {self.source_ids}")
        self.title = title
        server = self

        class Handler(_Handler):
            live = server

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self.httpd = Server((host, int(port)), Handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                hint = "another run or program listens there: set outputs.live.port (0 = any free port)"
            else:
                hint = "set outputs.live.host to an address of this machine (127.0.0.1 = this machine only)"
            raise OSError(f"outputs.live: cannot serve the live view on {host}:{port}: {e.strerror or e} ({hint})"
                          ) from None
        self.httpd.daemon_threads = True
        self.host = host
        self.port = int(self.httpd.server_address[1])
        try:
            self.hub = LiveHub(self.port, self.source_ids, max_width=max_width)
        except BaseException:
            self.httpd.server_close()
            raise
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="live-http", daemon=True)
        self._thread.start()
        log.info("live view: %s", self.url)

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def stream_url(self, source: str) -> str:
        return f"{self.url}stream/{quote(source, safe='')}.mjpg"

    def clients(self) -> list[dict[str, Any]]:
        """Every stream client so far: source, peer, connected, sent, dropped (frames encoded for its source
        while it was connected that it did not get: it was still busy with an earlier one)."""
        out = []
        with self._lock:
            for c in self._clients:
                newest = self.hub.sources[c.source].encoded if c.connected else c.last
                out.append({"source": c.source, "peer": c.peer, "connected": c.connected, "sent": c.sent,
                            "dropped": max(0, newest - c.start - c.sent)})
        return out

    def counts(self) -> dict[str, dict[str, Any]]:
        """Every source's latest counts (zones, lines, objects, frame, time)."""
        return {sid: self.hub.latest(sid)[2] for sid in self.source_ids}

    def webrtc(self) -> _WebRTC:
        """The WebRTC side (started at the first offer); ImportError naming the package when aiortc is missing."""
        with self._lock:
            if self._webrtc is None:
                self._webrtc = _WebRTC(self.hub, self.fps)
            return self._webrtc

    def close(self) -> None:
        self.hub.closed.set()
        if self._webrtc is not None:
            self._webrtc.close()
        self.httpd.shutdown()
        with self._lock:
            socks = [c.sock for c in self._clients if c.connected and c.sock is not None]
        for s in socks:  # a client blocked in send gets an error now, not after SEND_TIMEOUT_S
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.httpd.server_close()
        self.hub.close()
        self._thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    live: LiveServer
    protocol_version = "HTTP/1.0"
    server_version = "pockit-live"

    def log_message(self, fmt, *args) -> None:  # requests go to the debug log, not stderr
        log.debug("live %s: " + fmt, self.address_string(), *args)

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _source(self, path: str, prefix: str, suffix: str) -> str | None:
        sid = unquote(path[len(prefix):-len(suffix)])
        if sid not in self.live.hub.sources:
            known = ", ".join(self.live.source_ids)
            self._send(404, f"no source {sid!r} in this run (sources: {known})\n".encode(), "text/plain; charset=utf-8")
            return None
        return sid

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._send(200, _index_html(self.live).encode("utf-8"), "text/html; charset=utf-8")
            elif path == "/counts.json":
                self._send(200, json.dumps(self.live.counts(), ensure_ascii=False).encode("utf-8"),
                           "application/json")
            elif path.startswith("/stream/") and path.endswith(".mjpg"):
                sid = self._source(path, "/stream/", ".mjpg")
                if sid is not None:
                    self._stream(sid)
            elif path.startswith("/webrtc/") and path.endswith(".html"):
                sid = self._source(path, "/webrtc/", ".html")
                if sid is not None:
                    self._send(200, _WEBRTC_PAGE.replace("{title}", html.escape(f"{self.live.title}: {sid}"))
                               .encode("utf-8"), "text/html; charset=utf-8")
            elif path.startswith("/frame/") and path.endswith(".jpg"):
                sid = self._source(path, "/frame/", ".jpg")
                if sid is not None:
                    self.live.hub.poll(sid)
                    _, jpeg, _ = self.live.hub.latest(sid)
                    if jpeg is None:
                        self._send(503, b"no frame yet: frames are drawn while someone watches; ask again in a "
                                        b"moment\n", "text/plain; charset=utf-8")
                    else:
                        self._send(200, jpeg, "image/jpeg")
            else:
                self._send(404, b"not found: / lists the sources\n", "text/plain; charset=utf-8")
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            pass

    def do_POST(self) -> None:
        """``/webrtc/<source>``: a WebRTC offer (JSON ``{sdp, type}``) in, the answer out (video of the source)."""
        path = urlsplit(self.path).path
        try:
            if not path.startswith("/webrtc/") or path.endswith(".html"):
                self._send(404, b"not found: POST a WebRTC offer to /webrtc/<source>\n", "text/plain; charset=utf-8")
                return
            sid = self._source(path + ".", "/webrtc/", ".")
            if sid is None:
                return
            n = int(self.headers.get("Content-Length") or 0)
            if not 0 < n <= 256 * 1024:
                self._send(400, b"expected a JSON WebRTC offer {sdp, type} of at most 256 kB\n",
                           "text/plain; charset=utf-8")
                return
            try:
                offer = json.loads(self.rfile.read(n))
                if not isinstance(offer, dict) or offer.get("type") != "offer" or not isinstance(offer.get("sdp"), str):
                    raise ValueError("not an offer")
            except ValueError as e:
                self._send(400, f"expected a JSON WebRTC offer {{sdp, type: 'offer'}}: {e}\n".encode(),
                           "text/plain; charset=utf-8")
                return
            try:
                rtc = self.live.webrtc()
            except ImportError as e:
                self._send(501, f"WebRTC needs the aiortc package (pip install aiortc): {e}\n".encode(),
                           "text/plain; charset=utf-8")
                return
            try:
                answer = rtc.answer(sid, offer)
            except Exception as e:  # noqa: BLE001 - a bad offer is the client's problem, told to it
                self._send(400, f"WebRTC offer refused: {type(e).__name__}: {e}\n".encode(), "text/plain; charset=utf-8")
                return
            self._send(200, json.dumps(answer).encode("utf-8"), "application/json")
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            pass

    def _stream(self, sid: str) -> None:
        live, hub = self.live, self.live.hub
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_SNDBUF)
        sock.settimeout(SEND_TIMEOUT_S)
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.wfile.flush()
        c = _Client(sid, self.address_string(), hub.sources[sid].encoded)
        c.sock = sock
        with live._lock:
            live._clients.append(c)
        hub.watch(sid, +1)
        try:
            while not hub.closed.is_set():
                got = hub.wait_frame(sid, c.last, 0.5)
                if got is None:
                    if _peer_closed(sock):  # no frame to write, but the viewer left: stop encoding for it
                        break
                    continue
                n, jpeg = got
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                                 f"\r\n".encode("ascii") + jpeg + b"\r\n")
                self.wfile.flush()
                with live._lock:
                    c.sent += 1
                    c.last = n
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            pass
        finally:
            hub.watch(sid, -1)
            with live._lock:
                c.last = max(c.last, hub.sources[sid].encoded)
                c.connected = False


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client hung up (readable with nothing to read); a client may also send bytes, ignored."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        data = sock.recv(4096, socket.MSG_PEEK)
        if not data:
            return True
        sock.recv(len(data))  # bytes a client sends on a stream are ignored
        return False
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _index_html(live: LiveServer) -> str:
    """One card per source. Up to :data:`STREAMS_ON_INDEX` sources, each ``<img>`` is its MJPEG stream; with
    more, the page polls ``frame/<source>.jpg`` instead (a browser opens at most 6 connections per server, and
    every MJPEG stream holds one open)."""
    cards = []
    streams = len(live.source_ids) <= STREAMS_ON_INDEX
    for sid in live.source_ids:
        q = quote(sid, safe="")
        e = html.escape(sid)
        src = f'src="stream/{q}.mjpg"' if streams else f'data-still="frame/{q}.jpg"'
        cards.append(f'<section class="src" data-source="{html.escape(sid, quote=True)}"><h2>{e}</h2>'
                     f'<img {src} alt="live view of {e}">'
                     f'<div class="counts">waiting for the first frame</div>'
                     f'<a href="stream/{q}.mjpg">stream/{html.escape(q)}.mjpg</a> '
                     f'<a href="webrtc/{q}.html">WebRTC</a></section>')
    return _PAGE.replace("{title}", html.escape(live.title)).replace("{cards}", "\n".join(cards))


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body{font-family:system-ui,sans-serif;margin:16px;background:#111;color:#eee}
main{display:flex;flex-wrap:wrap;gap:16px}
.src{background:#222;padding:8px;border-radius:6px;max-width:100%}
.src img{display:block;max-width:min(960px,100%);background:#000;min-width:320px;min-height:180px}
.counts{font-family:ui-monospace,monospace;margin:6px 0;white-space:pre-wrap}
a{color:#8cf;font-size:12px}
#state{color:#aaa}
</style></head><body>
<h1>{title}</h1><p id="state">live</p>
<main>
{cards}
</main>
<script>
function describe(c){
  if(!c||c.frame===undefined) return "waiting for the first frame";
  const parts=["frame "+c.frame+"  t="+c.time+" s  objects now: "+c.objects];
  for(const [z,n] of Object.entries(c.zones||{})) parts.push("zone "+z+": "+n+" inside");
  for(const [l,v] of Object.entries(c.lines||{})) parts.push("line "+l+": in "+v.in+" / out "+v.out);
  return parts.join("\\n");
}
async function tick(){
  try{
    const r=await fetch("counts.json",{cache:"no-store"});
    const all=await r.json();
    for(const s of document.querySelectorAll(".src")){
      s.querySelector(".counts").textContent=describe(all[s.dataset.source]);
    }
    document.getElementById("state").textContent="live";
  }catch(e){document.getElementById("state").textContent="the run has ended (server stopped)";return;}
  setTimeout(tick,1000);
}
function still(img){  // many sources: the latest frame of each, twice a second
  const next=new Image();
  next.onload=()=>{img.src=next.src;setTimeout(()=>still(img),500);};
  next.onerror=()=>setTimeout(()=>still(img),1000);
  next.src=img.dataset.still+"?t="+Date.now();
}
for(const img of document.querySelectorAll("img[data-still]")) still(img);
tick();
</script></body></html>
"""


# ---------------------------------------------------------------------------------------------- WebRTC
class _WebRTC:
    """WebRTC video of the live frames through aiortc (optional: ``pip install aiortc``), for players and pages
    that want a real video stream. Offline: host ICE candidates only (no STUN/TURN server), so it works on the
    same network, not through NAT. Each peer is a viewer of its source while connected; frames are the live
    view's JPEGs, decoded and re-encoded (VP8 or H.264, as the browser offers) by aiortc on the CPU."""

    def __init__(self, hub: LiveHub, fps: float) -> None:
        import asyncio

        import aiortc  # noqa: F401 - ImportError here tells the client what to install

        self.hub, self.fps = hub, fps
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-webrtc", daemon=True)
        self.thread.start()
        self.peers: set = set()

    def answer(self, source: str, offer: dict, timeout: float = 30.0) -> dict:
        import asyncio

        return asyncio.run_coroutine_threadsafe(self._answer(source, offer), self.loop).result(timeout)

    async def _answer(self, source: str, offer: dict) -> dict:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = _hub_track(self.hub, source, self.fps)
        self.peers.add(pc)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop(pc)

        pc.addTrack(track)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await self._drop(pc)
            raise
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    async def _drop(self, pc) -> None:
        if pc in self.peers:
            self.peers.discard(pc)
            for sender in pc.getSenders():
                if sender.track is not None:
                    sender.track.stop()
            await pc.close()

    def close(self) -> None:
        import asyncio

        async def _all() -> None:
            for pc in list(self.peers):
                await self._drop(pc)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _hub_track(hub: LiveHub, source: str, fps: float):
    """An aiortc video track of ``source``'s live frames (a viewer while it is live)."""
    import asyncio
    import fractions

    import av
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class HubTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.last = 0
            self.t0: float | None = None
            self.watching = True
            hub.watch(source, +1)

        async def recv(self):
            while True:
                if self.readyState != "live" or hub.closed.is_set():
                    raise MediaStreamError
                n, jpeg, _ = hub.latest(source)
                if jpeg is not None and n != self.last:
                    break
                await asyncio.sleep(min(0.02, 0.5 / fps))
            self.last = n
            img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            h, w = img.shape[:2]
            if w % 2 or h % 2:  # 4:2:0 video needs even sizes
                img = cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=0)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            now = time.monotonic()
            self.t0 = now if self.t0 is None else self.t0
            frame.pts, frame.time_base = int((now - self.t0) * 90000), fractions.Fraction(1, 90000)
            return frame

        def stop(self) -> None:
            super().stop()
            if self.watching:
                self.watching = False
                hub.watch(source, -1)

    return HubTrack()


_WEBRTC_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{font-family:system-ui,sans-serif;margin:16px;background:#111;color:#eee}
video{max-width:100%;background:#000}#state{color:#aaa}</style></head><body>
<h1>{title}</h1><p id="state">connecting</p><video id="video" autoplay muted playsinline></video>
<script>
async function start(){
  const state=document.getElementById("state"), video=document.getElementById("video");
  const pc=new RTCPeerConnection({iceServers:[]});
  pc.addTransceiver("video",{direction:"recvonly"});
  pc.ontrack=e=>{video.srcObject=e.streams[0]||new MediaStream([e.track]);};
  pc.onconnectionstatechange=()=>{state.textContent="WebRTC: "+pc.connectionState;};
  window.addEventListener("pagehide",()=>pc.close());  // the server stops drawing frames for this viewer
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r=>{if(pc.iceGatheringState==="complete")r();
    else pc.addEventListener("icegatheringstatechange",()=>{if(pc.iceGatheringState==="complete")r();});});
  const name=location.pathname.split("/").pop().replace(/\.html$/,"");
  const res=await fetch(name,{method:"POST",headers:{"Content-Type":"application/json"},
    body:JSON.stringify({sdp:pc.localDescription.sdp,type:pc.localDescription.type})});
  if(!res.ok){state.textContent=await res.text();return;}
  await pc.setRemoteDescription(await res.json());
}
start().catch(e=>{document.getElementById("state").textContent="WebRTC failed: "+e;});
</script></body></html>
"""


# ---------------------------------------------------------------------------------------------- wiring
_running: dict[int, tuple[LiveServer, int]] = {}
_running_lock = threading.Lock()


@contextlib.contextmanager
def serving(cfg, live=None):
    """Serve the live view of a run of ``cfg`` (a :class:`pockit.config.PocConfig`) while the block runs.

    ``live``: a :class:`pockit.config.LiveConfig` to use (and set as ``cfg.outputs.live``); default
    ``cfg.outputs.live``; when both are None nothing is served (yields None). Port 0 picks a free port and
    writes it into ``cfg.outputs.live.port`` (the workers find the boards by it). Re-entrant: a server already
    running in this process on that port is shared.
    """
    if live is not None:
        cfg.outputs.live = live
    live = cfg.outputs.live
    if live is None:
        yield None
        return
    with _running_lock:
        got = _running.get(live.port) if live.port else None
        if got is not None:
            server = got[0]
            _running[live.port] = (server, got[1] + 1)
        else:
            server = LiveServer([s.id for s in cfg.sources], host=live.host, port=live.port,
                                max_width=live.max_width, title=f"pockit live: {cfg.name}", fps=live.fps)
            live.port = server.port
            _running[server.port] = (server, 1)
    try:
        yield server
    finally:
        with _running_lock:
            srv, n = _running[server.port]
            if n > 1:
                _running[server.port] = (srv, n - 1)
            else:
                del _running[server.port]
                server.close()


__all__ = ["LiveBoard", "LiveHub", "LivePublisher", "LiveServer", "board_name", "serving"]
