"""A run that dies or reads a damaged file: nothing already produced is lost, and the run says what happened."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from click.testing import CliRunner

import pockit
from pockit.cli import cli
from pockit.core import Detections, read_events


class _OnePerson:
    """One fixed box per frame: the zone rule below fires on the first confirmed frame."""

    class_names = {0: "person"}
    info = {"backend": "fixed"}
    last_timings = {}

    def detect(self, images):
        return [Detections(xyxy=np.array([[100, 100, 200, 400]], np.float32), scores=np.array([0.9], np.float32),
                           class_names=self.class_names) for _ in images]


def test_truncated_video_is_a_source_error_in_run_json(shared_data, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((shared_data / "video" / "one-by-one-person-detection.mp4").read_bytes()[:300_000])
    cfg = {"name": "cut", "sources": [{"id": "cam", "uri": str(cut)}], "model": {"path": "unused.onnx"},
           "rules": [{"name": "all", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]}]}
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=_OnePerson(), progress=False)
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert s.sources["cam"].frames == 120 and rec["status"] == "errors"
    assert rec["errors"] == ["cam: decoding ended early: {'decoded': 120, 'expected': 1394, 'ended_at_s': 12.1, "
                             "'expected_s': 139.4}"]
    assert len(read_events(tmp_path / "run" / "events.jsonl")) == 1  # what was analysed is kept


def test_kill_9_mid_run_keeps_events_tracks_and_a_reportable_run(shared_data, tmp_path):
    """`pockit run` killed with SIGKILL: run.json (status running), the events raised and the tracks written
    up to the last second survive, and `pockit report` makes a report of that directory."""
    cfg = tmp_path / "poc.yaml"
    seq = shared_data / "mot" / "TUD-Stadtmitte"
    cfg.write_text(f"""name: killed
sources:
  - {{id: cam, uri: "{seq}", realtime: true}}
model: {{path: person-yolov8s}}
rules:
  - {{name: anywhere, type: zone_enter, zone: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
""")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pockit.cli", "run", str(cfg), "-o", str(run_dir), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        tracks = run_dir / "tracks" / "cam.txt"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if tracks.exists() and tracks.stat().st_size > 0 and (run_dir / "events.jsonl").exists() \
                    and (run_dir / "events.jsonl").stat().st_size > 0:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "running" and rec["name"] == "killed"
    assert len(read_events(run_dir / "events.jsonl")) >= 1
    assert tracks.stat().st_size > 0
    res = CliRunner().invoke(cli, ["report", str(run_dir), "-o", str(tmp_path / "report.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "anywhere" in html


def test_ctrl_c_with_decode_processes_flushes_and_stops_every_process(shared_data, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a run whose files are
    decoded in child processes: the run stops within seconds, run.json says interrupted, the events raised so
    far are on disk, and no child process prints a traceback or lingers."""
    cfg = tmp_path / "poc.yaml"
    seq = shared_data / "mot" / "TUD-Stadtmitte"
    srcs = "\n".join(f'  - {{id: cam{i}, uri: "{seq}", realtime: true}}' for i in range(4))
    cfg.write_text(f"""name: ctrlc
sources:
{srcs}
model: {{path: person-yolov8s}}
pipeline: {{decode_processes: true, decode_threads: 2, workers: 1}}
rules:
  - {{name: anywhere, type: zone_enter, zone: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
""")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pockit.cli", "run", str(cfg), "-o", str(run_dir), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        deadline = time.monotonic() + 240
        ev = run_dir / "events.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if ev.exists() and ev.stat().st_size > 0:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "interrupted" and rec["pipeline"]["decoders"]["processes"] == 2, err[-2000:]
    assert len(read_events(run_dir / "events.jsonl")) >= 1
    assert "Traceback" not in err, err[-3000:]
    import psutil

    left = []
    for _ in range(50):  # multiprocessing's resource tracker leaves a moment after the main process
        left = [c for c in (_alive_cmdline(p, proc.pid) for p in psutil.process_iter()) if c is not None]
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"processes outlived the run: {left}"


def _alive_cmdline(p, pgid):
    """The command line of a live (not zombie) process of process group ``pgid``; None for any other, or for one
    that exits or turns zombie while it is looked at."""
    import psutil

    try:
        if _pgid(p.pid) != pgid or p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def test_a_worker_process_that_cannot_start_fails_the_run_with_its_reason(shared_data, tmp_path, monkeypatch):
    """The OS refuses a process (no memory, a process limit): the run raises the real reason (not a clean-up
    error that hid it), stops its threads and writes run.json with status failed and that reason."""
    import multiprocessing.context as mpc

    import pytest

    def refuse(self):
        raise OSError("cannot start a process: test")

    monkeypatch.setattr(mpc.SpawnProcess, "start", refuse)
    cfg = {"name": "nostart", "model": {"path": "unused.onnx"},
           "sources": [{"id": "a", "uri": str(shared_data / "video" / "car-detection.mp4"), "max_frames": 5}],
           "outputs": {"dir": str(tmp_path)}}
    with pytest.raises(RuntimeError, match="OSError: cannot start a process: test"):
        pockit.run(cfg, run_dir=tmp_path / "r", detector=_OnePerson(), progress=False, workers=1)
    rec = json.loads((tmp_path / "r" / "run.json").read_text())
    assert rec["status"] == "failed" and rec["errors"] == ["pipeline: OSError: cannot start a process: test"]


def test_alarms_reach_the_delivery_queue_before_events_jsonl(shared_data, tmp_path, monkeypatch):
    """Each alarm is put in the network sink's durable queue before it is appended to events.jsonl (the jsonl
    sink listed first): a box SIGKILLed between the two writes has the alarm resent by its next run, instead of
    written locally and never sent (seen once in 13 runs of the kill test in tests/test_collect.py)."""
    from pockit.sinks.delivery import QueuedSink

    seen = []  # events.jsonl's line count each time the queue takes an alarm
    real = QueuedSink.write

    def write(self, event):
        p = tmp_path / "r" / "events.jsonl"
        seen.append(len(p.read_text().splitlines()) if p.exists() else 0)
        return real(self, event)

    monkeypatch.setattr(QueuedSink, "write", write)
    cfg = {"name": "order", "model": {"path": "unused.onnx"},
           "sources": [{"id": "a", "uri": str(shared_data / "video" / "car-detection.mp4"), "max_frames": 6}],
           "rules": [{"name": "z", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]},
                     {"name": "y", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
           "outputs": {"dir": str(tmp_path), "sinks": [{"type": "jsonl"},
                                                       {"type": "webhook", "url": "http://127.0.0.1:9/x", "retries": 1,
                                                        "timeout": 0.2, "drain_timeout": 0}]}}
    s = pockit.run(cfg, run_dir=tmp_path / "r", detector=_OnePerson(), progress=False, workers=0)
    assert s.events_per_rule == {"z": 1, "y": 1}
    assert seen == [0, 1]  # the queue had each alarm while events.jsonl did not yet
    assert len(read_events(tmp_path / "r" / "events.jsonl")) == 2
