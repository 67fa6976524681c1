"""The customer report: a fixture run directory built from TUD-Campus ground truth with known
perturbations (exact metric values), a real `pockit run` (slow), bilingual labels, bad input."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import load_mot_array, write_events
from pockit.report import ReportError, build_report, judge_acceptance
from pockit.rules import replay

CONFIG = {
    "name": "tud-fixture",
    "description": "Campus walkway",
    "sources": [{"id": "campus", "uri": "img1", "fps": 25}],
    "model": {"path": "person-yolov8s", "conf": 0.25},
    "rules": [
        {"name": "walkway_zone", "type": "zone_enter", "zone": [[0.05, 0.6], [0.5, 0.6], [0.5, 0.98], [0.05, 0.98]],
         "zone_name": "walkway"},
        {"name": "center_line", "type": "line_crossing", "line": [[0.5, 0.3], [0.5, 0.99]], "direction": "both"},
    ],
    "acceptance": [
        {"name": "Intrusion recall", "metric": "events.walkway_zone.recall", "op": ">=", "threshold": 0.9},
        {"name": "MOTA", "metric": "tracking.MOTA", "op": ">=", "threshold": 0.5},
        {"name": "FPS", "category": "performance", "metric": "perf.fps", "op": ">=", "threshold": 25},
        {"name": "Sizing", "category": "performance", "metric": "bench.streams", "op": ">=", "threshold": 4},
        {"name": "Webhook delivery", "category": "api", "passed": True},
        {"name": "Handover docs", "category": "documentation"},
    ],
}
DROP = range(11, 21)  # frames whose boxes the "tracker" misses


def make_fixture_run(run_dir: Path, tud: Path) -> dict:
    """Write a run directory as `pockit run` would, from TUD-Campus gt: tracks = gt minus frames 11-20
    plus one far-away false box on frames 1-5; events = the rules replayed on gt minus the first
    walkway_zone event, plus one false walkway_zone alarm at t = 2.5 s. Returns the expected numbers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    gt = load_mot_array(tud / "gt/gt.txt")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    kept = gt[~np.isin(gt[:, 0], list(DROP))].copy()
    fp = np.array([[f, 900, 600, 10, 30, 60, 0.9, 0, -1, -1] for f in range(1, 6)], float)
    tracks = np.vstack([kept, fp])
    tracks[:, 6], tracks[:, 7:] = 0.9, [0, -1, -1]
    (run_dir / "tracks").mkdir(exist_ok=True)
    np.savetxt(run_dir / "tracks/campus.txt", tracks[np.argsort(tracks[:, 0], kind="stable")], delimiter=",",
               fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f", "%d", "%d", "%d"])
    (run_dir / "reference").mkdir(exist_ok=True)
    shutil.copy(tud / "img1/000001.jpg", run_dir / "reference/campus.jpg")
    cfg_path = run_dir / "config.yaml"
    gt_events = replay(cfg_path, tud / "gt/gt.txt", fps=25, source_id="campus", frame_size=(640, 480))
    first = next(e for e in gt_events if e.rule == "walkway_zone")
    pred = [e for e in gt_events if e is not first]
    from pockit.core import Event

    pred.append(Event(rule="walkway_zone", type="zone_enter", source="campus", time=2.5, frame=62, track_id=77,
                      bbox=[10, 10, 50, 100]))
    (run_dir / "snapshots").mkdir(exist_ok=True)
    for e in pred:
        e.snapshot = f"snapshots/{e.id}.jpg"
        shutil.copy(tud / f"img1/{e.frame + 1:06d}.jpg", run_dir / e.snapshot)
    write_events(pred, run_dir / "events.jsonl")
    run = {"name": "tud-fixture", "frames": 71, "wall_s": 10.0, "fps": 7.1,
           "sources": {"campus": {"id": "campus", "uri": str(tud / "img1"), "frames": 71, "fps": 25.0, "width": 640,
                                  "height": 480, "duration_s": 2.84, "tracks": 9, "stats": {}, "error": None}},
           "events_per_rule": {"walkway_zone": sum(e.rule == "walkway_zone" for e in pred),
                               "center_line": sum(e.rule == "center_line" for e in pred)},
           "timings": {"decode": {"mean_ms": 2.0, "p50_ms": 1.9, "p95_ms": 3.0},
                       "inference": {"mean_ms": 120.0, "p50_ms": 118.0, "p95_ms": 140.0}},
           "model": {"path": "person-yolov8s.onnx", "backend": "onnx", "class_names": {"0": "Normal", "1": "Fall"}},
           "versions": {"pockit": "0.1.0"}, "config": CONFIG, "started": "2026-01-01T10:00:00"}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    n_zone = sum(e.rule == "walkway_zone" for e in gt_events)
    dropped = int(np.isin(gt[:, 0], list(DROP)).sum())
    return {"gt_boxes": len(gt), "dropped": dropped, "n_zone_gt": n_zone,
            "n_line_gt": sum(e.rule == "center_line" for e in gt_events)}


@pytest.fixture
def fixture_run(tmp_path, tud_campus):
    run = tmp_path / "run"
    return run, make_fixture_run(run, tud_campus)


def test_report_numbers(fixture_run, tud_campus, tmp_path):
    run, exp = fixture_run
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "r.html")
    m = json.loads((tmp_path / "r.metrics.json").read_text())["metrics"]
    tp = exp["gt_boxes"] - exp["dropped"]
    # detection: every kept box is exact (TP), frames 11-20 missed, 5 far-away boxes false
    assert m["detection.campus.tp"] == tp and m["detection.campus.fn"] == exp["dropped"]
    assert m["detection.campus.fp"] == 5
    assert m["detection.precision"] == pytest.approx(tp / (tp + 5))
    assert m["detection.recall"] == pytest.approx(tp / exp["gt_boxes"])
    # tracking: same ids as gt, so no ID switch: MOTA = (TP - FP) / gt boxes; boxes are exact: MOTP = 1
    assert m["tracking.campus.IDSW"] == 0
    assert m["tracking.MOTA"] == pytest.approx((tp - 5) / exp["gt_boxes"])
    assert m["tracking.MOTP"] == pytest.approx(1.0, abs=1e-4)
    # events (gt derived by replaying the rules on gt tracks): one zone event removed, one false added
    assert exp["n_zone_gt"] >= 2 and exp["n_line_gt"] >= 1
    assert m["events.walkway_zone.tp"] == exp["n_zone_gt"] - 1
    assert m["events.walkway_zone.fn"] == 1 and m["events.walkway_zone.fp"] == 1
    assert m["events.walkway_zone.recall"] == pytest.approx((exp["n_zone_gt"] - 1) / exp["n_zone_gt"])
    # footage: 71 frames, first to last 2.84 s, plus one frame period = 2.9 s: too short for a rate per hour
    assert "events.walkway_zone.fa_per_hour" not in m and m["events.walkway_zone.fp"] == 1
    assert m["events.center_line.precision"] == 1.0 and m["events.center_line.recall"] == 1.0
    assert m["events.center_line.latency_p95_s"] == 0.0
    assert m["perf.fps"] == 7.1 and m["perf.inference.p95_ms"] == 140.0
    acc = {a["name"]: a["status"] for a in json.loads((tmp_path / "r.metrics.json").read_text())["acceptance"]}
    recall_ok = (exp["n_zone_gt"] - 1) / exp["n_zone_gt"] >= 0.9
    assert acc == {"Intrusion recall": "pass" if recall_ok else "fail", "MOTA": "pass", "FPS": "fail",
                   "Sizing": "no_data", "Webhook delivery": "pass", "Handover docs": "manual"}
    html = out.read_text()
    for sec in ("scope", "data", "detection", "tracking", "events", "performance", "limitations", "acceptance"):
        assert f'<section id="{sec}"' in html
    # self-contained: plotly inlined, every image embedded, nothing loaded from elsewhere
    assert re.search(r"<(script|img|link)[^>]+(src|href)=\"(https?:|//|file:)", html) is None
    assert html.count('class="plotly-graph-div"') == 7  # the alarm timeline and six accuracy/performance plots
    n_alarms = len(d_alarms := json.loads((tmp_path / "r.metrics.json").read_text())["alarms"])
    assert n_alarms == exp["n_zone_gt"] + exp["n_line_gt"]  # one removed, one false added
    # reference + example snapshots (3 true, 1 false, 3 true) + a thumbnail for every alarm in the table
    assert len(re.findall(r'src="data:image/jpeg;base64,', html)) == 1 + 3 + 1 + 3 + n_alarms
    assert [a["verdict"] for a in d_alarms].count("fp") == 1 and [a["verdict"] for a in d_alarms].count("tp") == n_alarms - 1
    assert "Ground-truth events derived by replaying the rules" in html
    # headline: passed / failed / to confirm counted apart (Sizing has no data, Handover docs is unconfirmed)
    d = json.loads((tmp_path / "r.metrics.json").read_text())
    n_pass = 3 if recall_ok else 2
    assert d["acceptance_counts"] == {"pass": n_pass, "fail": 4 - n_pass, "to_confirm": 2, "total": 6}
    assert (f'<span class="n-pass">{n_pass} pass</span> · <span class="n-fail">{4 - n_pass} fail</span> · '
            '<span class="n-confirm">2 to confirm</span>') in html
    # rates: the count with the footage, in human units, and why
    assert '<span id="footage">2.9 s</span>' in html
    assert "1 in 2.9 s" in html
    assert ("Rates per hour are shown only from at least 10 min of footage; with 2.9 s analysed the table gives "
            "the count and the footage instead.") in html
    # latency: sign explained in the column header (tooltip) and a footnote
    assert "Latency mean / p50 / p95 (s, alarm − truth; &lt; 0: alarm earlier) *" in html
    assert 'id="latency-note">* Latency = alarm time minus the ground-truth moment. A negative value' in html


