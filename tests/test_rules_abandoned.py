"""abandoned_object in foreground mode (static foreground + owner) on real footage: ABODA video 4, and
clips composed from real footage (benchmarks/scenarios/abandoned_synth.py): a ghost, lighting changes,
undetected crouching people (no alarm allowed) and a bag brought in and left (exactly one alarm)."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from pockit.core import Detections, Frame
from pockit.rules import RuleEngine
from pockit.sinks import SnapshotWriter

ROOT = Path(__file__).resolve().parents[1]
NAMES = {0: "person", 1: "backpack"}


def _synth():
    spec = importlib.util.spec_from_file_location("abandoned_synth", ROOT / "benchmarks/scenarios/abandoned_synth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def synth(shared_data, monkeypatch_module):
    monkeypatch_module.setenv("POCKIT_DATA_DIR", str(shared_data))
    return _synth()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def run_synth(synth, name, rules, bag_class: bool = False):
    """Feed a composed clip with the pasted people as person tracks (ids as in the clip)."""
    eng = RuleEngine(rules, name, class_names=NAMES)
    events = []
    bag = synth.bag_box()
    eng.boxes_at_events = []
    for i, (img, t, people) in enumerate(synth.clip(name)):
        boxes = [b for _, b in people]
        ids = [k for k, _ in people]
        cls = [0] * len(people)
        if bag_class and t >= 10:  # a bag-class detector sees the bag once it rests on the floor
            boxes.append(bag + [-1, -1, 1, 1])
            ids.append(50)
            cls.append(1)
        d = Detections(np.array(boxes, np.float64).reshape(-1, 4), track_ids=np.array(ids, np.int64),
                       class_ids=np.array(cls, np.int32), class_names=NAMES)
        new = eng.update(Frame(img, i, t, name), d, t, i)
        if new:
            eng.boxes_at_events.append(eng.alarm_boxes)
        events += new
    return events, eng


RULE = {"type": "abandoned_object", "name": "ab", "mode": "foreground"}


@pytest.mark.slow
@pytest.mark.parametrize("name,why", [
    # the place a person stood from the first frame: as large as that person, its outline in the background
    ("ghost", {"ghost", "person_sized"}),
    ("lighting", {"lighting", "no_owner"}),  # a global dimming and a patch of light
    ("crouch", {"frame_border", "moving", "no_owner"}),  # undetected people, at the edge and swaying
])
def test_composed_clips_raise_nothing(synth, name, why):
    events, eng = run_synth(synth, name, [RULE])
    assert events == []
    rule = eng.rules[0]
    judged = {k for k in rule.rejected if k != "none"} | {b.verdict for b in rule.blobs.values() if b.verdict}
    assert judged <= why, (why, rule.rejected)
    if name != "lighting":
        assert judged, rule.rejected  # a blob was there and was judged, not merely missed
    if name == "lighting":
        assert rule.fg.light_resets >= 1  # the large-area change was recognised as lighting


@pytest.mark.slow
def test_composed_left_bag_one_alarm_on_the_bag_with_its_owner(synth):
    fused = {**RULE, "name": "fused", "classes": ["backpack"]}
    events, eng = run_synth(synth, "left_bag", [RULE, fused], bag_class=True)
    assert [e.rule for e in events] == ["ab", "fused"]
    bag = synth.bag_box()
    for e in events:
        # the owner (track 1) is out of view from 20 s; unattended defaults to 5 s
        assert 24.9 <= e.time <= 26.0, e.time
        x1, y1, x2, y2 = e.bbox
        assert x1 <= bag[0] + 15 and x2 >= bag[2] - 15 and y1 <= bag[1] + 10 and y2 >= bag[3] - 5
        assert (x2 - x1) < 60 and (y2 - y1) < 50
        assert e.extra["owner"] == 1 and e.extra["mode"] == "foreground"
        assert 9.0 <= e.extra["appeared"] <= 11.0  # the bag reached the floor at 9-10 s
    assert events[0].class_name is None
    assert events[1].class_name == "backpack" and events[1].extra["detector_class"] == "backpack"
    # the red box is the object's
    assert [len(b["ab"]) for b in eng.boxes_at_events] == [1] and list(eng.boxes_at_events[0]["ab"][0]) == events[0].bbox


@pytest.mark.slow
def test_foreground_abandoned_bag_aboda_without_person_detections(shared_data, tmp_path):
    """No person detector: attendance falls back to motion around the blob (the demo's zone and times)."""
    cap = cv2.VideoCapture(str(shared_data / "video" / "ABODA_video4.avi"))
    assert cap.isOpened()
    fps = cap.get(cv2.CAP_PROP_FPS)
    # pavement only (normalized polygon): the road strip on the right carries traffic
    zone = [[0, 0], [0.69, 0], [0.83, 1], [0, 1]]
    rule = {"type": "abandoned_object", "name": "left_bag", "mode": "foreground", "zone": zone,
            "min_duration": 5.0, "unattended": 5.0}
    eng = RuleEngine([rule], "aboda")
    snaps = SnapshotWriter(tmp_path)
    events, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        img = cv2.resize(img, (360, 240), interpolation=cv2.INTER_AREA)  # 2x downscale keeps the test fast
        fr = Frame(img, i, i / fps, "aboda")
        for ev in eng.update(fr, Detections.empty(), fr.timestamp, i):
            snaps.save(fr, None, ev, eng)
            events.append(ev)
        i += 1
    assert i == 1169
    assert len(events) == 1
    ev = events[0]
    # the owner walks away around frames 600-700; the alarm must come after that, while the bag is there
    assert 700 <= ev.frame <= 900, ev.frame
    # the bag (checked by eye on the snapshot) lies at about x 224-256, y 182-212 in the 360x240 frame
    x1, y1, x2, y2 = ev.bbox
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert 225 <= cx <= 255 and 180 <= cy <= 212 and (x2 - x1) < 60 and (y2 - y1) < 60
    assert ev.extra["mode"] == "foreground" and ev.track_id is None and ev.extra["owner"] is None
    assert (tmp_path / ev.snapshot).exists()


def _scene(frames, person_at=None, seconds=1.0, fps=10.0):
    """Plain 160x120 frames: grey floor with texture; ``frames(i, img)`` draws on each."""
    rng = np.random.default_rng(1)
    base = np.clip(120 + rng.normal(0, 12, (120, 160, 1)), 0, 255).astype(np.uint8).repeat(3, 2)
    base = cv2.GaussianBlur(base, (3, 3), 0)
    for i in range(int(seconds * fps)):
        img = base.copy()
        people = frames(i, img) or []
        img = np.clip(img.astype(np.int16) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
        yield i, i / fps, img, people


def _run_scene(draw, seconds, rule=None):
    eng = RuleEngine([rule or {**RULE, "min_duration": 2.0, "unattended": 2.0}], "s", class_names=NAMES)
    evs = []
    for i, t, img, people in _scene(draw, seconds=seconds):
        d = Detections(np.array([b for _, b in people], np.float64).reshape(-1, 4),
                       track_ids=np.array([k for k, _ in people], np.int64), class_names=NAMES)
        evs += eng.update(Frame(img, i, t, "s"), d, t, i)
    return evs, eng.rules[0]


def test_object_without_an_owner_never_alarms():
    """A box that appears with no person track near it (a parked thing, a missed person) is not abandoned."""
    def draw(i, img):
        if i >= 10:
            img[60:80, 70:90] = 30
    evs, rule = _run_scene(draw, 12.0)
    assert evs == []
    assert [b.verdict for b in rule.blobs.values()] == ["no_owner"]


def test_object_left_by_its_owner_alarms_once_then_owner_return_rearms():
    def draw(i, img):
        people = []
        if 10 <= i:
            img[60:80, 70:90] = 30  # the object, dropped at 1.0 s
        if i < 15:
            people.append((7, np.array([88, 20, 110, 82.0])))  # owner beside it, leaves at 1.5 s
        elif 80 <= i < 85:
            people.append((7, np.array([88, 20, 110, 82.0])))  # comes back at 8.0 s for 0.5 s
        return people
    evs, _ = _run_scene(draw, 14.0)
    # a static blob from 3.0 s (dropped at 1.0 + min_duration 2.0); the owner left at 1.5 s -> away from
    # the blob's first frame -> alarm 2 s later; back 8.0-8.4 s, counted present 1 s after its last box
    # (FG_OWNER_SLACK) -> away from 9.5 s -> alarm at 11.5 s
    assert [(e.time, e.extra["owner"], e.extra["unattended_since"]) for e in evs] == [(5.0, 7, 3.0), (11.5, 7, 9.5)]
    assert evs[0].bbox[0] <= 72 and evs[0].bbox[2] >= 88


def _low_contrast_bag(i, img):
    """An object only 10 grey levels brighter than the floor (its texture kept) dropped at 1.0 s by person 7
    (gone at 1.5 s); a backpack detection on it from 1.2 s. Rows: (track id, box, class id)."""
    rows = []
    if i >= 10:
        img[60:80, 70:90] = np.clip(img[60:80, 70:90].astype(np.int16) + 10, 0, 255).astype(np.uint8)
    if i < 15:
        rows.append((7, [88, 20, 110, 82.0], 0))
    if i >= 12:
        rows.append((50, [69, 59, 91, 81.0], 1))
    return rows


def _run_classes(draw, seconds, rule):
    eng = RuleEngine([rule], "s", class_names=NAMES)
    evs = []
    for i, t, img, rows in _scene(draw, seconds=seconds):
        d = Detections(np.array([b for _, b, _ in rows], np.float64).reshape(-1, 4),
                       track_ids=np.array([k for k, _, _ in rows], np.int64),
                       class_ids=np.array([c for _, _, c in rows], np.int32), class_names=NAMES)
        evs += eng.update(Frame(img, i, t, "s"), d, t, i)
    return evs, eng.rules[0]


def test_object_classes_confirm_a_blob_the_lighting_test_would_reject():
    base = {**RULE, "min_duration": 2.0, "unattended": 2.0}
    evs, rule = _run_classes(_low_contrast_bag, 8.0, base)  # option unset: the detection changes nothing
    assert evs == [] and [b.verdict for b in rule.blobs.values()] == ["lighting"]
    evs, rule = _run_classes(_low_contrast_bag, 8.0, {**base, "object_classes": ["handbag"]})  # other class
    assert evs == [] and [b.verdict for b in rule.blobs.values()] == ["lighting"]
    evs, rule = _run_classes(_low_contrast_bag, 8.0, {**base, "object_classes": ["backpack", "suitcase"]})
    assert rule.mode == "foreground"
    # blob static from 3.0 s (dropped 1.0 + min_duration 2.0), owner gone since 1.5 s -> 2 s later
    assert [(e.time, e.class_name, e.extra["owner"], e.extra["detector_class"]) for e in evs] == [
        (5.0, "backpack", 7, "backpack")]
    assert evs[0].bbox[0] <= 72 and evs[0].bbox[2] >= 88
