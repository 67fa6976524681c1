"""phone_use: exact events on synthetic person tracks carrying an attached phone (data["phone"], data["phone.xyxy"])."""

import logging

import numpy as np
import pytest

from pockit.core import Detections
from pockit.rules import RuleEngine

pytestmark = pytest.mark.arm64smoke

FPS = 10.0
NAMES = {0: "person"}
RULE = {"type": "phone_use", "name": "phone", "classes": ["person"]}
PERSON = [100.0, 100.0, 140.0, 200.0]  # 100 px tall: the upper 60 % ends at y 160
UP, LOW, EDGE = (130.0, 120.0), (130.0, 180.0), (130.0, 160.0)  # phone centres


def run(obs, rule=RULE, attr="phone", with_box=True):
    """obs: per frame (label, phone centre) of track 1; ("", None) = nothing attached, None = track not reported."""
    eng = RuleEngine([rule], "cam", frame_size=(640, 480), class_names=NAMES)
    out = []
    for i, o in enumerate(obs):
        rows = [] if o is None else [o]
        data = {attr: np.array([r[0] for r in rows], dtype=object)}
        if with_box:
            data[f"{attr}.xyxy"] = np.array([[c[0] - 5, c[1] - 8, c[0] + 5, c[1] + 8] if c else [np.nan] * 4
                                             for _, c in rows], np.float32).reshape(-1, 4)
        d = Detections(np.array([PERSON] * len(rows), np.float32).reshape(-1, 4), class_ids=[0] * len(rows),
                       track_ids=[1] * len(rows), class_names=NAMES, data=data)
        out += eng.update(None, d, i / FPS, i)
    return out, eng


def brief(evs):
    return [(e.frame, round(e.time, 3), e.track_id, e.duration) for e in evs]


PHONE_UP, PHONE_LOW, NONE = ("cell phone", UP), ("cell phone", LOW), ("", None)


def test_phone_held_up_for_two_seconds_raises_once():
    evs, eng = run([PHONE_UP] * 50)
    assert brief(evs) == [(20, 2.0, 1, 2.0)]
    e = evs[0]
    assert e.type == "phone_use" and e.bbox == PERSON and e.class_name == "person"
    assert e.extra == {"attribute": "phone", "phone": "cell phone", "since": 0.0, "phone_box": [125.0, 112.0, 135.0, 128.0]}
    assert eng.alarmed == {"phone": {1}}


def test_phone_low_in_the_box_is_not_use_and_breaks_the_episode():
    assert run([PHONE_LOW] * 50)[0] == []
    assert brief(run([("cell phone", EDGE)] * 25)[0]) == [(20, 2.0, 1, 2.0)]  # the boundary counts as up
    # up 0-0.9 s, low at 1.0 s, up again from 1.1 s -> 3.1 s
    assert brief(run([PHONE_UP] * 10 + [PHONE_LOW] + [PHONE_UP] * 30)[0]) == [(31, 3.1, 1, 2.0)]
    assert brief(run([PHONE_UP] * 30, rule={**RULE, "upper": 0.1})[0]) == []  # centre at 20 % of the box


def test_missed_detections_neither_count_nor_reset_but_a_long_absence_does():
    assert brief(run([PHONE_UP, NONE, NONE] * 10)[0]) == [(21, 2.1, 1, 2.1)]
    assert brief(run([PHONE_UP] * 5 + [None] * 30 + [PHONE_UP] * 25)[0]) == [(55, 5.5, 1, 2.0)]
    assert brief(run([PHONE_UP, ("book", UP)] * 15)[0]) == [(20, 2.0, 1, 2.0)]  # another class: neutral


def test_each_episode_once_and_the_cooldown():
    obs = [PHONE_UP] * 30 + [PHONE_LOW] * 3 + [PHONE_UP] * 25
    assert brief(run(obs)[0]) == [(20, 2.0, 1, 2.0), (53, 5.3, 1, 2.0)]
    assert brief(run(obs, rule={**RULE, "cooldown": 10})[0]) == [(20, 2.0, 1, 2.0)]


def test_zone_and_missing_attribute(caplog):
    zone = [[300, 0], [600, 0], [600, 400], [300, 400]]
    assert run([PHONE_UP] * 30, rule={**RULE, "zone": zone})[0] == []
    with caplog.at_level(logging.WARNING):
        assert run([PHONE_UP] * 30, with_box=False)[0] == []
    assert "no attribute 'phone' with its box (phone.xyxy)" in caplog.text