def test_report_with_bench_and_zh(fixture_run, tmp_path):
    run, _ = fixture_run
    bench = {"host": {"cpu": "Test CPU"}, "cases": [{"batch": 1, "streams": 1, "fps": 30.0, "fps_per_stream": 30.0},
                                                   {"batch": 1, "streams": 2, "fps": 50.0, "fps_per_stream": 25.0}],
             "sizing": {"streams": 5, "batch": 1, "limiting_stage": "inference", "limiting_resource": "cpu",
                        "target_resolution": [1920, 1080], "target_fps": 5, "max_fps_one_stream": 30.0,
                        "measured_on": "Test CPU"},
             "estimates": {"orin": {"target_name": "Jetson Orin NX", "streams": 12, "batch": 4,
                                    "limiting_stage": "inference", "limiting_resource": "gpu",
                                    "target_resolution": [1920, 1080], "target_fps": 5,
                                    "sources": ["NVIDIA datasheet"]}}}
    (run / "bench.json").write_text(json.dumps(bench))
    res = CliRunner().invoke(cli, ["report", str(run), "--lang", "zh", "-o", str(tmp_path / "zh.html")])
    assert res.exit_code == 0, res.output
    # what the engineer must fix is printed for them, not written into the customer's document
    assert ("note: acceptance item 'Intrusion recall': no measurement 'events.walkway_zone.recall'; did you mean "
            "events.walkway_zone.alarms?") in res.output
    html = (tmp_path / "zh.html").read_text()
    assert '<html lang="zh-CN">' in html and "PoC 验收清单" in html and "估算" in html and "实测" in html
    assert "Jetson Orin NX" in html and "NVIDIA datasheet" in html
    acc = json.loads((tmp_path / "zh.metrics.json").read_text())["acceptance"]
    assert [a["status"] for a in acc if a["name"] == "Sizing"] == ["pass"]
    # no ground truth: accuracy sections say so, event section lists alarms only
    assert "本视频未提供真值" in html and "未提供真值：告警未判定正误" in html
    assert "no measurement 'events.walkway_zone.recall'" in acc[0]["hint"] and acc[0]["note"] == "本次 PoC 未测量"


