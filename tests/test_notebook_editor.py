"""The zone/line editor's pure-Python core: mouse semantics, rule params, YAML round trip."""
from __future__ import annotations

import pytest
import yaml

from pockit.config import ConfigError, load_config
from pockit.notebook import (
    RULE_TYPES_BY_KIND,
    EditorError,
    SceneEditor,
    load_scene,
    replace_rules_block,
    save_scene,
)
from pockit.notebook.scene import rule_kind

W, H = 640, 480


def _zone(ed: SceneEditor, pts):
    for x, y in pts:
        ed.press(x, y)
        ed.release()


def test_click_points_close_zone_then_new_shape():
    ed = SceneEditor((W, H))
    assert ed.hit_radius == pytest.approx(9.6)
    assert [ed.press(*p) for p in [(100, 100), (300, 100), (300, 200)]] == ["new", "add", "add"]
    ed.release()
    assert ed.press(102, 99) == "close"  # first vertex of an open zone with 3 points closes it
    s = ed.shapes[0]
    assert s.finished and s.points == [[100, 100], [300, 100], [300, 200]]
    assert s.name == "zone_1" and s.type == "zone_enter"
    assert ed.press(500, 400) == "new"  # empty space after a finished zone: a new zone
    assert len(ed.shapes) == 2 and ed.active == 1 and ed.shapes[1].name == "zone_2"


def test_drag_vertex_moves_it_and_clamps_to_frame():
    ed = SceneEditor((W, H))
    _zone(ed, [(100, 100), (300, 100), (300, 200)])
    ed.finish()
    assert ed.press(305, 96) == "drag"
    assert ed.dragging == (0, 1)
    assert ed.move(350, 120) is True
    assert ed.move(350, 120) is False  # no change
    assert ed.release(900, -50) is True
    assert ed.shapes[0].points[1] == [640.0, 0.0]
    assert ed.dragging is None and ed.move(10, 10) is False


def test_press_on_edge_inserts_vertex_and_drags_it():
    ed = SceneEditor((W, H))
    _zone(ed, [(100, 100), (300, 100), (300, 300), (100, 300)])
    ed.finish()
    assert ed.hit_edge(200, 104) == 0 and ed.hit_edge(100, 200) == 3  # closing edge 3 -> 0
    assert ed.press(200, 104) == "insert"
    ed.move(200, 50)
    ed.release()
    assert ed.shapes[0].points == [[100, 100], [200, 50], [300, 100], [300, 300], [100, 300]]


def test_line_finishes_at_two_points_and_fence_needs_finish():
    ed = SceneEditor((W, H), mode="line")
    assert ed.press(10, 400) == "new" and ed.press(630, 400) == "add"
    assert ed.shapes[0].finished and ed.shapes[0].kind == "line"
    assert ed.press(320, 100) == "new"  # third click: a new line
    ed.delete()
    ed.mode = "fence"
    for p in [(10, 10), (200, 50), (400, 20)]:
        ed.press(*p)
    assert not ed.current.finished and len(ed.current.points) == 3
    ed.finish()
    assert [s.kind for s in ed.shapes] == ["line", "fence"]
    assert ed.shapes[1].rule == {"name": "fence_1", "type": "fence_crossing"}
    with pytest.raises(EditorError, match="mode must be one of"):
        ed.mode = "circle"


def test_vertex_hit_prefers_selected_shape_and_selects_other():
    ed = SceneEditor((W, H))
    _zone(ed, [(100, 100), (300, 100), (300, 200)])
    ed.finish()
    ed.new_shape("line")
    ed.press(100, 102)  # near the zone's first vertex: grabs it, selects the zone
    assert ed.active == 0 and ed.mode == "zone" and ed.dragging == (0, 0)
    ed.release()
    # the new line stayed empty: it cannot be saved, and the message says what to do
    assert ed.problems() == [("rule 'line_1': a line needs at least 2 distinct points, it has 0: "
                              "click more points on the frame or delete it")]


def test_undo_delete_duplicate_select():
    ed = SceneEditor((W, H))
    _zone(ed, [(100, 100), (300, 100), (300, 200), (100, 200)])
    ed.undo_point()
    assert len(ed.shapes[0].points) == 3 and not ed.shapes[0].finished
    ed.finish()
    ed.set_param("cooldown", 5)
    d = ed.duplicate(rule_type="loitering")
    assert d.name == "zone_2" and d.type == "loitering" and d.points == ed.shapes[0].points
    assert d.rule == {"name": "zone_2", "type": "loitering", "dwell": 10.0, "cooldown": 5}
    ed.select("zone_1")
    assert ed.active == 0
    ed.delete()
    assert [s.name for s in ed.shapes] == ["zone_2"] and ed.active == 0
    with pytest.raises(EditorError, match="no rule named 'zz'"):
        ed.select("zz")


