"""Live sources: RTSP/HTTP/... streams, USB cameras and GStreamer pipelines.

A reader thread decodes continuously and keeps only the newest ``queue_size`` frames, so a slow
consumer processes fresh frames instead of an ever-growing backlog (``stats['dropped']`` counts the
frames it never saw). When the stream drops, the thread reconnects with exponential backoff and
logs it (``stats['reconnects']``); a frame-size change after a reconnect is logged and ``.size``
follows. Timestamps are monotonic wall-clock seconds since the source was opened; ``Frame.meta
['wall_time']`` is the epoch time (time.time()) at which the frame was read.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from .base import Source, SourceError, log, safe_id
from .gstreamer import gstreamer_available, no_gstreamer_message

_ENV_LOCK = threading.Lock()


class LiveSource(Source):
    """A live stream read by a background thread.

    Options: ``capture_factory`` (callable(uri) -> object with read()/isOpened()/release()/get(),
    replaces OpenCV; used by tests), ``queue_size`` (2), ``drop`` (True: keep the newest frames;
    False: the reader waits for the consumer, nothing is dropped), ``reconnect`` (True),
    ``max_retries`` (None = unlimited reconnect attempts per outage), ``give_up_after`` (300 s of
    continuous outage, None = never), ``backoff_initial`` (0.5 s), ``backoff_max`` (10 s),
    ``max_read_failures`` (failed reads in a row that count as a lost stream, 2),
    ``open_timeout`` / ``read_timeout`` (seconds, FFmpeg backend), ``transport`` (RTSP 'tcp' | 'udp'),
    ``width`` / ``height`` / ``camera_fps`` / ``fourcc`` (camera capture settings).
    """

    live = True
    OPTIONS = {"capture_factory": None, "queue_size": 2, "drop": True, "reconnect": True, "max_retries": None,
               "give_up_after": 300.0, "backoff_initial": 0.5, "backoff_max": 10.0, "max_read_failures": 2,
               "open_timeout": 10.0, "read_timeout": 10.0, "transport": "tcp", "width": None, "height": None,
               "camera_fps": None, "fourcc": None}

    def __init__(self, uri: Any, kind: str = "stream", **kw: Any):
        self.kind = kind
        self._raw_uri = uri
        super().__init__(uri, **kw)
        if self.loop:
            log.warning("%s: loop has no meaning for a live source; ignored", self.uri)
        o = self.options
        if int(o["queue_size"]) < 1:
            raise SourceError(f"{self.uri}: queue_size must be >= 1")
        if o["transport"] not in ("tcp", "udp"):
            raise SourceError(f"{self.uri}: transport must be 'tcp' or 'udp', got {o['transport']!r}")
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: SourceError | None = None
        self._index = 0
        self.size_changes = 0
        self._t0 = time.monotonic()
        cap = self._open_capture()
        if cap is None or not cap.isOpened():
            raise SourceError(self._open_error())
        ok, img = self._read(cap)
        if not ok:
            cap.release()
            raise SourceError(f"{self.uri}: connected, but no frame arrived within {o['read_timeout']} s; check "
                              "that the camera is streaming (open the URL in VLC/ffplay), the stream path and "
                              "credentials, and the codec (H.264/H.265/MJPEG)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps <= 240 else None
        self._set_native_size((img.shape[1], img.shape[0]))
        self._push(img)
        self._thread = threading.Thread(target=self._reader, args=(cap,), name=f"pockit-source-{self.source_id}",
                                        daemon=True)
        self._thread.start()

    # -- opening ------------------------------------------------------------------------------
    def default_id(self) -> str:
        u = self._raw_uri
        if isinstance(u, int) or str(u).isdigit():
            return f"cam{int(u)}"
        s = str(u)
        if s.startswith("/dev/"):
            return safe_id(s.rsplit("/", 1)[-1])
        if self.kind == "gstreamer":
            return safe_id(s.split("!")[0].split()[0] if s.split() else "gst")
        host = s.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
        return safe_id(host.replace(":", "_"))

    def _open_error(self) -> str:
        if self.kind == "camera":
            return (f"camera {self.uri!r} cannot be opened; check it is plugged in (`ls /dev/video*`, "
                    "`v4l2-ctl --list-devices`), not used by another program, and that this user is in the "
                    "'video' group")
        if self.kind == "gstreamer":
            return (f"GStreamer pipeline cannot be opened: {self.uri}; test it with `gst-launch-1.0 <pipeline>` "
                    "(replace appsink with fakesink) and check that the elements exist (`gst-inspect-1.0 <element>`)")
        return (f"{self.uri}: cannot open the stream within {self.options['open_timeout']} s; check the URL and "
                "path, user/password, that the host is reachable from here (ping, firewall, VPN), and that it plays "
                "in VLC or `ffplay`")

    def _open_capture(self):
        o = self.options
        try:
            if o["capture_factory"] is not None:
                return o["capture_factory"](self._raw_uri)
            if self.kind == "gstreamer":
                if not gstreamer_available():
                    raise SourceError(no_gstreamer_message(self.uri))
                return cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)
            if self.kind == "camera":
                dev = int(self._raw_uri) if str(self._raw_uri).isdigit() else str(self._raw_uri)
                api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
                cap = cv2.VideoCapture(dev, api)
                if not cap.isOpened() and api != cv2.CAP_ANY:
                    cap = cv2.VideoCapture(dev, cv2.CAP_ANY)
                if o["fourcc"]:
                    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*str(o["fourcc"])[:4].ljust(4)))
                if o["width"]:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(o["width"]))
                if o["height"]:
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(o["height"]))
                if o["camera_fps"]:
                    cap.set(cv2.CAP_PROP_FPS, float(o["camera_fps"]))
                return cap
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(float(o["open_timeout"]) * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(float(o["read_timeout"]) * 1000)]
            if self.uri.startswith(("rtsp://", "rtsps://")) and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
                with _ENV_LOCK:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{o['transport']}"
                    try:
                        return cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
                    finally:
                        os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
            return cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
        except SourceError:
            raise
        except Exception as e:  # a factory or driver error counts as a failed attempt
            log.debug("%s: open failed: %s", self.uri, e)
            return None

    @staticmethod
    def _read(cap) -> tuple[bool, np.ndarray | None]:
        try:
            ok, img = cap.read()
        except Exception as e:
            log.debug("capture read raised %s", e)
            return False, None
        if not ok or img is None or getattr(img, "size", 0) == 0:
            return False, None
        return True, img

    # -- reader thread ------------------------------------------------------------------------
    def _push(self, img: np.ndarray) -> None:
        ts = time.monotonic() - self._t0
        wall = time.time()
        size = (img.shape[1], img.shape[0])
        with self._cond:
            if size != self.native_size:
                log.warning("%s: frame size changed from %s to %s; continuing with the new size", self.uri,
                            self.native_size, size)
                self.size_changes += 1
                self._set_native_size(size)
            if len(self._queue) >= int(self.options["queue_size"]):
                if self.options["drop"]:
                    self._queue.popleft()
                    self.stats["dropped"] += 1
                else:
                    while len(self._queue) >= int(self.options["queue_size"]) and not self._stop.is_set():
                        self._cond.wait(0.1)
            self._queue.append((img, self._index, ts, wall))
            self._index += 1
            self.stats["read"] += 1
            self._cond.notify_all()

    def _reader(self, cap) -> None:
        o = self.options
        fails = 0
        lost_since: float | None = None
        attempts = 0
        delay = float(o["backoff_initial"])
        try:
            while not self._stop.is_set():
                if cap is None:
                    outage = time.monotonic() - (lost_since or time.monotonic())
                    if o["max_retries"] is not None and attempts >= int(o["max_retries"]) or \
                            o["give_up_after"] is not None and outage > float(o["give_up_after"]):
                        self._error = SourceError(
                            f"{self.uri}: stream lost and not back after {attempts} reconnect attempt(s) in "
                            f"{outage:.1f} s; check the camera, its power and the network (raise options "
                            "give_up_after / max_retries to wait longer)")
                        log.error("%s", self._error)
                        return
                    if self._stop.wait(delay):
                        return
                    attempts += 1
                    delay = min(delay * 2, float(o["backoff_max"]))
                    try:
                        cap = self._open_capture()
                    except SourceError as e:
                        self._error = e
                        return
                    if cap is None or not cap.isOpened():
                        log.info("%s: reconnect attempt %d failed; next in %g s", self.uri, attempts, delay)
                        if cap is not None:
                            cap.release()
                        cap = None
                    continue
                ok, img = self._read(cap)
                if self._stop.is_set():
                    return
                if ok:
                    fails = 0
                    if lost_since is not None:
                        self.stats["reconnects"] += 1
                        log.warning("%s: reconnected after %.1f s (%d attempt(s))", self.uri,
                                    time.monotonic() - lost_since, attempts)
                        lost_since, attempts, delay = None, 0, float(o["backoff_initial"])
                    self._push(img)
                    continue
                fails += 1
                if fails < int(o["max_read_failures"]):
                    continue
                fails = 0
                cap.release()
                cap = None
                if not o["reconnect"]:
                    log.info("%s: stream ended", self.uri)
                    return
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.warning("%s: stream lost; reconnecting (backoff %g-%g s)", self.uri,
                                float(o["backoff_initial"]), float(o["backoff_max"]))
        except Exception as e:  # never die silently
            self._error = SourceError(f"{self.uri}: reader thread failed: {type(e).__name__}: {e}")
            log.exception("%s: reader thread failed", self.uri)
        finally:
            if cap is not None:
                cap.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    # -- consumer -----------------------------------------------------------------------------
    def _frames(self) -> Iterator[tuple[np.ndarray, int, float, dict]]:
        while True:
            with self._cond:
                while not self._queue and not self._done and not self._closed:
                    self._cond.wait(0.5)
                if self._queue:
                    img, index, ts, wall = self._queue.popleft()
                    self._cond.notify_all()
                elif self._closed:
                    return
                else:
                    break
            if ts < self.start:
                self.stats["skipped"] += 1
                continue
            yield img, index, ts, {"wall_time": wall}
        if self._error is not None and not self._closed:
            raise self._error

    def _empty_message(self) -> str:
        return f"{self.uri}: the stream ended without delivering a frame (read {self.stats['read']})"

    @property
    def alive(self) -> bool:
        """The reader thread is running (connected or reconnecting)."""
        return not self._done

    def info(self) -> dict[str, Any]:
        d = super().info()
        d["size_changes"] = self.size_changes
        return d

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        t = getattr(self, "_thread", None)
        if t is not None and t is not threading.current_thread():
            t.join(timeout=float(self.options["read_timeout"]) + 1.0)
            if t.is_alive():
                log.warning("%s: reader thread still blocked in read(); left to finish in the background", self.uri)
