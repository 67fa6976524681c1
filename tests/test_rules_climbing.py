"""climbing: exact events on synthetic tracks (wall top y = 200 from x = 100 to x = 300; boxes 60 px tall,
so the band around the line is +-6 px with the default margin 0.1)."""

import numpy as np
import pytest

from pockit.config import ConfigError, load_config
from pockit.core import Detections
from pockit.rules import RuleEngine
from pockit.rules.types.climbing import wall_y

pytestmark = pytest.mark.arm64smoke

FPS = 10.0
WALL = [[100, 200], [300, 200]]
RULE = {"type": "climbing", "name": "wall", "line": WALL, "classes": ["person"]}


def run(positions, rule=RULE, tid=1, h=60.0):
    """positions: one (x, y) feet point per frame (None = track not reported) -> events."""
    eng = RuleEngine([rule], "cam", frame_size=(640, 480), class_names={0: "person"})
    out = []
    for i, p in enumerate(positions):
        rows = [] if p is None else [[p[0] - 10, p[1] - h, p[0] + 10, p[1]]]
        d = Detections(np.array(rows, np.float32).reshape(-1, 4), class_ids=[0] * len(rows),
                       track_ids=[tid] * len(rows), class_names={0: "person"})
        out += eng.update(None, d, i / FPS, i)
    return out, eng


def brief(evs):
    return [(e.frame, round(e.time, 3), e.track_id, e.extra["reason"], e.duration) for e in evs]


def test_wall_y_interpolates_and_takes_the_highest_segment():
    line = np.array([[0, 100], [100, 50], [200, 150], [150, 0.0]])  # the last segment turns back over x 150-200
    ys = wall_y(np.array([0, 50, 100, 150, 175, 250, -1]), line)
    assert ys[:5].tolist() == [100, 75, 50, 0, 75]  # x 175: 125 on the 2nd segment, 75 on the 3rd
    assert np.isnan(ys[5:]).all()


def test_slow_climb_raises_once_when_the_feet_stay_above():
    # feet at y 300 for 1 s, rising 10 px per frame (the band 194-206 is crossed at y 200), then on top at 190
    climb = [(200, 300)] * 10 + [(200, 300 - 10 * k) for k in range(1, 11)] + [(200, 190)] * 30
    evs, eng = run(climb)
    # frame 19 (y 200) is in the band; above from frame 20 (t 2.0); held for 1.0 s -> frame 30
    assert brief(evs) == [(30, 3.0, 1, "held", 1.0)]
    assert evs[0].extra == {"reason": "held", "below_at": 1.8, "since": 2.0}
    assert evs[0].type == "climbing" and evs[0].direction == "up" and evs[0].line == "wall"
    assert evs[0].class_name == "person" and evs[0].bbox == [190.0, 130.0, 210.0, 190.0]
    assert eng.alarmed == {"wall": {1}}  # red box while on top


def test_fast_climb_between_two_frames_raises_at_once_then_rearms_after_coming_down():
    up = [(200, 300)] * 5 + [(200, 150)] * 5  # below -> above in one step
    evs, _ = run(up + [(200, 300)] * 5 + up)
    assert brief(evs) == [(5, 0.5, 1, "crossing", 0.0), (20, 2.0, 1, "crossing", 0.0)]


def test_cooldown_suppresses_the_second_climb():
    up = [(200, 300)] * 5 + [(200, 150)] * 5
    evs, _ = run(up + [(200, 300)] * 5 + up, rule={**RULE, "cooldown": 60})
    assert [e.frame for e in evs] == [5]


def test_walking_along_below_the_wall_and_in_the_band_raises_nothing():
    along = [(100 + 5 * k, 260 + 5 * (k % 3)) for k in range(40)]
    band = [(100 + 5 * k, 200 + (3 if k % 2 else -3)) for k in range(40)]  # occluded feet jittering on the line
    assert run(along)[0] == []
    assert run(band)[0] == []


def test_outside_the_extent_raises_nothing_even_around_the_end_of_the_wall():
    past = [(350, 100 + 10 * k) for k in range(30)] + [(50, 400 - 10 * k) for k in range(30)]
    assert run(past)[0] == []
    # below the wall, around its right end (x > 300), then behind it (feet above the line) for 3 s
    around = [(250, 300)] * 5 + [(310 + k, 300 - 20 * k) for k in range(8)] + [(290, 150)] * 30
    assert run(around)[0] == []


def test_far_behind_the_wall_from_the_start_raises_nothing():
    behind = [(120 + 4 * k, 150) for k in range(50)]
    assert run(behind)[0] == []


def test_lost_track_during_the_climb_needs_the_feet_below_within_history_seconds():
    # below until frame 9, unseen 1.0 s (frames 10-19), above from frame 20: the previous observation was
    # below, so this is a crossing at once
    evs, _ = run([(200, 300)] * 10 + [None] * 10 + [(200, 190)] * 15)
    assert brief(evs) == [(20, 2.0, 1, "crossing", 0.0)]
    # below, then in the band (0.5 s), then above: held path; the band does not break the history
    evs, _ = run([(200, 300)] * 10 + [(200, 202)] * 5 + [(200, 190)] * 15)
    assert brief(evs) == [(25, 2.5, 1, "held", 1.0)]
    # the same with a band stay longer than history_seconds: nothing
    evs, _ = run([(200, 300)] * 10 + [(200, 202)] * 30 + [(200, 190)] * 15, rule={**RULE, "history_seconds": 2.0})
    assert evs == []


def test_other_classes_and_margin_zero():
    climb = [(200, 300)] * 10 + [(200, 201), (200, 199)] + [(200, 190)] * 10
    eng_rule = {**RULE, "margin": 0}
    evs, _ = run(climb, rule=eng_rule)
    assert brief(evs) == [(11, 1.1, 1, "crossing", 0.0)]  # no band: 201 -> 199 crosses
    evs, _ = run(climb, rule={**eng_rule, "classes": ["car"]})
    assert evs == []


def test_config_errors_name_the_field(tmp_path):
    p = tmp_path / "poc.yaml"
    p.write_text("sources: [{id: c, uri: x.mp4}]\nrules:\n  - name: w\n    type: climbing\n    line: [[10, 10]]\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "rules[0].line (line 5)" in str(e.value)
    p.write_text("sources: [{id: c, uri: x.mp4}]\nrules:\n  - name: w\n    type: climbing\n"
                 "    line: [[10, 10], [200, 10]]\n    seconds: -1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "rules[0].seconds (line 6)" in str(e.value)