def test_params_validated_by_rule_schema():
    ed = SceneEditor((W, H))
    _zone(ed, [(100, 100), (300, 100), (300, 200)])
    ed.set_rule_type("loitering")
    assert ed.current.rule["dwell"] == 10.0
    ed.set_param("dwell", "4.5")
    assert ed.current.rule["dwell"] == 4.5  # coerced by pydantic
    ed.set_param("classes", ["person"])
    with pytest.raises(EditorError, match=r"rule 'zone_1': dwell: Input should be greater than 0"):
        ed.set_param("dwell", 0)
    assert ed.current.rule["dwell"] == 4.5  # unchanged after a bad value
    with pytest.raises(EditorError, match="has no parameter 'direction'"):
        ed.set_param("direction", "in")
    with pytest.raises(EditorError, match="set by the editor"):
        ed.set_param("zone", [[0, 0]])
    with pytest.raises(EditorError, match="rule types"):
        ed.set_rule_type("line_crossing")
    ed.set_rule_type("zone_enter")  # dwell dropped, classes kept
    assert ed.current.rule == {"name": "zone_1", "type": "zone_enter", "classes": ["person"]}


def test_to_rules_normalized_and_pixels():
    ed = SceneEditor((W, H))
    _zone(ed, [(64, 48), (320, 48), (320, 240)])
    ed.finish()
    ed.mode = "line"
    ed.press(0, 480)
    ed.press(640, 240)
    ed.set_param("direction", "in")
    assert ed.to_dicts() == [
        {"name": "zone_1", "type": "zone_enter", "zone": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]], "normalized": True},
        {"name": "line_1", "type": "line_crossing", "line": [[0.0, 1.0], [1.0, 0.5]], "normalized": True,
         "direction": "in"},
    ]
    px = ed.to_dicts(normalized=False)
    assert px[0]["zone"] == [[64, 48], [320, 48], [320, 240]] and px[0]["normalized"] is False


CONFIG = """\
# my PoC: keep this comment
name: site-a   # inline comment kept
sources:
  - id: cam1
    uri: /videos/cam1.mp4
  - id: cam2
    uri: /videos/cam2.mp4
rules:
  - name: old_zone
    type: zone_enter
    zone: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
    cooldown: 3
  - name: bag
    type: abandoned_object
  - name: cam2_line
    type: line_crossing
    sources: [cam2]
    line: [[10, 10], [100, 10]]
    normalized: false
  # comment before outputs is kept
outputs:
  dir: runs   # where runs go
"""


def test_yaml_round_trip_keeps_other_rules_and_comments(tmp_path):
    p = tmp_path / "poc.yaml"
    p.write_text(CONFIG)
    ed = load_scene(p, (W, H), source_id="cam1")
    assert [s.name for s in ed.shapes] == ["old_zone"]  # bag: no geometry; cam2_line: other camera
    assert ed.shapes[0].points == [[64.0, 48.0], [320.0, 48.0], [320.0, 240.0]]
    assert ed.shapes[0].rule == {"name": "old_zone", "type": "zone_enter", "cooldown": 3.0}
    assert ed.default_sources == ["cam1"]  # two cameras: new rules are bound to this one
    ed.press(64, 48)
    ed.move(128, 96)
    ed.release()
    ed.mode = "line"
    ed.press(0, 400)
    ed.press(640, 400)
    cfg = save_scene(ed, p)
    assert [r.name for r in cfg.rules] == ["old_zone", "line_1", "bag", "cam2_line"]
    text = p.read_text()
    assert text.startswith("# my PoC: keep this comment\nname: site-a   # inline comment kept\n")
    assert "  # comment before outputs is kept\noutputs:\n  dir: runs   # where runs go\n" in text
    assert "zone: [[0.2, 0.2], [0.5, 0.1], [0.5, 0.5]]" in text
    assert (tmp_path / "poc.yaml.bak").read_text() == CONFIG
    raw = yaml.safe_load(text)["rules"]
    assert raw[1] == {"name": "line_1", "type": "line_crossing", "line": [[0.0, 0.8333], [1.0, 0.8333]],
                      "normalized": True, "sources": ["cam1"]}
    assert raw[2] == {"name": "bag", "type": "abandoned_object"}
    assert raw[3]["line"] == [[10, 10], [100, 10]]
    # load back: the same shapes
    ed2 = load_scene(p, (W, H), source_id="cam1")
    assert [(s.name, s.kind) for s in ed2.shapes] == [("old_zone", "zone"), ("line_1", "line")]
    assert ed2.shapes[0].points == [[128.0, 96.0], [320.0, 48.0], [320.0, 240.0]]
    assert [pt for pts in ed2.shapes[1].points for pt in pts] == pytest.approx([0.0, 399.984, 640.0, 399.984])
    assert load_config(p).rules[0].cooldown == 3.0


