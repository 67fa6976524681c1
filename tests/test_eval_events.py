"""Event-level metrics: one-to-one optimal matching (cases where greedy fails), per-rule KPIs, CLI."""
import json

import pytest
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import Event, write_events
from pockit.evaluate import EvaluationError, evaluate_events, match_events


def E(t, rule="intrusion", type="zone_enter", direction=None, source="cam1"):
    return Event(rule=rule, type=type, source=source, time=t, frame=int(t * 10), direction=direction)


def test_greedy_fails_optimal_succeeds():
    # gt at 0.0 and 1.0, alarms at 0.9 and 1.8, tolerance 1 s. Greedy (each alarm takes its nearest free
    # truth) pairs 0.9 with 1.0 (dt 0.1), leaving 1.8 vs 0.0 (dt 1.8 > 1): 1 TP. The optimal assignment
    # pairs 0.9-0.0 (0.9) and 1.8-1.0 (0.8): 2 TP.
    assert sorted(match_events([E(0.9), E(1.8)], [E(0.0), E(1.0)], 1.0)) == [(0, 0), (1, 1)]


def test_more_matches_beat_smaller_dt():
    # truths 1.0, 2.0; alarms 1.5, 2.9. Smallest-|dt| pairing 1.5-2.0 (0.5) alone would leave 2.9 unmatched;
    # the optimum pairs 1.5-1.0 and 2.9-2.0 (2 TPs, total 1.4)
    assert sorted(match_events([E(1.5), E(2.9)], [E(1.0), E(2.0)], 1.0)) == [(0, 0), (1, 1)]
    # among equally many matches the total |dt| is minimal: alarms 1.0, 1.1 vs truths 1.05, 0.2
    assert sorted(match_events([E(1.0), E(1.1)], [E(1.05), E(0.2)], 1.0)) == [(0, 1), (1, 0)]


def test_one_to_one_and_tolerance_edge():
    # two alarms on one truth: one TP, one FP; |dt| == tolerance matches, just above does not
    assert match_events([E(5.0), E(5.2)], [E(5.1)], 1.0) in ([(0, 0)], [(1, 0)])
    assert match_events([E(6.0)], [E(5.0)], 1.0) == [(0, 0)]
    assert match_events([E(6.01)], [E(5.0)], 1.0) == []


def test_per_rule_kpis():
    gt = [E(10.0), E(20.0), E(30.0), E(40.0),                          # intrusion: 4 truths
          E(12.0, "line", "line_crossing", "in"), E(50.0, "line", "line_crossing", "out")]
    pred = [E(10.5), E(19.8), E(31.0), E(100.0), E(101.0),             # 3 TP (0.5, -0.2, 1.0), 2 FP, 1 FN
            E(12.3, "line", "line_crossing", "out"),                    # wrong direction: FP, and "in" missed
            E(50.1, "line", "line_crossing", "out"),                    # TP
            E(10.4, "intrusion", source="cam2")]                        # other camera: FP
    r = evaluate_events(pred, gt, tolerance=1.0, hours=0.5)
    i = r.rule("intrusion")
    assert (i["tp"], i["fp"], i["fn"]) == (3, 3, 1)
    assert i["precision"] == pytest.approx(0.5) and i["recall"] == pytest.approx(0.75)
    assert i["f1"] == pytest.approx(0.6)
    assert i["fa_per_hour"] == pytest.approx(6.0)  # 3 false alarms in half an hour
    # latencies 0.5, -0.2, 1.0: mean 0.4333, median 0.5, p95 (linear) = 0.5 + 0.9 * 0.5 = 0.95
    assert i["latency_mean_s"] == pytest.approx(1.3 / 3)
    assert i["latency_p50_s"] == pytest.approx(0.5)
    assert i["latency_p95_s"] == pytest.approx(0.95)
    ln = r.rule("line")
    assert (ln["tp"], ln["fp"], ln["fn"]) == (1, 1, 1) and ln["latency_mean_s"] == pytest.approx(0.1)
    t = r.totals
    assert (t["tp"], t["fp"], t["fn"]) == (4, 4, 2) and t["fa_per_hour"] == pytest.approx(8.0)
    groups = {(g["source"], g["rule"], g["direction"]): (g["tp"], g["fp"], g["fn"]) for g in r.per_group}
    assert groups == {("cam1", "intrusion", None): (3, 2, 1), ("cam2", "intrusion", None): (0, 1, 0),
                      ("cam1", "line", "in"): (0, 0, 1), ("cam1", "line", "out"): (1, 1, 0)}
    assert sorted(e.time for e in r.missed) == [12.0, 40.0]
    df = r.to_frame()
    assert list(df["rule"]) == ["intrusion", "line", "all"]