def test_bench_from_another_config_below_one_stream_and_missing_estimates(fixture_run, tmp_path):
    run, _ = fixture_run
    bench = {"config": "warehouse", "host": {"cpu": "Test CPU"},
             "cases": [{"batch": 1, "streams": 1, "fps": 3.2, "fps_per_stream": 3.2, "resolution": [1920, 1080]}],
             "sizing": {"streams": 0, "batch": 1, "limiting_stage": "inference", "limiting_resource": "cpu",
                        "target_resolution": [1920, 1080], "target_fps": 5, "max_fps_one_stream": 3.2,
                        "measured_on": "Test CPU"},
             "targets": ["orin", "nano"],
             "estimates": {"orin": {"kind": "estimate", "error": "no GPU measurement to scale from"}}}
    (run / "bench.json").write_text(json.dumps(bench))
    build_report(run, out=tmp_path / "r.html")
    d = json.loads((tmp_path / "r.metrics.json").read_text())
    w = d["warnings"]
    assert ("bench.json was measured with config 'warehouse', not this run's 'tud-fixture': its sizing may not apply "
            "(re-run pockit bench with this config).") in w
    assert ("bench.json was measured at 1920x1080, this run's sources are 640x480: its throughput and sizing are for "
            "the other resolution.") in w
    assert "estimate orin: no GPU measurement to scale from" in w
    assert "estimate nano: requested, but bench.json holds no estimate for it" in w
    assert d["metrics"]["bench.streams"] == 0
    assert [a["status"] for a in d["acceptance"] if a["name"] == "Sizing"] == ["fail"]
    html = (tmp_path / "r.html").read_text()
    assert '<td class="measured">' not in html  # no green MEASURED for 0 streams
    assert re.search(r'<td class="below">BELOW ONE STREAM</td>\s*<td class="num">&lt; 1</td>', html)
    assert "one stream reaches 3.2 fps, below the 5 fps it needs" in html
    assert html.count('<td class="missing">NO ESTIMATE</td>') == 2  # orin (error) and nano (absent) stay listed
    assert html.count('class="bench-warning"') == 2
    # a matching bench.json: no warning, a measured sizing
    bench.update(config="tud-fixture", targets=[], estimates={})
    bench["cases"][0]["resolution"] = [640, 480]
    bench["sizing"].update(streams=2, target_resolution=[640, 480])
    (run / "bench.json").write_text(json.dumps(bench))
    build_report(run, out=tmp_path / "r2.html")
    d = json.loads((tmp_path / "r2.metrics.json").read_text())
    assert not [x for x in d["warnings"] if "bench" in x or "estimate" in x]
    html = (tmp_path / "r2.html").read_text()
    assert re.search(r'<td class="measured">MEASURED</td>\s*<td class="num">2</td>', html)


def test_judge_acceptance_suggests_keys():
    rows = judge_acceptance([{"name": "x", "metric": "perf.fsp", "op": ">=", "threshold": 1}], {"perf.fps": 3.0})
    assert rows[0]["status"] == "no_data" and "did you mean perf.fps" in rows[0]["hint"]
    assert rows[0]["note"] == "not measured in this PoC"
    rows = judge_acceptance([{"name": "x", "metric": "perf.fps", "op": "<", "threshold": 3}], {"perf.fps": 3.0})
    assert rows[0]["status"] == "fail" and rows[0]["measured"] == 3.0


