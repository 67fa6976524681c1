"""The live view (pockit.sinks.live): the annotated stream as MJPEG over HTTP while a run goes."""
import importlib.util
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

import pockit
from pockit.config import LiveConfig, parse_config
from pockit.core import Detections, Frame
from pockit.sinks.draw import jpeg_bytes
from pockit.sinks.live import LiveBoard, LivePublisher, LiveServer, board_name, serving

ZONE_RULES = [{"name": "yard", "type": "zone_enter", "zone": [[200, 0], [320, 0], [320, 240], [200, 240]],
               "zone_name": "yard area"},
              {"name": "gate", "type": "line_crossing", "line": [[100, 0], [100, 240]], "line_name": "gate"}]


def open_stream(port: int, source: str, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /stream/{source}.mjpg HTTP/1.0\r\n\r\n".encode())
    s.settimeout(20)
    return s


class PartReader:
    """Reads a multipart/x-mixed-replace response part by part, checking every header on the way."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""
        head = self._until(b"\r\n\r\n").decode()
        assert head.startswith("HTTP/1.0 200"), head
        assert "Content-Type: multipart/x-mixed-replace; boundary=pockitframe" in head, head

    def _until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        out, self.buf = self.buf.split(sep, 1)
        return out

    def part(self) -> bytes:
        head = self._until(b"\r\n\r\n").decode()
        lines = head.strip().split("\r\n")
        assert lines[0] == "--pockitframe" and lines[1] == "Content-Type: image/jpeg", lines
        n = int(lines[2].split(":")[1])
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed inside a part")
            self.buf += chunk
        body, rest = self.buf[:n], self.buf[n:]
        assert rest[:2] == b"\r\n"
        self.buf = rest[2:]
        return body


def wait_for(cond, timeout=10.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def person(x: int, tid: int = 1) -> Detections:
    return Detections(xyxy=[[x, 100, x + 20, 200]], track_ids=[tid], class_ids=[0], class_names={0: "person"})


def test_mjpeg_stream_serves_changing_frames_with_the_zone_count_drawn():
    from pockit.rules import RuleEngine

    eng = RuleEngine(ZONE_RULES, "cam", frame_size=(320, 240))
    with LiveServer(["cam"], port=0) as srv:
        pub = LivePublisher(LiveConfig(port=srv.port, fps=1000, quality=100), "cam", ZONE_RULES, {0: "person"})
        img = np.full((240, 320, 3), 60, np.uint8)
        reader = PartReader(open_stream(srv.port, "cam"))
        wait_for(lambda: srv.hub.sources["cam"].board.watchers == 1, what="the client to be counted as watching")
        got = []
        for i, x in enumerate([40, 230]):  # anchor x = 50 (outside the yard), then 240 (inside)
            fr, d = Frame(img, i, i / 10, "cam"), person(x)
            eng.update(fr, d, fr.timestamp, i)
            assert pub.publish(fr, d, eng) is True
            got.append((reader.part(), fr, d))
        frames = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b, _, _ in got]
        assert all(f is not None and f.shape == (240, 320, 3) for f in frames)
        assert np.abs(frames[0].astype(int) - frames[1]).mean() > 1.0  # the person moved: different pictures
        # the count written after the zone's name is the true one: the served JPEG is byte for byte the picture
        # drawn with "yard area: 1" (the person's feet are inside), not the one with "yard area: 0" or 2
        served = {n: jpeg_bytes(pub.render(got[1][1], got[1][2], eng, {"yard": n}), 100) for n in (0, 1, 2)}
        assert got[1][0] == served[1] and served[0] != served[1] != served[2]
        # the zone's label (whole 16-px JPEG blocks, right of the line's "gate in:0 out:N" label and far from the person)
        label = (slice(0, 32), slice(224, 320))  # (a 16-px margin: chroma upsampling bleeds across blocks)
        a, b = (cv2.imdecode(np.frombuffer(served[n], np.uint8), cv2.IMREAD_COLOR) for n in (0, 1))
        assert np.abs(a[label].astype(int) - b[label]).mean() > 2 * np.abs(a.astype(int) - b).mean()
        # and the first frame (feet outside) said "yard area: 0" there
        assert (frames[0][label] == a[label]).all() and not (frames[0][label] == b[label]).all()
        counts = json.loads(urllib.request.urlopen(srv.url + "counts.json", timeout=10).read())
        assert counts["cam"]["zones"] == {"yard area": 1} and counts["cam"]["objects"] == 1
        assert counts["cam"]["frame"] == 1 and counts["cam"]["encoded"] == 2
        assert urllib.request.urlopen(srv.url + "frame/cam.jpg", timeout=10).read() == got[1][0]
        assert srv.clients() == [{"source": "cam", "peer": "127.0.0.1", "connected": True, "sent": 2, "dropped": 0}]
        reader.sock.close()
        wait_for(lambda: not srv.clients()[0]["connected"], what="the hang-up to be noticed")
        # nobody left: the stream client is gone, the /frame request above keeps frames coming for 3 s only
        wait_for(lambda: srv.hub.sources["cam"].board.watchers == 0, timeout=10, what="no more watchers")
        pub.close()


def test_frames_are_encoded_only_while_someone_watches_and_counts_go_on():
    with LiveServer(["cam"], port=0) as srv:
        pub = LivePublisher(LiveConfig(port=srv.port, fps=1000), "cam", ZONE_RULES, {0: "person"})
        img = np.full((240, 320, 3), 60, np.uint8)
        for i, x in enumerate([40, 120, 230]):
            assert pub.publish(Frame(img, i, i / 10, "cam"), person(x)) is False
            time.sleep(0.25)  # counts are published a few times a second
        assert pub.encoded == 0 and pub.frames == 3
        wait_for(lambda: srv.counts()["cam"].get("frame") == 2, what="the counts of frame 2")
        assert srv.counts()["cam"]["zones"] == {"yard area": 1}
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "frame/cam.jpg", timeout=10)
        assert e.value.code == 503 and e.value.read() == b"no frame yet: frames are drawn while someone watches; " \
            b"ask again in a moment\n"
        assert pub.encoded == 0
        # asking for the latest frame counts as watching for a few seconds: the next frame is drawn and served
        wait_for(lambda: srv.hub.sources["cam"].board.watchers == 1, what="the poll to count as watching")
        assert pub.publish(Frame(img, 3, 0.3, "cam"), person(240)) is True and pub.encoded == 1
        wait_for(lambda: srv.hub.latest("cam")[0] == 1, what="the frame at the server")
        jpg = urllib.request.urlopen(srv.url + "frame/cam.jpg", timeout=10).read()
        assert cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "stream/nope.mjpg", timeout=10)
        assert e.value.code == 404 and e.value.read() == b"no source 'nope' in this run (sources: cam)\n"
        page = urllib.request.urlopen(srv.url, timeout=10).read().decode()
        assert '<img src="stream/cam.mjpg"' in page and 'data-source="cam"' in page and "counts.json" in page
        pub.close()


def test_the_last_frames_counts_are_published_at_close():
    with LiveServer(["cam"], port=0) as srv:
        pub = LivePublisher(LiveConfig(port=srv.port), "cam", ZONE_RULES, {0: "person"})
        img = np.full((240, 320, 3), 60, np.uint8)
        for i, x in enumerate([40, 60, 120, 200, 230]):  # within 0.2 s: only frame 0's counts go out at once
            pub.publish(Frame(img, i, i / 10, "cam"), person(x))
        wait_for(lambda: srv.counts()["cam"].get("frame") == 0, what="frame 0's counts")
        assert srv.counts()["cam"]["zones"] == {"yard area": 0}
        pub.close()  # the stream ended: its last counts are not lost
        wait_for(lambda: srv.counts()["cam"].get("frame") == 4, what="the last frame's counts")
        assert srv.counts()["cam"]["zones"] == {"yard area": 1} and pub.encoded == 0


def test_trails_heatmap_and_line_counts_in_the_live_picture():
    from pockit.rules import RuleEngine

    with LiveServer(["cam"], port=0) as srv:
        live = LiveConfig(port=srv.port, fps=1000, trails=10, heatmap=True)
        pub = LivePublisher(live, "cam", ZONE_RULES, {0: "person"})
        eng = RuleEngine(ZONE_RULES, "cam", frame_size=(320, 240))
        img = np.full((240, 320, 3), 60, np.uint8)
        for i in range(12):  # anchor x = 50 + 10 i: crosses the gate at x = 100 between frames 5 and 6
            fr, d = Frame(img, i, i / 10, "cam"), person(40 + 10 * i)
            eng.update(fr, d, fr.timestamp, i)
            pub.publish(fr, d, eng)
            time.sleep(0.21)
        c = srv.counts()["cam"]
        assert c["lines"] == {"gate": {"in": 0, "out": 1}} and c["zones"] == {"yard area": 0}
        pic = pub.render(fr, d, eng, {"yard": 0})
        # the trail: the last 10 anchors (x = 70..160 at y = 200) in track 1's colour (RGB 0,158,115), left of the box
        assert tuple(int(v) for v in pic[200, 120]) != (60, 60, 60)
        # the heatmap: blended where the anchors were, the frame untouched far from them
        assert (pic[5, 5] == 60).all() and (pic[40, 150] == 60).all()
        plain = LivePublisher(LiveConfig(port=srv.port, trails=0), "cam", ZONE_RULES).render(fr, d, eng, {"yard": 0})
        changed = (pic != plain).any(axis=2)
        assert changed[195:206, 50:140].mean() > 0.5  # heatmap + trail along the path
        assert not changed[:150, :140].any()  # above the path: the same picture


def test_a_port_in_use_is_refused_with_the_setting_to_change():
    with LiveServer(["cam"], port=0) as srv:
        with pytest.raises(OSError, match=rf"outputs.live: cannot serve the live view on 127.0.0.1:{srv.port}: "
                                          r"Address already in use \(another run or program listens there: set "
                                          r"outputs.live.port \(0 = any free port\)\)"):
            LiveServer(["cam"], port=srv.port)
        with pytest.raises(OSError, match=r"outputs.live: cannot serve the live view on 192.0.2.1:0: .* \(set "
                                          r"outputs.live.host to an address of this machine"):
            LiveServer(["cam"], host="192.0.2.1", port=0)  # TEST-NET: not an address of this machine
        assert urllib.request.urlopen(srv.url, timeout=10).status == 200  # the first one still serves


def test_board_rejects_torn_records_and_stale_boards_are_replaced():
    name = board_name(1, "cam-test-board")
    stale = LiveBoard(name, 4096, create=True)
    stale.owner = False  # a killed run left it behind
    stale.close()
    b = LiveBoard(name, 4096, create=True)  # replaced, not refused
    try:
        assert b.read() is None
        assert b.write(b"J" * 100, b'{"a": 1}', 1)
        assert b.read() == (1, b"J" * 100, b'{"a": 1}', 1)
        assert not b.write(b"J" * 5000, b"", 2)  # does not fit: refused, the last record stays
        assert b.read()[0] == 1
        off = 24 + (1 % 2) * b.slot + 20
        b.shm.buf[off] = ord("X")  # a record changed under the reader (CRC mismatch): not returned
        assert b.read(tries=2) is None
        other = LiveBoard(name)  # a publisher attaches by name
        assert other.slot == b.slot and not other.owner
        other.close()
    finally:
        b.close()
    with pytest.raises(FileNotFoundError):
        LiveBoard(name)


def _run_cfg(shared_data, tmp_path, live):
    from test_pipeline_sharded import RULES

    return parse_config({
        "name": "live", "sources": [{"id": "stadt", "uri": str(shared_data / "mot" / "TUD-Stadtmitte"),
                                     "max_frames": 100}],
        "model": {"path": "unused.onnx"}, "tracker": {"minimum_consecutive_frames": 1}, "rules": RULES,
        "outputs": {"dir": str(tmp_path), "snapshots": False, "live": live}})


@pytest.fixture(scope="module")
def stadt_detector(shared_data):
    from test_pipeline_sharded import GtDetector

    return GtDetector([shared_data / "mot" / "TUD-Stadtmitte"])


def test_a_run_in_a_worker_process_streams_changing_frames(shared_data, tmp_path, stadt_detector):
    cfg = _run_cfg(shared_data, tmp_path, {"port": 0, "fps": 1000})
    parts: list[bytes] = []
    with serving(cfg) as srv:
        assert cfg.outputs.live.port == srv.port != 0  # written back: the worker process finds the board by it
        reader = PartReader(open_stream(srv.port, "stadt"))
        wait_for(lambda: srv.hub.sources["stadt"].board.watchers == 1, what="the watcher")

        def read():
            try:
                while True:
                    parts.append(reader.part())
            except (EOFError, OSError):
                pass

        t = threading.Thread(target=read, daemon=True)
        t.start()
        summary = pockit.run(cfg, run_dir=tmp_path / "run", detector=stadt_detector, progress=False, workers=1)
        assert summary.pipeline["worker_kind"] == "process"
        wait_for(lambda: srv.counts()["stadt"].get("frame") == 99, what="the last frame's counts")
        c = srv.counts()["stadt"]
    t.join(10)
    assert summary.frames == 100 and c["encoded"] == 100 and c["width"] == 640
    assert set(c["zones"]) == {"right_half", "stay"} and set(c["lines"]) == {"centre_line"}
    assert c["lines"]["centre_line"]["in"] + c["lines"]["centre_line"]["out"] == summary.events_per_rule["centre_line"]
    assert len(parts) >= 2
    a, b = (cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in (parts[0], parts[-1]))
    assert a.shape == b.shape == (480, 640, 3) and np.abs(a.astype(int) - b).mean() > 2.0


def test_a_client_that_never_reads_does_not_stall_the_run(shared_data, tmp_path, stadt_detector):
    cfg = _run_cfg(shared_data, tmp_path, {"port": 0, "fps": 1000, "quality": 95})
    with serving(cfg) as srv:
        stuck = open_stream(srv.port, "stadt", rcvbuf=4096)  # asks for the stream, then never reads a byte
        wait_for(lambda: srv.hub.sources["stadt"].board.watchers == 1, what="the watcher")
        t0 = time.monotonic()
        summary = pockit.run(cfg, run_dir=tmp_path / "run", detector=stadt_detector, progress=False, workers=0)
        wall = time.monotonic() - t0
        wait_for(lambda: srv.counts()["stadt"].get("encoded") == 100, what="the last frame")
        client = srv.clients()[0]
    stuck.close()
    assert summary.frames == 100 and summary.errors == []
    assert wall < 60, wall
    # every frame was drawn for the stuck client; it took the first few, the rest were dropped for it alone
    assert client["sent"] + client["dropped"] == 100 and client["dropped"] >= 80, client


def test_serving_is_shared_within_a_process_and_off_without_live(shared_data, tmp_path):
    cfg = _run_cfg(shared_data, tmp_path, {"port": 0})
    with serving(cfg) as a:
        with serving(cfg) as b:
            assert a is b
        assert urllib.request.urlopen(a.url, timeout=10).status == 200  # the inner exit left it running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(a.url, timeout=5)
    cfg.outputs.live = None
    with serving(cfg) as none:
        assert none is None


def test_webrtc_offers_are_checked_and_a_missing_aiortc_is_named(monkeypatch):
    import pockit.sinks.live as live_mod

    def post(url, body, ctype="application/json"):
        req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    with LiveServer(["cam"], port=0) as srv:
        assert post(srv.url + "webrtc/nope", b"{}") == (404, b"no source 'nope' in this run (sources: cam)\n")
        code, text = post(srv.url + "webrtc/cam", b'{"type": "answer", "sdp": "v=0"}')
        assert code == 400 and text.startswith(b"expected a JSON WebRTC offer {sdp, type: 'offer'}: not an offer")
        assert post(srv.url + "webrtc/cam", b"not json")[0] == 400
        page = urllib.request.urlopen(srv.url + "webrtc/cam.html", timeout=10).read().decode()
        assert "RTCPeerConnection({iceServers:[]})" in page  # offline: host candidates only

        def no_aiortc(*a, **k):
            raise ImportError("No module named 'aiortc'")

        monkeypatch.setattr(live_mod, "_WebRTC", no_aiortc)
        assert post(srv.url + "webrtc/cam", b'{"type": "offer", "sdp": "v=0"}') == \
            (501, b"WebRTC needs the aiortc package (pip install aiortc): No module named 'aiortc'\n")
        monkeypatch.undo()
        if importlib.util.find_spec("aiortc") is not None:  # a well-formed request with an SDP aiortc cannot use
            code, text = post(srv.url + "webrtc/cam", b'{"type": "offer", "sdp": "v=0"}')
            assert code == 400 and text.startswith(b"WebRTC offer refused: ")
            wait_for(lambda: srv.hub.sources["cam"].watchers == 0, what="the refused peer to stop watching")
        assert srv.hub.sources["cam"].board.watchers == 0
