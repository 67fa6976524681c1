"""ZoneEditor widget wiring (without a browser), replay panel and display helpers."""
from __future__ import annotations

import pytest
import yaml

pytest.importorskip("ipycanvas")

from pockit.core import Event
from pockit.notebook import env
from pockit.notebook.display import draw_scene, events_per_rule, events_table
from pockit.notebook.editor import ZoneEditor
from pockit.notebook.replay import FrameReader, ReplayPanel, ScenarioReplay


@pytest.fixture()
def setup(tmp_path, pets):
    cfg = tmp_path / "poc.yaml"
    cfg.write_text(f"name: pets\nsources:\n  - id: pets\n    uri: {pets}\nrules: []\n")
    ed = ZoneEditor(pets / "img1" / "000001.jpg", config=cfg, source_id="pets", display_width=768)
    return ed, cfg, pets


def _click(ed, x, y):
    ed._on_down(x, y)
    ed._on_up(x, y)


def test_mouse_params_save_load(setup):
    ed, cfg, _ = setup
    for x, y in [(330, 240), (600, 240), (640, 380), (330, 380)]:
        _click(ed, x, y)
    _click(ed, 331, 241)
    assert ed.status.value == "<span style='color:#555'>close at (331, 241)</span>"
    assert ed.selector.options == ("zone_1",)
    labels = [getattr(w, "description", "") for w in ed.params.children[1:]]
    assert labels == ["name", "type", "classes", "min_score (0-1)", "anchor", "cooldown (s)", "sources", "enabled",
                      "zone_name", "min_frames (frames)"]  # units on the fields
    # a parameter widget edits the rule; a bad value is refused with the reason and the rule unchanged
    typ = ed.params.children[2]
    typ.value = "loitering"
    dwell = next(w for w in ed.params.children if getattr(w, "description", "") == "dwell (s)")
    dwell.value = 4.0
    assert ed.scene.current.rule["dwell"] == 4.0
    dwell.value = -1.0
    assert "dwell: Input should be greater than 0" in ed.status.value
    assert ed.scene.current.rule["dwell"] == 4.0
    classes = next(w for w in ed.params.children if getattr(w, "description", "") == "classes")
    classes.value = "person, 1"
    assert ed.scene.current.rule["classes"] == ["person", 1]
    ed.mode_buttons.value = "line"
    _click(ed, 660, 250)
    _click(ed, 660, 576)
    assert ed.selector.options == ("zone_1", "line_1")
    assert "line: [[0.8594, 0.434], [0.8594, 1.0]]" in ed.yaml_view.value
    ed.b_save.click()
    assert ed.status.value.endswith("saved 2 drawn rule(s) into " + str(cfg) + " (2 rules in the file)</span>")
    rules = yaml.safe_load(cfg.read_text())["rules"]
    assert rules[0] == {"name": "zone_1", "type": "loitering",
                        "zone": [[0.4297, 0.4167], [0.7812, 0.4167], [0.8333, 0.6597], [0.4297, 0.6597]],
                        "normalized": True, "classes": ["person", 1], "dwell": 4.0}
    # load back into a new widget
    ed2 = ZoneEditor(ed.image, config=cfg, source_id="pets")
    assert ed2.scene.to_dicts() == ed.scene.to_dicts()
    ed.b_delete.click()
    ed.b_load.click()
    assert [s.name for s in ed.scene.shapes] == ["zone_1", "line_1"]


def test_save_errors_are_shown_not_raised(setup):
    ed, cfg, _ = setup
    _click(ed, 10, 10)
    ed.b_save.click()
    assert "cannot save the drawn rules" in ed.status.value and "needs at least 3 distinct points" in ed.status.value
    assert yaml.safe_load(cfg.read_text())["rules"] == []


def test_replay_panel_follows_edits(setup):
    ed, _cfg, pets = setup
    sc = ScenarioReplay(pets / "gt" / "gt.txt", frames=pets, source_id="pets")
    assert sc.frame_size == (768, 576) and sc.fps is None
    panel = ReplayPanel(ed, sc)
    ed.mode_buttons.value = "line"
    _click(ed, 660, 250)
    _click(ed, 660, 576)  # the edit re-runs the rules
    assert panel.summary.value == "<b>events per rule:</b> line_1=7"
    assert [(e.frame, e.track_id, e.direction) for e in sc.events][:3] == [(8, 1, "in"), (15, 2, "in"), (26, 3, "in")]  # walking right to left: the left side of top->bottom
    img = sc.preview(sc.events[0])
    assert img.shape == (576, 768, 3)
    red = (img[..., 2] > 200) & (img[..., 1] < 40) & (img[..., 0] < 40)
    assert red.sum() > 200  # the alarmed person's box and the label are drawn red
    assert panel.slider.max == 6 and len(panel.image.value) > 1000