def test_bad_input(fixture_run, tud_campus, tmp_path):
    run, _ = fixture_run
    with pytest.raises(ReportError, match="run directory not found"):
        build_report(tmp_path / "nope", out=tmp_path / "x.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="neither run.json nor config.yaml is there"):
        build_report(empty, out=tmp_path / "x.html")
    (empty / "run.json").write_text(json.dumps({"frames": 0, "errors": ["cam: cannot open rtsp://x"], "config": CONFIG}))
    with pytest.raises(ReportError, match=r"processed no frames \(cam: cannot open rtsp://x\)"):
        build_report(empty, out=tmp_path / "x.html")
    with pytest.raises(ReportError, match="ground truth not found: .*missing.txt"):
        build_report(run, gt=tmp_path / "missing.txt", out=tmp_path / "x.html")
    with pytest.raises(ReportError, match="names source 'lobby' but the run has"):
        build_report(run, gt=f"lobby={tud_campus / 'gt/gt.txt'}", out=tmp_path / "x.html")
    shifted = load_mot_array(tud_campus / "gt/gt.txt")
    shifted[:, 0] += 1000
    np.savetxt(tmp_path / "other.txt", shifted, delimiter=",")
    with pytest.raises(ReportError, match="frame ranges do not overlap"):
        build_report(run, gt=tmp_path / "other.txt", out=tmp_path / "x.html")
    res = CliRunner().invoke(cli, ["report", str(empty)])
    assert res.exit_code != 0 and "processed no frames" in res.output


def test_report_of_a_run_killed_mid_way(fixture_run, tud_campus, tmp_path):
    # kill -9: no run.json, and events.jsonl ends with a torn line. The report is still written from
    # config.yaml + events + tracks, with the same accuracy numbers, and says the run did not finish cleanly.
    run, _ = fixture_run
    build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "full.html")
    full = json.loads((tmp_path / "full.metrics.json").read_text())["metrics"]
    (run / "run.json").unlink()
    with open(run / "events.jsonl", "a", encoding="utf-8") as f:
        f.write('{"rule": "walkway_zone", "type": "zone_en')
    res = CliRunner().invoke(cli, ["report", str(run), "--gt", str(tud_campus / "gt/gt.txt"),
                                   "-o", str(tmp_path / "killed.html")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "killed.metrics.json").read_text())
    m = d["metrics"]
    for k in ("detection.campus.tp", "detection.campus.fp", "detection.campus.fn", "tracking.MOTA",
              "events.walkway_zone.tp", "events.walkway_zone.fp", "events.walkway_zone.fn", "events.center_line.tp"):
        assert m[k] == full[k], k
    assert "perf.fps" not in m and full["perf.fps"] == 7.1  # no timings without run.json
    assert d["warnings"][:2] == [
        ("The run did not finish cleanly (no run.json: the run was killed or crashed): the numbers below are "
         "reconstructed from config.yaml, events.jsonl and the tracks written before it stopped; timings and "
         "throughput are not available."),
        "events.jsonl: 1 incomplete last line(s) skipped (the run stopped while writing an event)."]
    assert "The run did not finish cleanly" in (tmp_path / "killed.html").read_text()
    # run.json written at start and never finished (status "running") is treated the same way
    (run / "run.json").write_text(json.dumps({"status": "running", "name": "tud-fixture"}))
    build_report(run, out=tmp_path / "running.html")
    w = json.loads((tmp_path / "running.metrics.json").read_text())["warnings"]
    assert w[0].startswith("The run did not finish cleanly (run.json says it is still running)")


@pytest.mark.slow
def test_report_from_real_run(tud_campus, tmp_path):
    """`pockit run` with the real person detector on TUD-Campus, then the report with its ground truth."""
    cfg = dict(CONFIG, sources=[{"id": "campus", "uri": str(tud_campus / "img1"), "fps": 25, "max_frames": 30}],
               outputs={"dir": str(tmp_path / "runs"), "run_name": "real", "snapshots": True})
    (tmp_path / "poc.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "poc.yaml")])
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "real"
    res = CliRunner().invoke(cli, ["report", str(run), "--gt", str(tud_campus), "-o", str(tmp_path / "real.html")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "real.metrics.json").read_text())
    m = d["metrics"]
    # the run stopped after 30 frames: the report says so and compares on frames 1-30 only
    gt = load_mot_array(tud_campus / "gt/gt.txt")
    assert (f"campus: frames 1-30 (0.00-1.16 s) is what the run analysed: ground truth is scored on it only "
            f"({int((gt[:, 0] > 30).sum())} ground-truth boxes outside it are not counted).") in d["warnings"]
    assert m["tracking.campus.TP"] + m["tracking.campus.FN"] == int((gt[:, 0] <= 30).sum())
    assert m["detection.campus.tp"] + m["detection.campus.fn"] == int((gt[:, 0] <= 30).sum())
    assert 0.3 < m["detection.campus.precision"] <= 1.0 and m["perf.fps"] > 0
    html = (tmp_path / "real.html").read_text()
    assert html.count('class="plotly-graph-div"') >= 5


def test_closing_records_are_not_counted_as_alarms(fixture_run, tud_campus, tmp_path):
    # a crowd-style closing record (extra.phase "end") in events.jsonl is the end of an alarm, not an alarm:
    # neither the "Alarms" KPI nor the event KPIs may count it (it used to show up as a false alarm)
    from pockit.core import Event, read_events

    run, exp = fixture_run
    pred = read_events(run / "events.jsonl")
    start = next(e for e in pred if e.rule == "walkway_zone")
    closing = Event(rule="walkway_zone", type="zone_enter", source="campus", time=2.7, frame=67, end=2.7,
                    extra={"phase": "end", "of": start.id, "reason": "below_min_count"})
    write_events(pred + [closing], run / "events.jsonl")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "r.html")
    m = json.loads((tmp_path / "r.metrics.json").read_text())["metrics"]
    assert m["events.walkway_zone.fp"] == 1 and m["events.walkway_zone.pred"] == exp["n_zone_gt"]
    assert re.search(rf'class="kpi">[^<]*<b>{len(pred)}</b>', out.read_text())


