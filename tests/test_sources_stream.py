"""pockit.sources live streams: reader thread, newest-frame queue, reconnect with backoff, size change.

A scripted fake capture (injected with the ``capture_factory`` option) drops and comes back; a real
HTTP MJPEG server on 127.0.0.1 exercises OpenCV's FFmpeg backend end to end.
"""
from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from pockit.sources import LiveSource, SourceError, open_source


def img(i: int, size=(64, 48)) -> np.ndarray:
    w, h = size
    return np.full((h, w, 3), i % 256, np.uint8)


class FakeCapture:
    """Plays a list of frames, then read() fails like a dropped connection; None = cannot connect."""

    def __init__(self, frames, fps=25.0, gate: threading.Event | None = None):
        self.frames = None if frames is None else list(frames)
        self.fps, self.gate, self.released = fps, gate, False

    def isOpened(self):
        return self.frames is not None and not self.released

    def read(self):
        if self.gate is not None:
            self.gate.wait(5)
        if not self.isOpened() or not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


class Script:
    """capture_factory: each call opens the next scripted session (list of frames or None)."""

    def __init__(self, *sessions, then=None):
        self.sessions, self.then, self.calls = list(sessions), then, []

    def __call__(self, uri):
        self.calls.append(uri)
        s = self.sessions.pop(0) if self.sessions else self.then
        return s if isinstance(s, FakeCapture) else FakeCapture(s)


FAST = dict(backoff_initial=0.01, backoff_max=0.02)


def drain(src):
    """All frames until the stream ends; returns (frames, error)."""
    out = []
    try:
        for f in src:
            out.append(f)
    except SourceError as e:
        return out, e
    return out, None


def wait_done(src, timeout=10.0):
    src._thread.join(timeout)
    assert not src.alive


def test_reconnect_after_drop_with_size_change(caplog):
    caplog.set_level(logging.INFO, "pockit.sources")
    script = Script([img(i) for i in range(5)], None, None, [img(10 + i, (80, 60)) for i in range(5)])
    src = open_source("rtsp://cam.local/stream1", capture_factory=script, drop=False, queue_size=4,
                      max_retries=3, **FAST)
    assert (src.kind, src.live, src.total, src.fps, src.size, src.source_id) == \
        ("stream", True, None, 25.0, (64, 48), "cam.local")
    frames, err = drain(src)
    assert [f.index for f in frames] == list(range(10))
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    assert [f.size for f in frames] == [(64, 48)] * 5 + [(80, 60)] * 5
    assert src.size == (80, 60) and src.native_size == (80, 60) and src.size_changes == 1
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts) and ts[0] >= 0
    assert all(isinstance(f.meta["wall_time"], float) for f in frames)
    assert src.stats == {"read": 10, "yielded": 10, "skipped": 0, "corrupt": 0, "dropped": 0, "reconnects": 1}
    # the second outage never recovers: 3 attempts, then a clear error after the last frame
    assert isinstance(err, SourceError) and "stream lost and not back after 3 reconnect attempt(s)" in str(err)
    assert "rtsp://cam.local/stream1" in str(err)
    assert len(script.calls) == 1 + 3 + 3  # first open, 3 attempts to recover, 3 failed ones
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("stream lost; reconnecting" in m for m in msgs) == 2
    assert sum("reconnected after" in m and "(3 attempt(s))" in m for m in msgs) == 1
    assert sum("frame size changed from (64, 48) to (80, 60)" in m for m in msgs) == 1


def test_slow_consumer_gets_newest_frames_and_drops_are_counted():
    """The reader decodes 20 frames before the consumer looks: only the newest 3 remain."""
    script = Script([img(i) for i in range(20)])
    src = open_source("rtsp://cam/s", capture_factory=script, queue_size=3, reconnect=False)
    wait_done(src)
    frames, err = drain(src)
    assert err is None
    assert [f.index for f in frames] == [17, 18, 19]
    assert [int(f.image[0, 0, 0]) for f in frames] == [17, 18, 19]
    assert src.stats == {"read": 20, "yielded": 3, "skipped": 0, "corrupt": 0, "dropped": 17, "reconnects": 0}


def test_slow_consumer_accounting_while_running():
    """Whatever the timing: every frame read is either yielded or counted dropped, in order."""
    gate = threading.Event()
    gate.set()
    frames_in = [img(i) for i in range(60)]
    src = open_source("rtsp://cam/s", capture_factory=Script(FakeCapture(frames_in, gate=gate)), queue_size=2,
                      reconnect=False)
    out = []
    for f in src:
        out.append(f.index)
        time.sleep(0.002)  # slow consumer
    idx = np.array(out)
    assert np.all(np.diff(idx) > 0) and idx[-1] == 59
    assert src.stats["read"] == 60
    assert src.stats["yielded"] + src.stats["dropped"] == 60 == len(out) + src.stats["dropped"]
    assert int(np.sum(np.diff(np.r_[-1, idx]) - 1)) == src.stats["dropped"]


def test_no_drop_mode_delivers_everything():
    src = open_source("rtsp://cam/s", capture_factory=Script([img(i) for i in range(50)]), queue_size=1,
                      drop=False, reconnect=False)
    frames, err = drain(src)
    assert err is None and [f.index for f in frames] == list(range(50))
    assert src.stats["dropped"] == 0 and src.stats["read"] == 50


def test_give_up_after_seconds():
    src = open_source("rtsp://cam/s", capture_factory=Script([img(0), img(1)], then=None), drop=False,
                      max_retries=None, give_up_after=0.05, **FAST)
    frames, err = drain(src)
    assert [f.index for f in frames] == [0, 1]
    assert isinstance(err, SourceError) and "stream lost and not back after" in str(err)


