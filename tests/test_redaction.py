"""Credentials for the webhook/MQTT sinks: ${ENV} references expanded at run time only, sent to the
receiver, and redacted wherever they would be written (config.yaml, run.json dump, logs, delivery())."""
import base64
import json
import logging
import subprocess

import pytest
import yaml
from test_delivery import Broker, Receiver, Subscriber, counts, free_port

from pockit.config import (
    ConfigError,
    OutputConfig,
    SinkConfig,
    load_config,
    parse_config,
    redact,
    redact_url,
)
from pockit.core import Event
from pockit.sinks import delivery_summary, make_sinks

SECRETS = ("hunter2", "tok-123456", "s3cr3t-header", "urlpass99")


def ev(i):
    return Event(rule="r", type="zone_enter", source="cam", time=float(i), frame=i)


def _cfg(url, **sink):
    return parse_config({"name": "sec", "sources": [{"id": "cam", "uri": "x.mp4"}],
                         "outputs": {"sinks": [{"type": "jsonl"}, {"type": "webhook", "url": url, **sink}]}})


def test_config_dumps_redact_every_secret(tmp_path):
    cfg = _cfg("https://alice:urlpass99@vms.example/hook?api_key=tok-123456&site=3", token="tok-123456",
               password="hunter2", username="alice", headers={"X-Api-Key": "s3cr3t-header", "X-Site": "north"})
    text = cfg.to_yaml(tmp_path / "config.yaml")
    dump = json.dumps(cfg.redacted_dump())
    for out in (text, dump, (tmp_path / "config.yaml").read_text()):
        for s in SECRETS:
            assert s not in out
    sink = yaml.safe_load(text)["outputs"]["sinks"][1]
    assert sink["url"] == "https://alice:***@vms.example/hook?api_key=***&site=3"
    assert (sink["token"], sink["password"], sink["username"]) == ("***", "***", "alice")
    assert sink["headers"] == {"X-Api-Key": "***", "X-Site": "north"}
    assert load_config(tmp_path / "config.yaml").outputs.sinks[1].token == "***"  # still a valid config
    # ${VAR} references are not secrets: they stay, so the written config still runs where the variable is set
    ref = _cfg("https://${HOOK_USER}:${HOOK_PW}@vms/hook", token="${HOOK_TOKEN}")
    s2 = ref.redacted_dump()["outputs"]["sinks"][1]
    assert s2["url"] == "https://${HOOK_USER}:${HOOK_PW}@vms/hook" and s2["token"] == "${HOOK_TOKEN}"
    assert redact_url("rtsp://cam:pw@10.0.0.5/stream") == "rtsp://cam:***@10.0.0.5/stream"
    assert redact({"Authorization": "Bearer x", "nested": [{"password": 123}]}) == \
        {"Authorization": "***", "nested": [{"password": "***"}]}


def test_env_references_expanded_at_run_time_and_sent(tmp_path, monkeypatch, caplog):
    r = Receiver().start()
    try:
        monkeypatch.setenv("HOOK_TOKEN", "tok-123456")
        monkeypatch.setenv("HOOK_HDR", "s3cr3t-header")
        out = OutputConfig(dir=str(tmp_path), sinks=[SinkConfig(type="webhook", url=r.url, token="${HOOK_TOKEN}",
                                                                headers={"X-Api-Key": "${HOOK_HDR}"})])
        (sink,) = make_sinks(out, tmp_path / "run")
        sink.write(ev(0))
        sink.close()
        assert r.headers[0]["Authorization"] == "Bearer tok-123456" and r.headers[0]["X-Api-Key"] == "s3cr3t-header"
        assert out.sinks[0].token == "${HOOK_TOKEN}"  # the config object itself is never expanded
        monkeypatch.delenv("HOOK_TOKEN")
        with pytest.raises(ConfigError, match=r"outputs\.sinks\[0\]\.token: environment variable HOOK_TOKEN is not set"):
            make_sinks(out, tmp_path / "run")
    finally:
        r.stop()


def test_password_in_url_is_sent_as_basic_auth_and_never_logged(tmp_path, caplog):
    r = Receiver()  # down first, so the sink logs its failures
    url = f"http://alice:urlpass99@127.0.0.1:{r.port}/hook?token=tok-123456"
    out = OutputConfig(dir=str(tmp_path), sinks=[SinkConfig(type="webhook", url=url, timeout=0.3, retries=1,
                                                            drain_timeout=0.3)])
    with caplog.at_level(logging.INFO, logger="pockit"):
        (sink,) = make_sinks(out, tmp_path / "run")
        sink.write(ev(0))
        sink.close()
        d = sink.delivery()
        assert counts(d) == (1, 0, 1, 0, 0)
        r.start()
        try:
            (sink2,) = make_sinks(out, tmp_path / "run2")
            sink2.close()
        finally:
            r.stop()
    assert r.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"alice:urlpass99").decode()
    assert d["target"] == f"http://127.0.0.1:{r.port}/hook?token=***"
    written = caplog.text + json.dumps([d, delivery_summary([sink]), sink2.delivery()])
    written += "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "not delivered" in caplog.text
    for s in SECRETS:
        assert s not in written


@pytest.mark.broker
def test_mqtt_username_password_from_env(tmp_path, monkeypatch):
    pytest.importorskip("paho.mqtt.client", reason="pip install 'pockit[sinks]'")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "pockit", "hunter2"], check=True, capture_output=True)
    pw.chmod(0o600)
    port = free_port()
    # `user root`: when started as root, mosquitto would switch to its own user, which cannot read tmp_path
    broker = Broker(tmp_path, port, extra=f"password_file {pw}\nuser root\n")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    monkeypatch.setenv("MQTT_PW", "hunter2")
    try:
        sub = Subscriber(port, "site/ev", username="pockit", password="hunter2")
        good = OutputConfig(dir=str(tmp_path), sinks=[SinkConfig(type="mqtt", port=port, topic="site/ev",
                                                                 username="pockit", password="${MQTT_PW}",
                                                                 client_id="cam-1", name="good")])
        (sink,) = make_sinks(good, tmp_path / "run")
        sink.write(ev(0))
        sink.close()
        bad = OutputConfig(dir=str(tmp_path), sinks=[SinkConfig(type="mqtt", port=port, topic="site/ev",
                                                                username="pockit", password="wrong-pw",
                                                                timeout=0.5, drain_timeout=1, name="bad")])
        (sink_bad,) = make_sinks(bad, tmp_path / "run")
        sink_bad.write(ev(1))
        sink_bad.close()
        assert len(sub.got) == 1
        sub.close()
    finally:
        broker.stop()
    assert counts(sink.delivery()) == (1, 1, 0, 0, 0)
    assert counts(sink_bad.delivery()) == (1, 0, 1, 0, 0)  # refused by the broker: kept, not lost
    assert "wrong-pw" not in json.dumps(sink_bad.delivery())