def _strip_code(html: str) -> str:
    """The document's text and markup without <script>/<style> bodies (plotly.js, plot JSON, CSS)."""
    return re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.DOTALL)


def test_cover_machine_versions_and_no_local_paths(fixture_run, tud_campus, tmp_path):
    run, _ = fixture_run
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["poc"] = {"customer": "ACME Logistics", "site": "Shanghai DC", "start": "2026-11-02", "end": "2026-11-20",
                  "scope": "Walkway intrusion", "people": [
                      {"name": "Li Wei", "role": "Security manager", "organisation": "ACME"},
                      {"name": "Ann Smith", "role": "Presales engineer", "organisation": "Vendor Co"}]}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    rj = json.loads((run / "run.json").read_text())
    rj["machine"] = {"cpu": "AMD EPYC 9654 96-Core Processor", "physical_cores": 16, "logical_cores": 32,
                     "memory_gb": 128.0, "os": "Linux-6.8-x86_64", "gpus": ["NVIDIA H200", "NVIDIA H200"],
                     "nvidia_driver": "570.1"}
    rj["versions"] = {"pockit": "0.1.0", "trackers": "?", "platform": "Linux-6.8-x86_64"}
    rj["model"]["path"] = "/root/.cache/pockit/models/person-yolov8s.onnx"
    (run / "run.json").write_text(json.dumps(rj))
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "r.html")
    html = out.read_text()
    doc = _strip_code(html)
    # cover block from the config's poc section, a signature line per person
    assert '<td id="cover-customer">ACME Logistics</td>' in doc and '<td id="cover-site">Shanghai DC</td>' in doc
    assert '<td id="cover-dates">2026-11-02 – 2026-11-20</td>' in doc
    assert re.findall(r'<tr class="signatory"><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>'
                      r'<td class="line"></td><td class="line"></td></tr>', doc) == [
        ("Li Wei", "Security manager", "ACME"), ("Ann Smith", "Presales engineer", "Vendor Co")]
    assert "ACME Logistics · Shanghai DC: PoC from 2026-11-02 to 2026-11-20." in doc
    # machine and versions from run.json; a version the run did not know says so (no "trackers ?")
    assert "<th>CPU</th><td>AMD EPYC 9654 96-Core Processor (16 cores / 32 threads)</td>" in doc
    assert "<th>GPU</th><td>2 x NVIDIA H200 (driver 570.1)</td>" in doc
    assert "<tr><th>pockit</th><td>0.1.0</td><th>trackers</th><td>not recorded</td></tr>" in doc
    assert "Measured on: AMD EPYC 9654 96-Core Processor + 2 x NVIDIA H200</p>" in doc
    assert "?" not in re.sub(r"<[^>]+>", "", doc).replace("?</", "")  # no "?" placeholder anywhere in the text
    # no local path anywhere in the document (data folder, tmp folder, model cache), no engineer instructions
    for local in (str(tmp_path), str(tud_campus), "/root/", "/work/", "/tmp/", "/.cache/"):
        assert local not in html, local
    assert "person-yolov8s.onnx" in doc and "TUD-Campus/gt/gt.txt" in doc
    assert "`" not in doc and "--gt" not in doc and "pockit bench" not in doc


def test_run_environment_records_machine_and_real_versions():
    from importlib.metadata import version

    from pockit.report import run_environment
    from pockit.report.environment import machine_rows

    env = run_environment()
    v, m = env["versions"], env["machine"]
    assert v["trackers"] == version("trackers") and v["numpy"] == version("numpy")  # trackers has no __version__
    assert "?" not in v.values()
    assert m["cpu"] and m["logical_cores"] >= 1 and isinstance(m["gpus"], list)
    rows = dict(machine_rows(env))
    assert rows["machine_cpu"].startswith(m["cpu"]) and rows["machine_gpu"] == (", ".join(m["gpus"]) or "-")[:len(rows["machine_gpu"])]
    assert machine_rows({"versions": {}}) is None