def test_save_refuses_invalid_and_keeps_file(tmp_path):
    p = tmp_path / "poc.yaml"
    p.write_text(CONFIG)
    ed = load_scene(p, (W, H), source_id="cam1")
    ed.new_shape("zone")
    ed.press(10, 10)
    with pytest.raises(EditorError, match=r"poc.yaml: cannot save the drawn rules:\n  - rule 'zone_1': a zone "
                                          r"needs at least 3 distinct points, it has 1"):
        save_scene(ed, p)
    ed.delete()
    ed.shapes[0].rule["name"] = "bag"  # clash with a rule the editor does not show
    with pytest.raises(ConfigError, match=r"duplicate rules names: \['bag'\]"):
        save_scene(ed, p)
    assert p.read_text() == CONFIG and not (tmp_path / "poc.yaml.bak").exists()
    with pytest.raises(ConfigError, match="source 'cam9' is not in the config"):
        load_scene(p, (W, H), source_id="cam9")
    with pytest.raises(ConfigError, match="config file not found"):
        save_scene(ed, tmp_path / "missing.yaml")


def test_replace_rules_block_variants():
    assert replace_rules_block("name: a\nsources: []\n", []) == "name: a\nsources: []\nrules: []\n"
    text = "name: a\nrules: []  # none yet\nlanguage: en\n"
    out = replace_rules_block(text, [{"name": "z", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1]]}])
    assert out == ("name: a\nrules:\n- name: z\n  type: zone_enter\n  zone: [[0, 0], [1, 0], [1, 1]]\n"
                   "language: en\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        replace_rules_block("- 1\n- 2\n", [])


def test_bad_frame_size_and_kind():
    with pytest.raises(EditorError, match="frame_size must be positive"):
        SceneEditor((0, 480))
    ed = SceneEditor((W, H))
    with pytest.raises(EditorError, match="a line can carry rule types"):
        ed.new_shape("line", "loitering")


def test_double_click_closes_zone_and_finishes_fence():
    ed = SceneEditor((640, 480))
    t = 100.0
    for i, (x, y) in enumerate([(10, 10), (200, 10), (200, 200)]):
        ed.press(x, y, t=t + i)  # a second apart: single clicks
        ed.release()
    # a double-click: its first press adds the 4th point, the second (0.2 s later, same place) closes
    assert ed.press(20, 200, t=t + 10) == "add"
    ed.release()
    assert ed.press(21, 201, t=t + 10.2) == "close"
    assert ed.current.finished and ed.current.points == [[10, 10], [200, 10], [200, 200], [20, 200]]
    # too slow, or too far apart: a drag of the vertex / a new shape, not a close
    ed.mode = "fence"
    assert ed.press(300, 300, t=t + 20) == "new"
    assert ed.press(400, 300, t=t + 20.3) == "add"  # 100 px away: a new point
    assert ed.press(400, 300, t=t + 21) == "drag"    # 0.7 s later: too slow for a double-click
    ed.release()
    assert not ed.current.finished
    assert ed.press(500, 320, t=t + 30) == "add"
    assert ed.press(500, 320, t=t + 30.3) == "close" and ed.current.finished and len(ed.current.points) == 3
    # untimed presses (from code) never count as double-clicks
    ed.mode = "zone"
    ed.press(50, 400)
    ed.press(50, 400)
    assert not ed.current.finished


def test_new_rule_types_are_drawable():
    ed = SceneEditor((1000, 500))
    for x, y in [(100, 100), (300, 100), (300, 300)]:
        ed.press(x, y)
    ed.finish()
    for t in ("no_helmet", "phone_use", "face_match", "unknown_face"):
        assert t in RULE_TYPES_BY_KIND["zone"]
        ed.set_rule_type(t)
        d = ed.to_dicts()[0]
        assert d["type"] == t and d["zone"] == [[0.1, 0.2], [0.3, 0.2], [0.3, 0.6]], d
    assert ed.to_dicts()[0]["watchlist"] == "watchlist.npz"  # a required field gets a value to edit
    ed.mode = "fence"
    ed.press(0, 400)
    ed.press(500, 350)
    ed.press(1000, 380)
    ed.finish()
    ed.set_rule_type("climbing")
    ed.set_param("seconds", 0.5)
    d = ed.to_dicts()[1]
    assert d == {"name": "fence_1", "type": "climbing", "line": [[0.0, 0.8], [0.5, 0.7], [1.0, 0.76]],
                 "normalized": True, "seconds": 0.5}  # a polyline kept in the rule's `line` field
    back = SceneEditor.from_rules(ed.to_rules(), (1000, 500))
    assert [(s.kind, s.type, len(s.points)) for s in back.shapes] == [("zone", "unknown_face", 3),
                                                                       ("fence", "climbing", 3)]
    # whole-frame forms (no zone) of the zone-optional types have nothing to draw
    for t in ("no_helmet", "phone_use", "face_match", "unknown_face", "fall", "abandoned_object"):
        assert rule_kind({"name": "x", "type": t}) is None
    assert rule_kind({"name": "x", "type": "climbing", "line": [[0, 0], [1, 1]]}) == "fence"