def test_unreachable_at_open():
    with pytest.raises(SourceError, match=r"rtsp://10\.9\.9\.9/x: cannot open the stream .* user/password"):
        open_source("rtsp://10.9.9.9/x", capture_factory=Script(None))
    with pytest.raises(SourceError, match="connected, but no frame arrived"):
        open_source("rtsp://10.9.9.9/x", capture_factory=Script([]))
    with pytest.raises(SourceError, match=r"http://127\.0\.0\.1:1/video\.mjpg: cannot open the stream"):
        open_source("http://127.0.0.1:1/video.mjpg", open_timeout=2)


def test_camera_and_gstreamer_through_factory():
    script = Script([img(i) for i in range(3)])
    src = open_source(0, capture_factory=script, reconnect=False, resize=(32, 24), drop=False)
    assert (src.kind, src.source_id, src.size, src.native_size) == ("camera", "cam0", (32, 24), (64, 48))
    frames, err = drain(src)
    assert err is None and [f.image.shape for f in frames] == [(24, 32, 3)] * 3 and script.calls == [0]
    script = Script([img(i) for i in range(2)])
    src = open_source("gst:videotestsrc ! appsink", capture_factory=script, reconnect=False, drop=False)
    assert src.kind == "gstreamer" and script.calls == ["videotestsrc ! appsink"]
    assert [f.index for f in src] == [0, 1]
    with pytest.raises(SourceError, match="camera '/dev/video7' cannot be opened"):
        open_source("/dev/video7", capture_factory=Script(None))


def test_close_stops_endless_stream():
    class Endless(FakeCapture):
        def read(self):
            time.sleep(0.001)
            return True, img(0)

    src = open_source("rtsp://cam/s", capture_factory=lambda uri: Endless([]))
    got = [f.index for f, _ in zip(src, range(5))]
    assert got == sorted(got) and len(got) == 5
    src.close()
    assert not src._thread.is_alive() and not src.alive
    assert list(src._frames()) == []  # closed: ends quietly, no 'no frames' error


def test_max_frames_and_loop_ignored_on_live(caplog):
    caplog.set_level(logging.WARNING, "pockit.sources")
    src = open_source("rtsp://cam/s", capture_factory=Script([img(i) for i in range(10)]), drop=False,
                      reconnect=False, max_frames=4, loop=True)
    assert [f.index for f in src] == [0, 1, 2, 3] and src.total is None
    assert any("loop has no meaning" in r.getMessage() for r in caplog.records)
    src.close()


# -- a real MJPEG-over-HTTP stream read by OpenCV's FFmpeg backend ---------------------------
class _MJPEGHandler(BaseHTTPRequestHandler):
    plan: list = []  # per connection: (n_frames, (w, h)) or an HTTP error code
    served: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        k = len(self.served)
        step = self.plan[k] if k < len(self.plan) else 404
        self.served.append(step)
        if isinstance(step, int):
            self.send_response(step)
            self.end_headers()
            return
        n, size = step
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(n):
            jpg = cv2.imencode(".jpg", img(20 * i, size))[1].tobytes()
            try:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                                 + jpg + b"\r\n")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.002)


@pytest.fixture()
def mjpeg_server():
    handler = type("H", (_MJPEGHandler,), {"plan": [], "served": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{srv.server_address[1]}/video.mjpg"
    srv.shutdown()
    srv.server_close()


def test_real_http_mjpeg_stream_reconnects(mjpeg_server, caplog):
    caplog.set_level(logging.INFO, "pockit.sources")
    handler, url = mjpeg_server
    # connection 1: 8 frames 64x48, then the server hangs up; 2: HTTP 503; 3: 6 frames 80x60; then 404s
    handler.plan[:] = [(8, (64, 48)), 503, (6, (80, 60))]
    src = open_source(url, drop=False, queue_size=4, max_retries=2, open_timeout=3, read_timeout=3, **FAST)
    assert isinstance(src, LiveSource) and src.size == (64, 48)
    frames, err = drain(src)
    assert [f.index for f in frames] == list(range(14))
    assert [round(f.image.mean() / 20) for f in frames] == list(range(8)) + list(range(6))
    assert [f.size for f in frames] == [(64, 48)] * 8 + [(80, 60)] * 6
    assert src.stats["reconnects"] == 1 and src.stats["read"] == 14 and src.size == (80, 60)
    assert isinstance(err, SourceError) and url in str(err)
    assert handler.served[:3] == [(8, (64, 48)), 503, (6, (80, 60))]
    assert any("frame size changed" in r.getMessage() for r in caplog.records)


def test_probe_live_stream(mjpeg_server):
    from pockit.sources import probe

    handler, url = mjpeg_server
    handler.plan[:] = [(50, (64, 48))]
    p = probe(url)
    assert (p["kind"], p["live"], p["size"], p["frames"], p["duration"], p["id"]) == \
        ("stream", True, (64, 48), None, None, url.split("/")[2].replace(":", "_"))


def test_http_video_file_is_read_as_a_file(tmp_path):
    """An http URL ending in .mp4 is a finite file: file fps/timestamps, .total known, no reader thread."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    w = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(12):
        w.write(img(10 * i))
    w.release()
    handler = functools.partial(type("Q", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                                directory=str(tmp_path))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        src = open_source(f"http://127.0.0.1:{srv.server_address[1]}/clip.mp4", start=0.5)
        assert (src.kind, src.live, src.fps, src.total) == ("video", False, 10.0, 7)
        frames = list(src)
        assert [f.index for f in frames] == list(range(5, 12))
        assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(5, 12)], abs=1e-6)
    finally:
        srv.shutdown()
        srv.server_close()
