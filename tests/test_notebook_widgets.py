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
    assert labels == ["name", "type", "classes", "min_score", "anchor", "cooldown", "sources", "enabled",
                      "zone_name", "min_frames"]
    # a parameter widget edits the rule; a bad value is refused with the reason and the rule unchanged
    typ = ed.params.children[2]
    typ.value = "loitering"
    dwell = next(w for w in ed.params.children if getattr(w, "description", "") == "dwell")
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