def test_frame_reader_and_tables(pets, shared_data):
    fr = FrameReader(pets)
    assert len(fr) == 107 and fr[5].shape == (576, 768, 3)
    with pytest.raises(IndexError, match="frame 107 out of range"):
        fr[107]
    v = FrameReader(shared_data / "video" / "ABODA_video4.avi")
    a, b = v[10].copy(), v[3].copy()
    assert (v[10] == a).all() and not (a == b).all()
    with pytest.raises(FileNotFoundError, match="no such video file or image folder"):
        FrameReader(pets / "nope.mp4")
    evs = [Event(rule="r1", type="zone_enter", source="s", time=1.0, frame=7, track_id=3),
           Event(rule="r1", type="zone_enter", source="s", time=2.0, frame=14, track_id=4)]
    df = events_table(evs)
    assert list(df.columns[:6]) == ["time", "frame", "rule", "type", "source", "track_id"]
    assert df["frame"].tolist() == [7, 14]
    assert events_per_rule(evs, ["r1", "r2"]) == {"r1": 2, "r2": 0}
    assert list(events_table([]).columns[:3]) == ["time", "frame", "rule"]


def test_draw_scene_and_env(setup, monkeypatch, tmp_path):
    ed, _, _ = setup
    for x, y in [(100, 100), (300, 100), (300, 300)]:
        _click(ed, x, y)
    out = draw_scene(ed.image, ed.scene)
    assert out.shape == ed.image.shape and (out != ed.image).any()
    assert (out[500, 700] == ed.image[500, 700]).all()  # far from the shapes: untouched
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("POCKIT_NB_FAST", raising=False)
    assert env.fast_mode() is False
    monkeypatch.setenv("CI", "true")
    assert env.fast_mode() is True
    monkeypatch.setenv("POCKIT_NB_FAST", "0")
    assert env.fast_mode() is False
    monkeypatch.setenv("POCKIT_NB_WORK", str(tmp_path / "w"))
    assert env.work_dir() == tmp_path / "w" and (tmp_path / "w").is_dir()


def test_line_arrow_points_to_the_in_side(setup):
    """People walking right to left across a top->bottom line are counted 'in': the arrow points left."""
    ed, _, _ = setup
    ed.mode_buttons.value = "line"
    _click(ed, 660, 250)
    _click(ed, 660, 576)
    out = draw_scene(ed.image, ed.scene)
    diff = (out != ed.image).any(axis=2)
    mid_y = (250 + 576) // 2
    left = diff[mid_y - 3: mid_y + 3, 620:655].sum()
    right = diff[mid_y - 3: mid_y + 3, 666:700].sum()
    assert left > 20 and right == 0


def _alarm(eid, rule, t, **kw):
    return Event(rule=rule, type=kw.pop("type", "zone_enter"), source="cam", time=t, frame=int(t * 10), track_id=1,
                 id=eid, snapshot=f"snapshots/{eid}.jpg", **kw)


def test_save_verdicts_writes_ground_truth_that_eval_reads(tmp_path):
    from click.testing import CliRunner

    from pockit.cli import cli
    from pockit.core import read_events, write_events
    from pockit.evaluate import evaluate_events
    from pockit.notebook.replay import save_verdicts

    alarms = [_alarm("a1", "gate", 2.0), _alarm("a2", "gate", 9.0), _alarm("a3", "yard", 5.0, type="loitering"),
              _alarm("a4", "yard", 5.5, type="loitering", extra={"phase": "end"})]  # a closing record: not judged
    out = tmp_path / "gt" / "gt_events.jsonl"
    gt = save_verdicts(alarms, {"a1": True, "a2": False, "a3": True}, out,
                       missed=[{"rule": "gate", "type": "zone_enter", "time": 20.0}])
    assert [(e.rule, e.time) for e in gt] == [("gate", 2.0), ("yard", 5.0), ("gate", 20.0)]
    back = read_events(out)
    assert [(e.rule, e.type, e.time, e.source) for e in back] == [
        ("gate", "zone_enter", 2.0, "cam"), ("yard", "loitering", 5.0, "cam"), ("gate", "zone_enter", 20.0, "cam")]
    assert back[0].extra["verdict_of"] == "a1" and back[0].snapshot is None
    rep = evaluate_events(alarms, out, tolerance=1.0)
    assert {r["rule"]: (r["tp"], r["fp"], r["fn"]) for r in rep.per_rule} == {"gate": (1, 1, 1), "yard": (1, 0, 0)}
    pred = tmp_path / "events.jsonl"
    write_events(alarms, pred)
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(pred), "--gt", str(out), "-o",
                                   str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    per_rule = {r["rule"]: (r["tp"], r["fp"], r["fn"]) for r in yaml.safe_load((tmp_path / "e.json").read_text())["per_rule"]}
    assert per_rule == {"gate": (1, 1, 1), "yard": (1, 0, 0)}