def test_machine_records_the_cpu_features_that_decide_its_speed():
    """run.json / bench.json name the CPU's vector features, so a figure says which kind of CPU made it (the
    same model name covers CPUs with and without AMX / AVX-512 BF16, and the CPU default differs)."""
    from pockit.report.environment import _cpu_features, machine_info, machine_rows

    amx = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    epyc = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp sve i8mm bf16\n"
    assert _cpu_features(amx) == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    assert _cpu_features(epyc) == ["avx2"]
    assert _cpu_features(arm) == ["asimd", "asimddp", "sve", "bf16", "i8mm"]
    assert _cpu_features("model name\t: x\n") == []
    assert isinstance(machine_info()["cpu_features"], list)
    rows = dict(machine_rows({"machine": {"cpu": "AMD EPYC", "logical_cores": 2, "cpu_features": ["avx2"]}}))
    assert rows["machine_cpu"] == "AMD EPYC (2 cores); avx2"
    rows = dict(machine_rows({"machine": {"cpu": "AMD EPYC", "logical_cores": 2}}))  # older run.json
    assert rows["machine_cpu"] == "AMD EPYC (2 cores)"


def _box_run(tmp_path, tud, name, box_key=None, event_box=None):
    run = tmp_path / name
    make_fixture_run(run, tud)
    if box_key:
        rj = json.loads((run / "run.json").read_text())
        rj["box"] = box_key
        (run / "run.json").write_text(json.dumps(rj))
    if event_box:
        from pockit.core import read_events

        evs = read_events(run / "events.jsonl")
        for e in evs:
            e.extra = dict(e.extra or {}, box=event_box)
        write_events(evs, run / "events.jsonl")
    return run


def test_several_runs_one_site_report(tud_campus, tmp_path):
    # three boxes: one names itself in run.json, one only in its events (extra.box), one by its folder name
    site = tmp_path / "collected"
    a = _box_run(site, tud_campus, "run-a", box_key="gate-box")
    b = _box_run(site, tud_campus, "run-b", event_box="yard-box")
    c = _box_run(site, tud_campus, "lobby-box")
    res = CliRunner().invoke(cli, ["report", str(a), str(b), str(c), "--gt", f"gate-box/campus={tud_campus}/gt/gt.txt",
                                   "-o", str(tmp_path / "site.html")])
    assert res.exit_code == 0, res.output
    assert "wrote " in res.output and "(3 runs)" in res.output
    d = json.loads((tmp_path / "site.metrics.json").read_text())
    n = len(read_events_(a))
    assert set(d["boxes"]) == {"gate-box", "yard-box", "lobby-box"}
    assert d["metrics"]["site.alarms"] == 3 * n and d["metrics"]["site.boxes"] == 3 and d["metrics"]["site.cameras"] == 3
    assert {x["box"] for x in d["alarms"]} == {"gate-box", "yard-box", "lobby-box"} and len(d["alarms"]) == 3 * n
    # ground truth named for one box scores that box only
    assert "box.gate-box.events.walkway_zone.tp" in d["metrics"]
    assert not [k for k in d["metrics"] if k.startswith(("box.yard-box.events.walkway_zone.tp",
                                                         "box.lobby-box.detection"))]
    assert {x["verdict"] for x in d["alarms"] if x["box"] != "gate-box"} == {None}
    html = (tmp_path / "site.html").read_text()
    for i in (1, 2, 3):
        for sec in ("scope", "data", "events", "performance"):
            assert f'<section id="b{i}-{sec}"' in html
    assert re.search(rf'<th class="num" id="site-alarms">{3 * n}</th>', html)
    assert len(re.findall(r'<tr class="alarm"', html)) == 3 * n
    assert html.count("<td>gate-box</td><td>campus</td>") == 1  # per-camera totals: one row per box and camera
    assert "gate-box / campus" in html and "yard-box / campus" in html
    # no poc section: the dates come from the runs (both started 2026-01-01), the cover leaves blanks to fill in
    assert '<p class="exec">PoC on 2026-01-01.</p>' in html and '<td id="cover-customer"></td>' in html
    assert f'<p class="exec">{3 * n} alarm(s) were raised by 2 rule(s);' in html
    # the collected folder gives the same report; one box's gt without its name is refused
    res = CliRunner().invoke(cli, ["report", str(site), "-o", str(tmp_path / "site2.html")])
    assert res.exit_code == 0, res.output
    assert set(json.loads((tmp_path / "site2.metrics.json").read_text())["boxes"]) == {"gate-box", "yard-box",
                                                                                       "lobby-box"}
    res = CliRunner().invoke(cli, ["report", str(site), "--gt", str(tud_campus / "gt/gt.txt")])
    assert res.exit_code != 0 and "with several runs, say which camera it belongs to" in res.output
    res = CliRunner().invoke(cli, ["report", str(site), "--gt", f"nobox/campus={tud_campus}/gt/gt.txt"])
    assert res.exit_code != 0 and "names camera 'nobox/campus', which none of the runs has" in res.output


def read_events_(run):
    from pockit.core import read_events

    return read_events(run / "events.jsonl")