def test_bad_input(tmp_path):
    with pytest.raises(EvaluationError, match="ground truth has no events"):
        evaluate_events([E(1.0)], [])
    with pytest.raises(EvaluationError, match="events file not found"):
        evaluate_events(tmp_path / "nope.jsonl", [E(1.0)])
    r = evaluate_events([], [E(1.0)])
    assert r.totals["fn"] == 1 and r.totals["fa_per_hour"] is None
    assert any("no events" in w for w in r.warnings)
    r = evaluate_events([E(1.0, "other")], [E(1.0)])
    assert any("'other' raised alarms but the ground truth has no event" in w for w in r.warnings)
    bad = tmp_path / "bad.jsonl"
    # a bad record before the last line (a torn last line is skipped as a killed run's leftover)
    bad.write_text('{"rule": "x", "type": "zone_enter", "time": 1}\n{"rule": "x"}\n'
                   '{"rule": "x", "type": "zone_enter", "time": 2}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        evaluate_events(bad, [E(1.0)])


def test_cli(tmp_path):
    run = tmp_path / "run"
    write_events([E(10.5), E(100.0)], run / "events.jsonl")
    (run / "run.json").write_text(json.dumps({"sources": {"cam1": {"duration_s": 1800}}}))
    write_events([E(10.0), E(20.0)], tmp_path / "gt.jsonl")
    out = tmp_path / "ev.json"
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl"),
                                   "--gt", str(tmp_path / "gt.jsonl"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["footage_hours"] == 0.5 and d["per_rule"][0]["fa_per_hour"] == 2.0
    assert d["matches"][0]["latency_s"] == 0.5
    assert "intrusion" in res.output and "footage 30 min" in res.output
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl")])
    assert res.exit_code != 0 and "exactly one of --gt" in res.output
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(run / "events.jsonl"), "--gt-tracks", "x.txt"])
    assert res.exit_code != 0 and "--gt-tracks needs --config" in res.output


def test_cli_gt_from_tracks(tud_campus, tmp_path):
    """--gt-tracks: ground-truth events by replaying the config's rules on TUD-Campus gt tracks."""
    import yaml

    from pockit.rules import replay

    cfg = {"name": "t", "sources": [{"id": "campus", "uri": str(tud_campus / "img1")}],
           "rules": [{"name": "zone", "type": "zone_enter", "zone": [[0.05, 0.6], [0.5, 0.6], [0.5, 0.98], [0.05, 0.98]]}]}
    (tmp_path / "poc.yaml").write_text(yaml.safe_dump(cfg))
    gt = replay(tmp_path / "poc.yaml", tud_campus / "gt/gt.txt", fps=25, source_id="campus")
    assert len(gt) >= 2
    pred = gt[1:] + [E(2.0, "zone", source="campus")]  # one missed, one false
    write_events(pred, tmp_path / "events.jsonl")
    out = tmp_path / "ev.json"
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(tmp_path / "events.jsonl"), "--gt-tracks",
                                   str(tud_campus / "gt/gt.txt"), "--config", str(tmp_path / "poc.yaml"),
                                   "--hours", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{len(gt)} ground-truth events from replaying the rules" in res.output  # fps from seqinfo.ini
    r = json.loads(out.read_text())["per_rule"][0]
    assert (r["tp"], r["fp"], r["fn"], r["fa_per_hour"]) == (len(gt) - 1, 1, 1, 1.0)
    assert r["latency_p95_s"] == 0.0


def test_crowd_closing_records_are_not_alarms():
    # pockit writes a crowd episode as a start record and a closing record (extra.phase "end", "of" = start id,
    # time = end). Only the start is an alarm: closing records must count neither as TP nor as false alarms.
    def crowd(t, end_of=None, end=None):
        e = E(t, "crowd", "crowd")
        if end_of is not None:
            e.end, e.extra = end, {"phase": "end", "of": end_of.id, "reason": "below_min_count"}
        return e

    g0 = crowd(11.43)
    gt = [g0, crowd(15.14, g0, 15.14)]
    p0, p1 = crowd(13.0), crowd(15.0)
    pred = [p0, crowd(13.86, p0, 13.86), p1, crowd(15.14, p1, 15.14)]
    r = evaluate_events(pred, gt, tolerance=1.0, hours=1.0)
    c = r.rule("crowd")
    assert (c["gt"], c["pred"], c["tp"], c["fp"], c["fn"]) == (1, 2, 0, 2, 1)
    assert sorted(e.time for e in r.false_alarms) == [13.0, 15.0]
    assert [e.end for e in r.missed] == [15.14]  # the episode's end is kept on the alarm
    # within tolerance the start records match; the closing records do not add a second TP
    r = evaluate_events([p0, crowd(13.86, p0, 13.86)], [crowd(12.5), ], tolerance=1.0)
    assert (r.totals["tp"], r.totals["fp"], r.totals["fn"]) == (1, 0, 0)
    assert p0.end is None  # inputs are not modified
    # a hand-annotated episode (one record with time and end, no phase) is an alarm like any other
    from pockit.evaluate import fold_episodes
    hand = Event(rule="crowd", type="crowd", source="cam1", time=3.0, frame=30, end=9.0)
    assert fold_episodes([hand]) == [hand]


def test_rates_need_ten_minutes_of_footage():
    from pockit.evaluate.events import MIN_RATE_SECONDS, human_duration, per_hour

    assert MIN_RATE_SECONDS == 600
    # 2 false alarms in 15 s are not "480 per hour": no rate below 10 minutes, the count stays
    r = evaluate_events([E(1.0), E(5.0), E(9.0)], [E(1.0)], hours=15 / 3600)
    assert r.totals["fp"] == 2 and r.totals["fa_per_hour"] is None
    r = evaluate_events([E(1.0), E(5.0), E(9.0)], [E(1.0)], hours=600 / 3600)
    assert r.totals["fa_per_hour"] == pytest.approx(12.0)
    assert per_hour(3, 599 / 3600) is None and per_hour(3, 0.5) == 6.0 and per_hour(3, None) is None
    assert [human_duration(x) for x in (15.3, 0.0387 * 3600, 130, 600, 3900, 7199, None)] == [
        "15.3 s", "2 min 19 s", "2 min 10 s", "10 min", "1 h 5 min", "2 h", "-"]
    assert human_duration(130, "zh") == "2 分 10 秒"