def test_save_verdicts_refuses_bad_verdicts(tmp_path):
    from pockit.notebook.replay import save_verdicts

    alarms = [_alarm("a1", "gate", 2.0), _alarm("a2", "gate", 9.0)]
    out = tmp_path / "gt.jsonl"
    with pytest.raises(ValueError, match=r"1 alarm\(s\) have no verdict yet: \['a2'\]"):
        save_verdicts(alarms, {"a1": True}, out)
    with pytest.raises(ValueError, match=r"unknown alarm id\(s\) \['zz'\]"):
        save_verdicts(alarms, {"a1": True, "a2": False, "zz": True}, out)
    with pytest.raises(ValueError, match="must be True .* got {'a2': 'yes'}"):
        save_verdicts(alarms, {"a1": True, "a2": "yes"}, out)
    with pytest.raises(ValueError, match=r"missed\[0\]: event record lacks required field 'time'"):
        save_verdicts(alarms, {"a1": True, "a2": False}, out, missed=[{"rule": "gate", "type": "zone_enter"}])
    assert not out.exists()  # nothing written while the verdicts are incomplete or wrong


def test_verdict_panel_collects_marks(pets):
    import numpy as np

    from pockit.notebook.replay import VerdictPanel

    alarms = [_alarm("a1", "gate", 2.0), _alarm("a2", "gate", 9.0)]
    seen = []
    panel = VerdictPanel(alarms, image=lambda e: seen.append(e.id) or np.zeros((40, 60, 3), np.uint8),
                         verdicts={"a1": True})
    assert seen == ["a1", "a2"] and panel.verdicts == {"a1": True}
    assert "1/2</b> alarms judged: 1 real, 0 false" in panel.count.value
    panel.toggles["a2"].value = False
    assert panel.verdicts == {"a1": True, "a2": False}
    assert "2/2</b> alarms judged: 1 real, 1 false" in panel.count.value
    assert len(panel.widget.children) == 3  # the count and one row per alarm
    assert VerdictPanel([]).widget.children[0].value == "no alarms to judge"


def test_gt_tracks_beside(pets, tmp_path):
    from pockit.notebook.replay import gt_tracks_beside

    assert gt_tracks_beside(pets) == pets / "gt" / "gt.txt"
    assert gt_tracks_beside(pets / "img1") == pets / "gt" / "gt.txt"
    video = tmp_path / "site.mp4"
    video.write_bytes(b"")
    assert gt_tracks_beside(video) is None
    (tmp_path / "site.gt.txt").write_text("1,1,0,0,10,10,1,1,1\n")
    assert gt_tracks_beside(video) == tmp_path / "site.gt.txt"
    assert gt_tracks_beside("rtsp://cam/stream") is None and gt_tracks_beside(None) is None