def test_timeline_rows_symbols_and_units():
    from pockit.report.builder import _timeline, clock
    from pockit.report.i18n import translator

    def alarm(i, time, cam, rule, verdict):
        return {"id": f"e{i}", "time": time, "clock": clock(time), "camera": cam, "rule": rule, "verdict": verdict}

    alarms = [alarm(1, 30.0, "box1 / gate", "zone", "tp"), alarm(2, 1200.0, "box2 / yard", "zone", "fp"),
              alarm(3, 90.0, "box1 / gate", "line", None)]
    missed = [{"rule": "zone", "time": 600.0, "clock": clock(600.0), "camera": "box2 / yard"}]
    fig = _timeline(alarms, missed, translator("en"))
    tr = {t.name: t for t in fig.data}
    assert list(tr) == ["line", "zone", "Missed events"]
    assert list(tr["zone"].x) == [0.5, 20.0] and list(tr["zone"].marker.symbol) == ["circle", "x"]  # minutes
    assert list(tr["Missed events"].x) == [10.0] and tr["Missed events"].marker.symbol == "circle-open"
    assert fig.layout.xaxis.title.text == "time in the footage (min)"
    assert list(fig.layout.yaxis.categoryarray) == ["box2 / yard", "box1 / gate"]
    assert [c[1] for c in tr["zone"].customdata] == ["0:30.0", "20:00.0"] and clock(3725.04) == "1:02:05.0"
    short = _timeline([alarm(1, 2.5, "gate", "zone", None)], [], translator("zh"))
    assert list(short.data[0].x) == [2.5] and short.layout.xaxis.title.text == "视频内时间 (秒)"


def test_poc_section_is_validated():
    from pockit.config import ConfigError, parse_config

    base = {"sources": [{"id": "cam", "uri": "x.mp4"}]}
    cfg = parse_config(dict(base, poc={"customer": "ACME", "start": "2026-11-02", "end": "2026-11-20",
                                       "people": [{"name": "Li Wei", "role": "PM"}]}))
    assert str(cfg.poc.start) == "2026-11-02" and cfg.poc.people[0].organisation == ""
    assert cfg.redacted_dump()["poc"]["end"] == "2026-11-20"  # config.yaml / run.json keep it as a date string
    assert parse_config(base).poc.model_dump(exclude_defaults=True) == {}  # optional: the cover has blanks to fill
    with pytest.raises(ConfigError, match=r"poc: Value error, end \(2026-11-01\) is before start \(2026-11-02\)"):
        parse_config(dict(base, poc={"start": "2026-11-02", "end": "2026-11-01"}))
    with pytest.raises(ConfigError) as e:
        parse_config(dict(base, poc={"people": [{"role": "PM"}], "custmer": "x", "start": "next week"}))
    msg = str(e.value)
    assert "poc.people[0].name: Field required" in msg and "poc.custmer: unknown field" in msg
    assert "poc.start: Input should be a valid date" in msg


def test_every_label_in_both_languages():
    from pockit.report.i18n import LIMITATIONS, T, translator

    assert [k for k, v in T.items() if not v.get("en") or not v.get("zh")] == []
    assert len(LIMITATIONS["en"]) == len(LIMITATIONS["zh"])
    # labels with fields take the same fields in both languages
    fields = lambda text: sorted(re.findall(r"{(\w+)}", text))
    assert [k for k, v in T.items() if fields(v["en"]) != fields(v["zh"])] == []
    assert translator("zh")("v_fp") == "误报" and translator("en")("exec_date").format(start="2026-11-02") == \
        "PoC on 2026-11-02."


def test_no_alarm_with_ground_truth_shows_the_missed_events(fixture_run, tud_campus, tmp_path):
    run, exp = fixture_run
    write_events([], run / "events.jsonl")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "r.html")
    d = json.loads((tmp_path / "r.metrics.json").read_text())
    assert d["alarms"] == [] and d["metrics"]["events.all.fn"] == exp["n_zone_gt"] + exp["n_line_gt"]
    html = out.read_text()
    assert 'id="plot-timeline"' in html and '<tr class="alarm"' not in html
    assert '<p class="meta">The run raised no alarm.</p>' in html
    n_gt = exp["n_zone_gt"] + exp["n_line_gt"]
    assert "0 alarm(s) were raised by 2 rule(s)" in html and f"(0 true, 0 false, {n_gt} missed)" in html


def _collected_folder(tmp_path, tud, boxes):
    """A `pockit collect` folder holding the fixture run's alarms as sent by each of ``boxes`` (snapshots
    included), written through the collector's own store and wire format."""
    from pockit.collect.store import CollectStore
    from pockit.collect.wire import encode
    from pockit.core import read_events

    src = tmp_path / "box-run"
    make_fixture_run(src, tud)
    store = CollectStore(tmp_path / "collected")
    for i, box in enumerate(boxes):
        for e in read_events(src / "events.jsonl"):
            e.extra = dict(e.extra or {}, box=box, raised_at=1_790_000_000.0 + 3600 * i + e.time)
            assert store.accept(encode(e, src))
    store.close()
    return tmp_path / "collected", len(read_events(src / "events.jsonl"))


