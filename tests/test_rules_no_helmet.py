"""no_helmet: exact events on synthetic person tracks carrying an attached PPE attribute (data["ppe"])."""

import logging

import numpy as np
import pytest

from pockit.core import Detections
from pockit.rules import RuleEngine

pytestmark = pytest.mark.arm64smoke

FPS = 10.0
NAMES = {0: "person", 1001: "Without Helmet"}
RULE = {"type": "no_helmet", "name": "ppe", "classes": ["person"]}
BARE, HAT = "Without Helmet", "With Helmet"
PERSON = [100.0, 100.0, 140.0, 200.0]
HEAD = [110.0, 100.0, 130.0, 120.0]


def run(labels, rule=RULE, box=PERSON, attr="ppe", extra_rows=()):
    """labels: per frame the attached class of track 1 ("" = nothing attached, None = track not reported)."""
    eng = RuleEngine([rule], "cam", frame_size=(640, 480), class_names=NAMES)
    out = []
    for i, lab in enumerate(labels):
        rows = [] if lab is None else [(1, box, 0, lab)]
        rows += [r[1] for r in extra_rows if r[0] == i]
        data = {attr: np.array([r[3] for r in rows], dtype=object),
                f"{attr}.xyxy": np.array([HEAD if r[3] else [np.nan] * 4 for r in rows], np.float32).reshape(-1, 4)}
        d = Detections(np.array([r[1] for r in rows], np.float32).reshape(-1, 4), class_ids=[r[2] for r in rows],
                       track_ids=[r[0] for r in rows], class_names=NAMES, data=data)
        out += eng.update(None, d, i / FPS, i)
    return out, eng


def brief(evs):
    return [(e.frame, round(e.time, 3), e.track_id, e.duration) for e in evs]


def test_bare_head_for_two_seconds_raises_once_on_the_person():
    evs, eng = run([BARE] * 60)
    assert brief(evs) == [(20, 2.0, 1, 2.0)]
    e = evs[0]
    assert e.type == "no_helmet" and e.class_name == "person" and e.bbox == PERSON and e.zone is None
    assert e.extra == {"attribute": "ppe", "values": {BARE: 21}, "since": 0.0, "head_box": HEAD}
    assert eng.alarmed == {"ppe": {1}}  # red box on the person


def test_frames_with_nothing_attached_neither_count_nor_reset():
    evs, _ = run([BARE, ""] * 15)  # bare on even frames only
    assert brief(evs) == [(20, 2.0, 1, 2.0)]
    assert evs[0].extra["values"] == {BARE: 11}
    evs, _ = run([BARE] * 5 + [""] * 19 + [BARE] * 5)  # a 1.9 s hole: the same episode
    assert brief(evs) == [(24, 2.4, 1, 2.4)]


def test_a_long_absence_starts_a_new_episode():
    evs, _ = run([BARE] * 10 + [""] * 25 + [BARE] * 25)  # last bare 0.9 s, next 3.5 s: gap 2.6 s > 2 s
    assert brief(evs) == [(55, 5.5, 1, 2.0)]
    evs, _ = run([BARE] * 10 + [None] * 25 + [BARE] * 25)  # the same when the track is not reported
    assert brief(evs) == [(55, 5.5, 1, 2.0)]


def test_a_helmet_seen_resets_and_each_episode_raises_once():
    labels = [BARE] * 10 + [HAT] + [BARE] * 40 + [HAT] * 5 + [BARE] * 25
    evs, _ = run(labels)
    # helmet at 1.0 s: bare again from 1.1 s -> 3.1 s; helmet 5.1-5.5 s, bare from 5.6 s -> 7.6 s
    assert brief(evs) == [(31, 3.1, 1, 2.0), (76, 7.6, 1, 2.0)]
    evs, _ = run(labels, rule={**RULE, "cooldown": 30})
    assert brief(evs) == [(31, 3.1, 1, 2.0)]


def test_other_classes_and_prefixed_names():
    evs, _ = run(["Person", BARE] * 15)  # another class of the PPE model: neutral
    assert brief(evs) == [(21, 2.1, 1, 2.0)]
    assert evs[0].extra["values"] == {"Person": 10, BARE: 11}
    evs, _ = run(["ppe.without helmet"] * 25)  # renamed duplicate class, other case
    assert brief(evs) == [(20, 2.0, 1, 2.0)]
    evs, _ = run([BARE] * 25, rule={**RULE, "bare": ["no-hat"]})
    assert evs == []


def test_zone_outside_breaks_and_inside_counts():
    zone = [[0, 0], [300, 0], [300, 300], [0, 300]]
    evs, _ = run([BARE] * 30, rule={**RULE, "zone": zone}, box=[400.0, 300.0, 440.0, 400.0])
    assert evs == []
    evs, _ = run([BARE] * 30, rule={**RULE, "zone": zone, "zone_name": "site"})
    assert brief(evs) == [(20, 2.0, 1, 2.0)] and evs[0].zone == "site"


def test_lone_head_detection_is_not_a_person_and_missing_attribute_warns(caplog):
    lone = [(i, (2, [300.0, 100.0, 320.0, 120.0], 1001, BARE)) for i in range(40)]
    evs, _ = run([""] * 40, extra_rows=lone)
    assert evs == []  # the head track (class "Without Helmet") is not in classes
    evs, _ = run([""] * 40, rule={**RULE, "classes": None}, extra_rows=lone)
    assert brief(evs) == [(20, 2.0, 2, 2.0)]  # without a class filter it counts as itself
    with caplog.at_level(logging.WARNING):
        evs, _ = run([BARE] * 30, attr="helmets")
    assert evs == [] and "no attribute 'ppe'" in caplog.text


def test_through_the_tracker_the_attribute_follows_the_person():
    """Detections as MultiDetector gives them (data["ppe"] on the person rows) -> default tracker -> rule."""
    from pockit.tracking import make_tracker

    tracker = make_tracker(None, fps=FPS)
    eng = RuleEngine([RULE], "cam", frame_size=(640, 480), class_names=NAMES)
    evs, first = [], None
    for i in range(50):
        x = 100 + 2 * i  # walks right; a second person with a helmet walks left
        d = Detections(np.array([[x, 100, x + 40, 200], [500 - 2 * i, 100, 540 - 2 * i, 200]], np.float32),
                       scores=[0.9, 0.9], class_ids=[0, 0], class_names=NAMES,
                       data={"ppe": np.array([BARE, HAT], dtype=object),
                             "ppe.xyxy": np.array([[x + 10, 100, x + 30, 120], [510 - 2 * i, 100, 530 - 2 * i, 120]],
                                                  np.float32)})
        tracked = tracker.update(d, i / FPS)
        if first is None and len(tracked):
            first = i
            assert sorted(tracked.data["ppe"].tolist()) == [HAT, BARE]
        evs += eng.update(None, tracked, i / FPS, i)
    assert first is not None and first <= 3
    assert [(e.frame, e.extra["values"]) for e in evs] == [(first + 20, {BARE: 21})]
    assert evs[0].bbox[0] == pytest.approx(100 + 2 * (first + 20), abs=2.0)  # the bare-headed one, not the other
