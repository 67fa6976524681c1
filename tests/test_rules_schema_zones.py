"""Zones, lines and fences that cannot work are refused when the config loads, naming the rule and field."""
from __future__ import annotations

import pytest
import yaml

from pockit.config import ConfigError, load_config
from pockit.rules.geometry import geometry_problem, is_normalized, polygon_problem

pytestmark = pytest.mark.arm64smoke  # fast, no footage: scripts/arm64-smoke.sh runs them on emulated arm64


def _load(tmp_path, rule: dict):
    cfg = {"name": "z", "sources": [{"id": "a", "uri": "rtsp://h/s"}],
           "rules": [{"name": "ok", "type": "zone_enter", "zone": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}, rule]}
    p = tmp_path / "poc.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(p)


BAD = [
    ({"name": "bowtie", "type": "zone_enter", "zone": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]},
     "rules[1].zone", ("rule 'bowtie': zone is self-intersecting: edge zone[0]->zone[1] crosses or touches edge "
     "zone[2]->zone[3]")),
    ({"name": "spike", "type": "loitering", "dwell": 5, "zone": [[0, 0], [100, 0], [50, 0], [50, 80]]},
     "rules[1].zone", "rule 'spike': zone folds back on itself: edges zone[0]->zone[1] and zone[1]->zone[2] overlap"),
    ({"name": "flat", "type": "presence", "min_duration": 1, "zone": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]},
     "rules[1].zone", "rule 'flat': zone has zero area: all its points lie on one line"),
    ({"name": "two", "type": "crowd", "min_count": 2, "zone": [[0.1, 0.1], [0.5, 0.5], [0.1, 0.1]]},
     "rules[1].zone", "rule 'two': zone needs at least 3 distinct points, it has 2"),
    ({"name": "typo", "type": "zone_enter", "zone": [[0.1, 0.1], [1.2, 0.1], [0.9, 0.9]]},
     "rules[1].zone", ("rule 'typo': mixes fractions and pixels: zone[0] = [0.1, 0.1] has a coordinate between 0 and 1 "
     "while another is 1.2 > 1")),
    ({"name": "flagged", "type": "zone_enter", "normalized": True, "zone": [[0.1, 0.1], [1.2, 0.1], [0.9, 0.9]]},
     "rules[1].zone", "rule 'flagged': zone[1] = [1.2, 0.1] is outside [0, 1] but the rule says normalized: true"),
    ({"name": "tiny", "type": "zone_enter", "zone": [[1, 1], [2, 1], [2, 2]]},
     "rules[1].zone", "rule 'tiny': zone spans only 1 x 1 px (read as pixels: a coordinate exceeds 1)"),
    ({"name": "px", "type": "zone_enter", "normalized": False, "zone": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]},
     "rules[1].zone", "rule 'px': zone spans only 0.4 x 0.4 px (read as pixels: normalized: false)"),
    ({"name": "dot", "type": "line_crossing", "line": [[0.5, 0.5], [0.5, 0.5]]},
     "rules[1].line", "rule 'dot': line has a zero-length segment: line[0] and line[1] are the same point [0.5, 0.5]"),
    ({"name": "short", "type": "line_crossing", "line": [[10, 10], [11, 10]]},
     "rules[1].line", "rule 'short': line[0]->line[1] is only 1 px long"),
    ({"name": "fence", "type": "fence_crossing", "fence": [[0.1, 0.5], [0.4, 0.6], [0.4, 0.6], [0.9, 0.5]]},
     "rules[1].fence", "rule 'fence': fence has a zero-length segment: fence[1] and fence[2] are the same point"),
    ({"name": "nan", "type": "zone_enter", "zone": [[0.1, 0.1], [float("nan"), 0.1], [0.9, 0.9]]},
     "rules[1].zone", "rule 'nan': zone has a coordinate that is not a finite number"),
    ({"name": "box", "type": "object_removed", "region": [0.5, 0.5, 0.2, 0.9]},
     "rules[1].region", "rule 'box': region must be x1, y1, x2, y2 with x2 > x1 and y2 > y1"),
    ({"name": "bag", "type": "abandoned_object", "zone": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]},
     "rules[1].zone", "rule 'bag': zone is self-intersecting"),
]


@pytest.mark.parametrize("rule,field,message", BAD, ids=[b[0]["name"] for b in BAD])
def test_geometry_that_cannot_work_is_refused(tmp_path, rule, field, message):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, rule)
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'poc.yaml'}: invalid PoC configuration (1 problem(s)):")
    assert f"  - {field} (line " in text and message in text, text


GOOD = [
    {"name": "quad", "type": "zone_enter", "zone": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]},
    {"name": "closed", "type": "zone_exit", "zone": [[10, 10], [300, 10], [300, 200], [10, 200], [10, 10]]},
    {"name": "concave", "type": "zone_enter", "zone": [[0, 0], [100, 0], [100, 100], [50, 40], [0, 100]]},
    {"name": "px_edge", "type": "zone_enter", "zone": [[0, 0], [640, 0], [640, 480], [0, 480]]},
    {"name": "frame", "type": "zone_enter", "normalized": True, "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]},
    {"name": "line", "type": "line_crossing", "line": [[0.1, 0.8], [0.9, 0.8]]},
    {"name": "fence", "type": "fence_crossing", "fence": [[10, 300], [200, 250], [400, 300]]},
    {"name": "box", "type": "object_removed", "region": [100, 100, 180, 200]},
]


@pytest.mark.parametrize("rule", GOOD, ids=[g["name"] for g in GOOD])
def test_geometry_that_works_loads(tmp_path, rule):
    cfg = _load(tmp_path, rule)
    assert cfg.rules[1].name == rule["name"]


def test_the_reading_rule_is_explicit():
    assert is_normalized([[0, 0], [1, 1]], None) is True
    assert is_normalized([[0, 0], [2, 1]], None) is False
    assert is_normalized([[0, 0], [2, 1]], True) is True and is_normalized([[0, 0], [0.5, 1]], False) is False
    assert geometry_problem("zone", [[0, 0], [1, 0], [1, 1]], None) is None
    # a vertex touching another edge is self-intersection too
    assert "self-intersecting" in polygon_problem([[0, 0], [4, 0], [4, 4], [2, 0], [0, 4]])


def test_demo_configs_still_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "demos").glob("*.yaml")) + [root / "pockit" / "demos" / "quickstart.yaml"]
    assert len(files) >= 5
    for f in files:
        cfg = load_config(f)
        assert cfg.name
