"""No alarm lost: the durable delivery queue behind the webhook and MQTT sinks, under receiver and broker faults.

Every test checks the accounting raised = delivered + pending + dead_letter + dropped against what the
receiver actually got and what is on disk.
"""
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pockit.config import OutputConfig, SinkConfig
from pockit.core import Event
from pockit.sinks import WebhookSink, delivery_summary, make_sinks


def ev(i, rule="r", **kw):
    return Event(rule=rule, type="zone_enter", source="cam", time=i * 0.5, frame=i, track_id=i, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counts(d):
    return d["raised"], d["delivered"], d["pending"], d["dead_letter"], d["dropped"]


def wait_until(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class Receiver:
    """A local HTTP receiver: 400 for events whose rule is 'bad', 503 for 'flaky', else 200."""

    def __init__(self, port=None, transient=("flaky",)):
        self.port = port or free_port()
        self.transient = set(transient)
        self.got: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.headers: list[dict] = []
        self.srv = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rec.headers.append(dict(self.headers))
                rec.attempts[body["id"]] = rec.attempts.get(body["id"], 0) + 1
                code = 400 if body["rule"] == "bad" else 503 if body["rule"] in rec.transient else 200
                if code == 200:
                    rec.got.append(body)
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"invalid alarm" if code == 400 else b"")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_a_rejected_event_is_dead_lettered_and_never_blocks_later_ones(tmp_path, receiver):
    receiver.start()
    q = tmp_path / "q"
    sink = WebhookSink(receiver.url, q, timeout=2, retries=3, drain_timeout=5)
    events = [ev(0), ev(1, rule="bad"), ev(2), ev(3), ev(4)]
    for e in events:
        sink.write(e)
    assert sink.flush(10)
    sink.close()
    assert [g["id"] for g in receiver.got] == [events[i].id for i in (0, 2, 3, 4)]
    assert receiver.attempts[events[1].id] == 1  # a permanent rejection is not retried
    dead = json.loads((q / "dead_letter" / f"{events[1].id}.json").read_text())
    assert dead["kind"] == "rejected" and dead["reason"] == "HTTP 400 Bad Request: invalid alarm"
    assert dead["event"] == events[1].to_dict()
    assert list(q.glob("*.json")) == []
    assert counts(sink.delivery()) == (5, 4, 0, 1, 0)
    summary = delivery_summary([sink])
    assert summary["all_delivered"] is False and summary["dead_letter"] == 1
    assert summary["problems"] == [(f"webhook {receiver.url}: 4 of 5 event(s) delivered, 1 dead-letter "
                                    f"(see {q.resolve() / 'dead_letter'})")]


def test_retries_bound_attempts_per_run_and_the_next_run_resends(tmp_path, receiver):
    receiver.start()
    q = tmp_path / "q"
    sink = WebhookSink(receiver.url, q, timeout=2, retries=3, drain_timeout=0, backoff=0.05)
    flaky = ev(0, rule="flaky")
    later = [ev(1), ev(2)]
    for e in [flaky, *later]:
        sink.write(e)
    assert wait_until(lambda: len(receiver.got) == 2 and receiver.attempts.get(flaky.id) == 3)
    time.sleep(0.5)  # no further attempts once `retries` is used up (nothing else succeeds meanwhile)
    assert receiver.attempts[flaky.id] == 3
    sink.close()
    assert [g["id"] for g in receiver.got] == [e.id for e in later]  # the failing head did not block them
    d = sink.delivery()
    assert counts(d) == (3, 2, 1, 0, 0) and d["queue_pending"] == 1 and "HTTP 503" in d["last_error"]
    assert [p.stem for p in q.glob("*.json")] == [flaky.id]
    # the next run (any sink on the same folder) resends it first
    receiver.stop()
    r2 = Receiver(receiver.port, transient=()).start()  # the receiver recovered
    try:
        sink2 = WebhookSink(r2.url, q, timeout=2, retries=3, drain_timeout=5)
        assert sink2.flush(10)
        sink2.close()
    finally:
        r2.stop()
    assert [g["id"] for g in r2.got] == [flaky.id]
    assert sink2.delivery()["resent"] == 1 and counts(sink2.delivery()) == (0, 0, 0, 0, 0)


def test_receiver_down_then_up_loses_nothing(tmp_path, receiver):
    q = tmp_path / "q"
    sink = WebhookSink(receiver.url, q, timeout=0.5, retries=2, drain_timeout=5, backoff=0.05)
    first = [ev(i) for i in range(3)]
    for e in first:
        sink.write(e)
    assert wait_until(lambda: sink.failures >= 2)
    assert sink.pending == 3 and counts(sink.delivery()) == (3, 0, 3, 0, 0)
    receiver.start()  # back up: the waiting events get a new round as soon as another one goes through
    last = ev(3)
    sink.write(last)
    assert sink.flush(15)
    sink.close()
    assert sorted(g["id"] for g in receiver.got) == sorted(e.id for e in [*first, last])
    assert counts(sink.delivery()) == (4, 4, 0, 0, 0)
    assert delivery_summary([sink])["all_delivered"] is True


def test_down_at_close_keeps_the_events_for_the_next_run(tmp_path, receiver):
    q = tmp_path / "q"
    sink = WebhookSink(receiver.url, q, timeout=0.3, retries=2, drain_timeout=0.5, backoff=0.05)
    events = [ev(i) for i in range(4)]
    for e in events:
        sink.write(e)
    t0 = time.monotonic()
    sink.close()
    assert time.monotonic() - t0 < 3  # the close deadline bounds the wait
    d = sink.delivery()
    assert counts(d) == (4, 0, 4, 0, 0) and d["queue_dir"] == str(q.resolve())
    s = delivery_summary([sink])
    assert not s["all_delivered"] and s["pending"] == 4
    assert s["problems"] == [f"webhook {receiver.url}: 0 of 4 event(s) delivered, 4 pending (see {q.resolve()})"]
    receiver.start()
    sink2 = WebhookSink(receiver.url, q, timeout=2, drain_timeout=5)
    sink2.close()  # nothing new: the close pass alone resends the earlier run's events
    assert [g["id"] for g in receiver.got] == [e.id for e in events]  # oldest first
    assert sink2.delivery()["resent"] == 4 and list(q.glob("*.json")) == []


def test_two_runs_sharing_a_queue_folder_lose_nothing(tmp_path, receiver):
    q = tmp_path / "shared"
    a = WebhookSink(receiver.url, q, timeout=0.3, retries=1, drain_timeout=0)
    b = WebhookSink(receiver.url, q, timeout=0.3, retries=1, drain_timeout=0)
    ea, eb = [ev(i) for i in range(5)], [ev(10 + i) for i in range(5)]
    for x, y in zip(ea, eb):
        a.write(x)
        b.write(y)
    assert len(list(q.glob("*.json"))) == 10
    receiver.start()
    a2, b2 = ev(20), ev(21)
    a.write(a2)  # one success re-arms the waiting events in both senders
    b.write(b2)
    assert wait_until(lambda: not list(q.glob("*.json")), 15)
    a.close()
    b.close()
    ids = [g["id"] for g in receiver.got]
    assert sorted(set(ids)) == sorted(e.id for e in [*ea, *eb, a2, b2])
    assert len(ids) == 12  # each file is sent by one sender at a time (flock): no duplicates either
    assert counts(a.delivery()) == (6, 6, 0, 0, 0) and counts(b.delivery()) == (6, 6, 0, 0, 0)


def test_overflow_is_counted_kept_and_reported(tmp_path, receiver):
    q = tmp_path / "q"
    sink = WebhookSink(receiver.url, q, timeout=0.2, retries=1, queue_max=3, drain_timeout=0)
    events = [ev(i) for i in range(5)]
    for e in events:
        sink.write(e)
    sink.close()
    assert sorted(p.stem for p in q.glob("*.json")) == sorted(e.id for e in events[:3])
    assert sorted(p.stem for p in (q / "dead_letter").glob("*.json")) == sorted(e.id for e in events[3:])
    assert counts(sink.delivery()) == (5, 0, 3, 0, 2)
    s = delivery_summary([sink])
    assert s["dropped"] == 2 and not s["all_delivered"]
    assert "2 dropped" in s["problems"][0] and str(q.resolve() / "dead_letter") in s["problems"][0]


def test_default_queue_home_is_shared_by_later_runs(tmp_path, monkeypatch, receiver):
    # relative outputs.dir and run dir (as `pockit run -o` gives): the queue is <outputs.dir>/_delivery/<...>,
    # resolved once, never <run>/<run>/...; a later run of another config sending to the same URL finds it
    monkeypatch.chdir(tmp_path)
    out = OutputConfig(dir="runs", sinks=[SinkConfig(type="webhook", url=receiver.url, timeout=0.2, retries=1,
                                                     drain_timeout=0)])
    (sink,) = make_sinks(out, Path("runs") / "poc-1")
    sink.write(ev(0))
    sink.close()
    home = sink.delivery()["queue_dir"]
    assert Path(home).parent == tmp_path / "runs" / "_delivery" and Path(home).name.startswith("webhook-")
    assert len(list(Path(home).glob("*.json"))) == 1 and not (tmp_path / "runs" / "poc-1" / "runs").exists()
    receiver.start()
    out2 = OutputConfig(dir="runs", sinks=[SinkConfig(type="webhook", url=receiver.url, drain_timeout=5)])
    (sink2,) = make_sinks(out2, Path("runs") / "other-config-1")
    sink2.close()
    assert sink2.delivery()["queue_dir"] == home and sink2.delivery()["resent"] == 1 and len(receiver.got) == 1
    named = make_sinks(OutputConfig(dir="runs", sinks=[SinkConfig(type="webhook", url=receiver.url, name="vms")]),
                       "elsewhere")[0]
    named.close()
    assert named.delivery()["queue_dir"] == str(tmp_path / "runs" / "_delivery" / "vms")


# ------------------------------------------------------------------------------------------ MQTT
def _mosquitto():
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.fail("mosquitto broker binary not found: install the Debian package 'mosquitto'")
    return exe


class Broker:
    def __init__(self, tmp_path, port, extra=""):
        self.exe = _mosquitto()
        self.port = port
        self.conf = tmp_path / f"m{port}.conf"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_until(self._up, 10):
            self.stop()
            pytest.fail(f"mosquitto did not start with {self.conf}")
        return self

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


class Subscriber:
    def __init__(self, port, topic, **auth):
        import paho.mqtt.client as mqtt

        self.got: list[dict] = []
        ok = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if auth:
            self.c.username_pw_set(auth["username"], auth["password"])
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: ok.set()
        self.c.on_message = lambda c, u, m: self.got.append(json.loads(m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ok.wait(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _mqtt_out(tmp_path, port, **kw):
    return OutputConfig(dir=str(tmp_path / "runs"), sinks=[SinkConfig(type="mqtt", port=port, topic="site/ev",
                                                                      timeout=1, **kw)])


@pytest.mark.broker
def test_mqtt_without_any_broker_keeps_every_event_then_resends(tmp_path):
    pytest.importorskip("paho.mqtt.client", reason="pip install 'pockit[sinks]'")
    port = free_port()
    (sink,) = make_sinks(_mqtt_out(tmp_path, port, drain_timeout=0.5, retries=2), tmp_path / "runs" / "a")
    events = [ev(i) for i in range(6)]
    for e in events:
        sink.write(e)
    sink.close()
    d = sink.delivery()
    assert counts(d) == (6, 0, 6, 0, 0) and "not connected" in d["last_error"]
    s = delivery_summary([sink])
    assert not s["all_delivered"] and s["problems"][0].startswith(f"mqtt mqtt://127.0.0.1:{port}/site/ev: 0 of 6")
    broker = Broker(tmp_path, port).start()
    try:
        sub = Subscriber(port, "site/ev")
        (sink2,) = make_sinks(_mqtt_out(tmp_path, port, drain_timeout=10), tmp_path / "runs" / "b")
        assert sink2.flush(15)
        sink2.close()
        assert wait_until(lambda: len(sub.got) >= 6, 5)
        sub.close()
    finally:
        broker.stop()
    assert sorted({g["id"] for g in sub.got}) == sorted(e.id for e in events)
    assert sink2.delivery()["resent"] == 6 and sink2.delivery()["queue_pending"] == 0


@pytest.mark.broker
def test_mqtt_broker_stopped_mid_run(tmp_path):
    pytest.importorskip("paho.mqtt.client", reason="pip install 'pockit[sinks]'")
    port = free_port()
    broker = Broker(tmp_path, port).start()
    try:
        sub = Subscriber(port, "site/ev")
        (sink,) = make_sinks(_mqtt_out(tmp_path, port, drain_timeout=1, retries=2), tmp_path / "runs" / "a")
        before = [ev(i) for i in range(8)]
        for e in before:
            sink.write(e)
        assert sink.flush(10)
        assert wait_until(lambda: len(sub.got) == 8, 5)
        sub.close()
        broker.stop()
        after = [ev(10 + i) for i in range(7)]
        for e in after:
            sink.write(e)
        sink.close()
        assert counts(sink.delivery()) == (15, 8, 7, 0, 0)
        assert not delivery_summary([sink])["all_delivered"]
        broker.start()
        sub = Subscriber(port, "site/ev")
        (sink2,) = make_sinks(_mqtt_out(tmp_path, port, drain_timeout=10), tmp_path / "runs" / "b")
        sink2.close()
        assert wait_until(lambda: len({g["id"] for g in sub.got}) == 7, 5)
        sub.close()
    finally:
        broker.stop()
    assert sorted({g["id"] for g in sub.got}) == sorted(e.id for e in after)
    assert sink2.delivery()["resent"] == 7 and sink2.delivery()["queue_pending"] == 0
