"""Ground truth is scored on what a run analysed only (issue 13, item 1): a run stopped after N frames
(`--max-frames`) of PETS09-S3-MF1 is compared with the ground truth of frames 1-N, in `pockit eval`
and in the report, through the same helper (pockit.evaluate.events.analysed_spans)."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import load_mot_array, write_events
from pockit.evaluate import EvaluationError, evaluate_events
from pockit.evaluate.events import analysed_spans, fold_episodes, gt_events_from_tracks
from pockit.evaluate.tracking import evaluate_tracks
from pockit.report import build_report
from pockit.rules import replay

DEMO = Path(__file__).resolve().parents[1] / "demos" / "pets_zone_line.yaml"
# the rules of demos/pets_zone_line.yaml replayed on the whole PETS09-S3-MF1 ground truth raise 11 alarms, at
# frames (0-based) 50, 51, 62, 63, 72, 73, 80, 83, 84, 100, 100; none in the first 40 frames, 4 in the first 70


def make_pets_run(run_dir: Path, pets: Path, n: int) -> np.ndarray:
    """A run folder as `pockit run demos/pets_zone_line.yaml --max-frames n` writes it, with a perfect detector
    and tracker: tracks = ground truth of frames 1-n, events = the rules replayed on those tracks."""
    run_dir.mkdir(parents=True)
    cfg = yaml.safe_load(DEMO.read_text())
    cfg["sources"][0]["uri"] = str(pets)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gt = load_mot_array(pets / "gt/gt.txt")
    tracks = gt[gt[:, 0] <= n].copy()
    tracks[:, 6], tracks[:, 7:] = 0.9, [0, -1, -1]
    (run_dir / "tracks").mkdir()
    np.savetxt(run_dir / "tracks/pets.txt", tracks, delimiter=",",
               fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f", "%d", "%d", "%d"])
    events = replay(run_dir / "config.yaml", run_dir / "tracks/pets.txt", fps=7, source_id="pets",
                    frame_size=(768, 576))
    write_events(events, run_dir / "events.jsonl")
    per_rule: dict[str, int] = {}
    for e in fold_episodes(events):
        per_rule[e.rule] = per_rule.get(e.rule, 0) + 1
    run = {"name": "pets-zone-line", "status": "ok", "frames": n, "wall_s": 5.0, "fps": n / 5.0,
           "sources": {"pets": {"id": "pets", "uri": str(pets), "frames": n, "fps": 7.0, "width": 768, "height": 576,
                                "duration_s": (n - 1) / 7, "tracks": 0, "stats": {}, "error": None}},
           "events_per_rule": per_rule, "timings": {}, "model": {}, "versions": {}, "config": cfg}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return gt


def test_spans_from_run_json(pets, tmp_path):
    make_pets_run(tmp_path / "run", pets, 40)
    sp = analysed_spans(json.loads((tmp_path / "run/run.json").read_text()))["pets"]
    assert (sp.first_frame, sp.last_frame, sp.frames) == (1, 40, 40)
    assert sp.t0 == 0.0 and sp.t1 == pytest.approx(39 / 7)
    assert sp.seconds == pytest.approx(40 / 7)
    assert sp.label() == "pets: frames 1-40 (0.00-5.57 s)"
    # a run started 2 s in (start: 2.0) at 7 fps begins at frame index 14 (t = 2.0 s)
    rec = {"config": {"sources": [{"id": "c", "start": 2.0}]},
           "sources": {"c": {"frames": 10, "fps": 7.0, "duration_s": 23 / 7}}}
    sp = analysed_spans(rec)["c"]
    assert (sp.first_frame, sp.last_frame, sp.t0) == (15, 24, 2.0)
    # a 10 fps camera analysed at 5 fps (sources[].fps: 5): 100 analysed frames span 19.8 s, i.e. the source's
    # own frames 1-199, which is how the tracks file numbers them
    rec = {"sources": {"c": {"frames": 100, "fps": 5.0, "native_fps": 10.0, "duration_s": 19.8}}}
    sp = analysed_spans(rec)["c"]
    assert (sp.first_frame, sp.last_frame, sp.frames) == (1, 199, 100)
    # nothing decoded: an empty span that contains no time
    sp = analysed_spans({"sources": {"c": {"frames": 0, "fps": 7.0, "duration_s": 0.0}}})["c"]
    assert sp.frames == 0 and not sp.contains(0.0)


def test_eval_events_restricted_to_40_frames(pets, tmp_path):
    run = tmp_path / "run"
    make_pets_run(run, pets, 40)
    gt = replay(run / "config.yaml", pets / "gt/gt.txt", fps=7, source_id="pets")
    assert len(fold_episodes(gt)) == 11
    spans = analysed_spans(json.loads((run / "run.json").read_text()))
    with pytest.raises(EvaluationError, match=r"no ground-truth event lies in what the run analysed \(pets: frames "
                                              r"1-40 \(0.00-5.57 s\)\); all 11 are outside it"):
        evaluate_events(run / "events.jsonl", gt, spans=spans)
    # the whole ground truth (the old behaviour) says recall 0 with 11 missed
    whole = evaluate_events(run / "events.jsonl", gt)
    assert whole.totals["fn"] == 11 and whole.totals["recall"] == 0.0
    r = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl"), "--gt-tracks",
                                 str(pets / "gt/gt.txt"), "--config", str(run / "config.yaml")])
    assert r.exit_code == 1
    assert "run.json: scoring pets: frames 1-40 (0.00-5.57 s) only" in r.output
    assert "all 11 are outside it" in r.output


def test_eval_events_restricted_to_70_frames(pets, tmp_path):
    run = tmp_path / "run"
    make_pets_run(run, pets, 70)
    gt = replay(run / "config.yaml", pets / "gt/gt.txt", fps=7, source_id="pets")
    spans = analysed_spans(json.loads((run / "run.json").read_text()))
    rep = evaluate_events(run / "events.jsonl", gt, spans=spans, hours=spans["pets"].seconds / 3600)
    t = rep.totals
    assert (t["gt"], t["tp"], t["fp"], t["fn"]) == (4, 4, 0, 0) and t["recall"] == 1.0
    assert len(rep.gt_outside) == 7
    assert rep.to_dict()["analysed"]["pets"] == {"first_frame": 1, "last_frame": 70, "t0_s": 0.0,
                                                 "t1_s": pytest.approx(69 / 7), "frames": 70}
    assert "7 ground-truth event(s) lie outside what the run analysed" in rep.warnings[0]
    # the shared derivation (report, eval CLI, notebooks): the rules replayed on the gt tracks of frames 1-70,
    # plus the whole-annotation events outside them, which evaluate_events(spans=) leaves unscored
    derived = fold_episodes(gt_events_from_tracks(run / "config.yaml", pets / "gt/gt.txt", 7, "pets",
                                                  span=spans["pets"]))
    assert [(e.rule, e.frame) for e in derived if spans["pets"].contains(e.time)] == [
        ("lamp_post_line", 50), ("road_intrusion", 51), ("lamp_post_line", 62), ("road_intrusion", 63)]
    assert len(derived) == 11
    rep2 = evaluate_events(run / "events.jsonl", derived, spans=spans)
    assert (rep2.totals["tp"], rep2.totals["fn"], len(rep2.gt_outside)) == (4, 0, 7)
    out = tmp_path / "ev.json"
    r = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl"), "--gt-tracks",
                                 str(pets / "gt/gt.txt"), "--config", str(run / "config.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert (d["totals"]["tp"], d["totals"]["fn"], d["gt_outside_span"]) == (4, 0, 7)
    assert d["footage_hours"] == pytest.approx(10 / 3600)  # 70 frames at 7 fps
    r = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl"), "--gt-tracks",
                                 str(pets / "gt/gt.txt"), "--config", str(run / "config.yaml"), "--whole-gt",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert (d["totals"]["tp"], d["totals"]["fn"], d["analysed"]) == (4, 7, None)


def test_eval_tracks_restricted(pets, tmp_path):
    run = tmp_path / "run"
    gt = make_pets_run(run, pets, 40)
    inside = int((gt[:, 0] <= 40).sum())
    rep = evaluate_tracks(pets / "gt/gt.txt", run / "tracks/pets.txt", frames=(1, 40))
    assert rep.frames == 40 and rep.gt_boxes == inside and rep.summary["MOTA"] == 1.0
    assert rep.warnings[0] == (f"scored on frames 1-40 only (what the run analysed): {len(gt) - inside} "
                               "ground-truth boxes outside")
    whole = evaluate_tracks(pets / "gt/gt.txt", run / "tracks/pets.txt")
    assert whole.summary["MOTA"] == pytest.approx(inside / len(gt))
    r = CliRunner().invoke(cli, ["eval", "tracks", "--gt", str(pets / "gt/gt.txt"), "--pred",
                                 str(run / "tracks/pets.txt")])
    assert r.exit_code == 0, r.output
    assert f"40 frames, gt 7 ids / {inside} boxes" in r.output


def test_report_of_a_run_stopped_at_40_frames(pets, tmp_path):
    run = tmp_path / "run"
    gt = make_pets_run(run, pets, 40)
    inside = int((gt[:, 0] <= 40).sum())
    build_report(run, gt=str(pets), out=tmp_path / "r.html")
    d = json.loads((tmp_path / "r.metrics.json").read_text())
    m, w = d["metrics"], d["warnings"]
    assert m["tracking.MOTA"] == 1.0 and m["detection.pets.fn"] == 0 and m["detection.pets.tp"] == inside
    assert not any(k.startswith("events.") and k.endswith((".recall", ".fn")) for k in m)  # not measured
    assert ("pets: frames 1-40 (0.00-5.57 s) is what the run analysed: 0 ground-truth event(s) lie in it and are "
            "scored; 11 lie outside it and are not counted.") in w
    assert (f"pets: frames 1-40 (0.00-5.57 s) is what the run analysed: ground truth is scored on it only "
            f"({len(gt) - inside} ground-truth boxes outside it are not counted).") in w
    html = (tmp_path / "r.html").read_text()
    assert ('<p class="meta" id="events-note">pets: frames 1-40 (0.00-5.57 s) is what the run analysed: 0 '
            "ground-truth event(s) lie in it and are scored; 11 lie outside it and are not counted.</p>") in html


def test_report_of_a_run_stopped_at_70_frames(pets, tmp_path):
    run = tmp_path / "run"
    make_pets_run(run, pets, 70)
    build_report(run, gt=str(pets), out=tmp_path / "r.html")
    d = json.loads((tmp_path / "r.metrics.json").read_text())
    m = d["metrics"]
    assert (m["events.all.gt"], m["events.all.tp"], m["events.all.fp"], m["events.all.fn"]) == (4, 4, 0, 0)
    assert m["events.lamp_post_line.recall"] == 1.0 and m["events.road_intrusion.recall"] == 1.0
    assert ("pets: frames 1-70 (0.00-9.86 s) is what the run analysed: 4 ground-truth event(s) lie in it and are "
            "scored; 7 lie outside it and are not counted.") in d["warnings"]


def test_span_of_a_run_analysed_below_the_source_rate(tud_campus, tmp_path):
    """A real run of TUD-Campus (25 fps) analysed at 12.5 fps: the span covers the tracks' frame numbers."""
    import pockit

    cfg = {"name": "half", "sources": [{"id": "campus", "uri": str(tud_campus), "fps": 12.5, "max_frames": 10}],
           "model": {"path": "person-yolov8s"}, "pipeline": {"workers": 0}}
    pockit.run(cfg, run_dir=tmp_path / "r", progress=False)
    rec = json.loads((tmp_path / "r/run.json").read_text())
    assert rec["sources"]["campus"]["native_fps"] == 25.0 and rec["sources"]["campus"]["fps"] == 12.5
    sp = analysed_spans(rec)["campus"]
    tracks = load_mot_array(tmp_path / "r/tracks/campus.txt")
    assert sp.frames == 10 and sp.first_frame == 1 and sp.last_frame == 19
    assert tracks[:, 0].max() <= sp.last_frame and tracks[:, 0].max() >= 17