def test_report_of_a_collect_folder(tud_campus, tmp_path):
    folder, n = _collected_folder(tmp_path, tud_campus, ["gate-box", "yard-box"])
    poc = tmp_path / "poc.yaml"
    poc.write_text(yaml.safe_dump(dict(CONFIG, poc={"customer": "ACME", "site": "DC 3"}, acceptance=[
        {"name": "Alarms raised", "metric": "site.alarms", "op": ">=", "threshold": 1},
        {"name": "Recall", "metric": "events.walkway_zone.recall", "op": ">=", "threshold": 0.9}])))
    res = CliRunner().invoke(cli, ["report", str(folder), "--config", str(poc), "-o", str(tmp_path / "c.html")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "c.metrics.json").read_text())
    assert d["metrics"]["site.alarms"] == 2 * n and d["metrics"]["site.boxes"] == 2
    assert d["boxes"] == {"gate-box": {"run_dir": None, "metrics": {}, "alarms": n},
                          "yard-box": {"run_dir": None, "metrics": {}, "alarms": n}}
    assert [(a["name"], a["status"]) for a in d["acceptance"]] == [("Alarms raised", "pass"), ("Recall", "no_data")]
    html = (tmp_path / "c.html").read_text()
    assert '<td id="cover-customer">ACME</td>' in html and "<h1>PoC report: tud-fixture</h1>" in html
    assert len(re.findall(r'<tr class="alarm"', html)) == 2 * n
    assert len(re.findall(r'<img class="thumb" alt="\w+" src="data:image/jpeg;base64,', html)) == 2 * n
    assert html.count('<tr class="box-row">') == 2 and html.count('<tr class="camera-row">') == 2
    assert f"{2 * n} alarm(s) from 2 camera(s) on 2 edge box(es) were collected centrally." in html
    # the wall-clock time each box raised the alarm is shown beside the time in the footage
    from datetime import datetime

    raised = datetime.fromtimestamp(1_790_000_000.0)
    assert f'<span class="meta">{raised:%Y-%m-%d}<br>{raised:%H:%M:%S}</span>' in html
    assert "<th>Clip</th>" not in html  # no clips came with the collected alarms: no empty column
    # a box whose run directory is given too is reported from the run directory (no alarm twice)
    run = _box_run(tmp_path, tud_campus, "gate-run", box_key="gate-box")
    build_report([run, folder], out=tmp_path / "mixed.html")
    d = json.loads((tmp_path / "mixed.metrics.json").read_text())
    assert d["metrics"]["site.alarms"] == 2 * n and set(d["boxes"]) == {"gate-box", "yard-box"}
    assert d["boxes"]["gate-box"]["run_dir"] == "gate-run" and d["boxes"]["yard-box"]["run_dir"] is None
    # without --config a collect folder still reports (blank cover, named after the folder)
    res = CliRunner().invoke(cli, ["report", str(folder), "-o", str(tmp_path / "bare.html")])
    assert res.exit_code == 0, res.output
    assert "<h1>PoC report: collected</h1>" in (tmp_path / "bare.html").read_text()


def test_report_shows_the_finetuning_that_made_the_model(fixture_run, tmp_path):
    """A model produced by pockit.train.finetune (finetune.json beside weights/) gets its held-out before/after."""
    from pockit.report.builder import finetune_rows

    run, _ = fixture_run
    train = tmp_path / "ft" / "train"
    (train / "weights").mkdir(parents=True)
    (train / "weights" / "best.onnx").write_bytes(b"x")
    per = lambda ap, p, r: {"ap50": ap, "precision": p, "recall": r}  # noqa: E731
    (train / "finetune.json").write_text(json.dumps({
        "onnx": str(train / "weights" / "best.onnx"), "best_pt": str(train / "weights" / "best.pt"),
        "settings": {"added_classes": ["helmet"]},
        "before": {"map50": 0.57, "per_class": [{"class": "Normal", "gt": 8, **per(0.891, 0.53, 1.0)},
                                                {"class": "helmet", "gt": 2, **per(0.0, 0.0, 0.0)}]},
        "after": {"map50": 0.6, "images": 15, "per_class": [{"class": "Normal", "gt": 8, **per(0.789, 0.6, 1.0)},
                                                              {"class": "helmet", "gt": 2, **per(0.25, 0.22, 1.0)}]}}))
    assert finetune_rows(str(tmp_path / "elsewhere.onnx")) is None
    ft = finetune_rows(str(train / "weights" / "best.onnx"))
    assert ft["added"] == ["helmet"] and ft["images"] == 15
    assert [(r["class"], r["ap50"], r["recall"]) for r in ft["rows"]] == [("Normal", (0.891, 0.789), (1.0, 1.0)),
                                                                          ("helmet", (0.0, 0.25), (0.0, 1.0))]
    rec = json.loads((run / "run.json").read_text())
    rec.setdefault("model", {})["path"] = str(train / "weights" / "best.onnx")
    (run / "run.json").write_text(json.dumps(rec))
    build_report(run, out=tmp_path / "ft.html")
    html = (tmp_path / "ft.html").read_text()
    assert "Fine-tuning on the site&#39;s footage" in html or "Fine-tuning on the site's footage" in html
    assert "0.000 → 0.250" in html and "classes added: helmet" in html
