"""The rule-type registry, the per-frame view and the Held helper (issue 15)."""
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from pockit.core import Detections
from pockit.rules import RuleEngine, registry
from pockit.rules import schema as S
from pockit.rules.base import FrameView, Held, Rule, RuleBase, RuleView
from pockit.rules.geometry import Polygon

pytestmark = pytest.mark.arm64smoke

TYPES = ("abandoned_object", "climbing", "crowd", "fall", "fence_crossing", "line_crossing", "loitering",
         "no_helmet", "object_removed", "phone_use", "presence", "zone_enter", "zone_exit")


def test_every_list_of_rule_types_comes_from_the_registry():
    from pockit.notebook.scene import MODELS

    assert set(TYPES) <= set(S.RULE_TYPES) and list(S.RULE_TYPES) == sorted(S.RULE_TYPES)
    assert S.RULE_TYPES == tuple(registry.specs())
    assert MODELS == S.SCHEMAS and all(S.SCHEMAS[t] is registry.specs()[t].schema for t in S.RULE_TYPES)
    assert S.LoiteringRule is S.SCHEMAS["loitering"] and S.ClimbingRule is S.SCHEMAS["climbing"]
    adapter = TypeAdapter(S.RuleConfig)
    r = adapter.validate_python({"type": "climbing", "name": "w", "line": [[0, 10], [100, 10]]})
    assert type(r) is S.ClimbingRule and r.seconds == 1.0
    with pytest.raises(ValidationError, match="does not match any of the expected tags: 'abandoned_object', "
                                              "'climbing', 'crowd'"):
        adapter.validate_python({"type": "climb", "name": "w"})
    eng = RuleEngine([{"type": t, "name": t, **_minimal(t)} for t in TYPES], "cam", frame_size=(640, 480))
    assert [type(r).type for r in eng.rules] == list(TYPES)
    assert all(isinstance(r, registry.specs()[r.type].impl) for r in eng.rules)


def _minimal(t):
    zone = {"zone": [[0, 0], [100, 0], [100, 100]]}
    return {"crowd": {**zone, "min_count": 2}, "loitering": {**zone, "dwell": 5}, "presence": {**zone, "min_duration": 1},
            "zone_enter": zone, "zone_exit": zone, "line_crossing": {"line": [[0, 50], [100, 50]]},
            "fence_crossing": {"fence": [[0, 50], [100, 50]]}, "climbing": {"line": [[0, 50], [100, 50]]}}.get(t, {})


def test_register_refuses_bad_declarations(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class NoType(RuleBase):
        pass

    with pytest.raises(TypeError, match="NoType needs a field  type: Literal"):
        registry.register(NoType)

    class Loiter2(RuleBase):
        type: Literal["loitering"]

    with pytest.raises(ValueError, match="rule type 'loitering' registered twice"):
        registry.register(Loiter2)(type("Other", (Rule,), {}))

    class Fresh(RuleBase):
        type: Literal["fresh_test_type"]

    with pytest.raises(TypeError, match="decorates a Rule subclass"):
        registry.register(Fresh)(object)
    impl = registry.register(Fresh)(type("FreshRule", (Rule,), {"step": lambda self, v: []}))
    assert impl.type == "fresh_test_type" and registry.make(Fresh(name="f", type="fresh_test_type")).name == "f"
    with pytest.raises(ValueError, match="unknown rule type 'nope'"):
        registry.make(type("Cfg", (), {"type": "nope"})())


def test_rules_never_reach_into_the_engine():
    for p in sorted((Path(registry.__file__).parent / "types").glob("*.py")):
        src = p.read_text()
        for private in ("self.engine", "engine._", "RuleEngine", "_inside_cache", "_mask_cache", "_anchors"):
            assert private not in src, (p.name, private)


def test_held_counts_true_breaks_on_false_ignores_none_and_restarts_after_a_gap():
    h = Held()
    h.observe(True, 0.0)
    h.observe(None, 0.5)
    assert not h.fire(0.5, 1.0) and h.due(1.0 - 1e-7, 1.0) and h.fire(1.0, 1.0) and not h.fire(1.5, 1.0)
    h.observe(False, 2.0)
    assert (h.since, h.fired) == (None, False)
    h.observe(True, 3.0)
    assert h.fire(4.0, 1.0)
    h.observe(False, 4.1, rearm=False)
    h.observe(True, 4.2)
    assert h.fired and not h.fire(6.0, 1.0)  # not re-armed
    g = Held()
    for t in (0.0, 0.5, 2.4):
        g.observe(True, t, max_gap=2.0)
    assert g.since == 0.0  # 1.9 s hole: the same run
    g.fired = True
    g.observe(True, 5.0, max_gap=2.0)
    assert (g.since, g.fired, g.duration(5.5)) == (5.0, False, 0.5)  # 2.6 s hole: a new run, re-armed


def test_frame_view_shares_anchors_selection_zone_membership_and_reads_attributes():
    names = {0: "person", 1: "bag"}
    d = Detections(np.array([[10, 10, 30, 50], [600, 400, 700, 520], [50, 50, 60, 60]], np.float32),
                   class_ids=[0, 0, 1], track_ids=[1, 2, -1], class_names=names,
                   data={"ppe": np.array(["Without Helmet", "", "ppe.With Helmet"], dtype=object)})
    fv = FrameView(1.5, 15, None, d, names, "cam", (640, 480))
    a = fv.anchors("bottom_center")
    assert a.tolist() == [[20, 50], [640, 480], [55, 60]] and not a.flags.writeable  # clipped, read-only
    assert fv.anchors("bottom_center") is a
    m = fv.selection(np.array([0]), 0.0)
    assert m.tolist() == [True, True, False] and fv.selection(np.array([0]), 0.0) is m
    poly = Polygon(np.array([[0, 0], [100, 0], [100, 100], [0, 100.0]]))
    inside = fv.inside(poly, b"k", "bottom_center")
    assert inside.tolist() == [True, False, True] and fv.inside(poly, b"k", "bottom_center") is inside
    assert not inside.flags.writeable and not m.flags.writeable  # shared between rules: nobody may write
    v = RuleView.of(fv, m, "bottom_center")
    assert (v.t, v.index, v.ids.tolist(), v.names) == (1.5, 15, [1, 2], names)
    assert v.inside(poly, b"k").tolist() == [True, False]
    assert v.attr("ppe").tolist() == ["Without Helmet", ""] and v.attr("face") is None
    assert v.labels("ppe") == ["Without Helmet", None] and v.labels("face") == [None, None]
    assert RuleView.of(fv, None, "bottom_center").labels("ppe") == ["Without Helmet", None, "With Helmet"]
    with pytest.raises(AttributeError):
        v.t = 3.0  # read-only view