def test_preview_counts_lines_as_of_the_alarm_and_no_broken_image(setup):
    ed, _cfg, pets = setup
    sc = ScenarioReplay(pets / "gt" / "gt.txt", frames=pets, source_id="pets")
    panel = ReplayPanel(ed, sc)
    assert panel.image.layout.display == "none" and panel.empty.value == "<i>no alarms: nothing to preview</i>"
    assert panel.image.value == b""  # hidden: no empty <img> (a broken-image icon) is shown
    ed.mode_buttons.value = "line"
    _click(ed, 660, 250)
    _click(ed, 660, 576)
    assert len(sc.events) == 7 and panel.image.layout.display is None and panel.empty.layout.display == "none"
    # the counter on the preview of the 6th crossing says 6 (the engine is replayed up to that frame) ...
    assert sc.engine_at(sc.events[5].frame).counts["line_1"]["in"] == 6
    assert sc.engine_at(sc.events[0].frame).counts["line_1"]["in"] == 1  # going back starts over
    assert sc.engine_at(sc.events[6].frame).counts["line_1"]["in"] == 7
    assert sc.preview(sc.events[5]).shape == (576, 768, 3)
    # ... and its label stays inside the frame: a label that would run off an edge is moved in, whole
    import cv2
    import numpy as np

    from pockit.sinks.draw import _text
    label = "line_1 in:6 out:0"
    (tw, _th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    for org in [(664, 242), (700, 575), (-30, 3)]:
        img = np.zeros((576, 768, 3), np.uint8)
        _text(img, label, org, (255, 255, 255), 0.5)
        ys, xs = np.nonzero(img.any(2))
        assert xs.min() >= 0 and xs.max() < 767 and ys.min() > 0 and ys.max() < 575, org
        assert xs.max() - xs.min() >= tw - 8, (org, xs.max() - xs.min(), tw)  # not cut (glyph bearings: a few px)
    ed.scene.delete()
    ed.refresh()
    assert sc.events == [] and panel.image.layout.display == "none" and panel.slider.layout.display == "none"


def test_events_table_has_no_nan_for_fields_a_rule_lacks():
    rows = events_table([Event(rule="a", type="zone_enter", source="c", time=1.0, frame=3, track_id=1),
                         Event(rule="b", type="line_crossing", source="c", time=2.0, frame=5, track_id=2,
                               direction="in")])
    assert list(rows.columns) == ["time", "frame", "rule", "type", "source", "track_id", "direction"]
    assert rows["direction"].tolist() == ["", "in"] and rows["time"].tolist() == [1.0, 2.0]
    assert not rows.isna().any().any()


def test_labels_of_rules_sharing_a_zone_do_not_overlap(setup):
    from pockit.notebook.editor import label_positions
    from pockit.notebook.scene import Shape

    ed, _cfg, _ = setup
    for x, y in [(330, 240), (600, 240), (640, 380), (330, 380)]:
        _click(ed, x, y)
    _click(ed, 331, 241)
    ed.scene.duplicate(rule_type="loitering")
    ed.scene.duplicate(rule_type="crowd")
    pos = label_positions(ed.scene.shapes, 6, 17, ed.scene.frame_size)
    assert [round(y) for _x, y in pos] == [234, 217, 200]  # stacked one line apart above the shared point
    # no room above the point: stacked below it; never past the right edge
    top = [Shape("zone", [[760, 2], [700, 50], [760, 50]], {"name": f"z{i}", "type": "zone_enter"}) for i in range(2)]
    assert label_positions(top, 6, 17, (768, 576)) == [(720, 19), (720, 36)]


def test_units_and_background_frames(pets):
    import numpy as np

    from pockit.notebook.editor import field_label

    assert [field_label(k) for k in ("dwell", "min_area", "min_frames", "name")] == [
        "dwell (s)", "min_area (px²)", "min_frames (frames)", "name"]
    frames = FrameReader(pets)
    ed = ZoneEditor(frames[0], source_id="pets", frames=frames, display_width=640)
    assert ed.background.max == len(frames) - 1 == 106
    ed.background.value = 50
    assert (ed.image == frames[50]).all() and ed.status.value.endswith("background: frame 50</span>")
    ed.frames = [frames[0], np.zeros((10, 10, 3), np.uint8)]
    ed.background.value = 1
    assert "frame 1 is 10x10, the editor&#x27;s frame 768x576: frames must come from the same camera" in ed.status.value and (ed.image == frames[50]).all()
    assert ZoneEditor(frames[0], source_id="pets").background is None


def test_snapshot_labels_of_rules_sharing_a_zone_stack():
    """The run's renderer (snapshots, draw_scene, reports): the second rule on one zone writes its name one
    line below the first instead of over it."""
    import numpy as np

    from pockit.sinks.draw import draw_shapes

    zone = np.array([[330, 240], [600, 240], [640, 380], [330, 380]], np.float64)
    shape = lambda name: {"kind": "zone", "points": zone, "name": name, "color": (0, 255, 0)}
    one = np.zeros((576, 768, 3), np.uint8)
    draw_shapes(one, [shape("path_intrusion")], scale=1.0)
    two = np.zeros((576, 768, 3), np.uint8)
    draw_shapes(two, [shape("path_intrusion"), shape("path_loitering")], scale=1.0)
    first = np.nonzero((one[245:300, 334:500, 1] > 150).any(1))[0] + 245  # the text, not the translucent fill
    added = np.nonzero((abs(two.astype(int) - one.astype(int)).sum(2) > 0)[245:300, 334:500].any(1))[0] + 245
    assert len(first) and len(added) and added.min() > first.max() - 2, (first, added)
