"""Exact semantics of every rule on synthetic trajectories (anchor = bottom_center unless stated)."""

import numpy as np
import pytest

from pockit.core import Detections, Frame
from pockit.rules import RuleEngine
from pockit.rules.geometry import crosses_polyline, points_in_polygon, polyline_side

pytestmark = pytest.mark.arm64smoke  # fast, no footage: scripts/arm64-smoke.sh runs them on emulated arm64

FPS = 10.0
NAMES = {0: "person", 1: "bag", 2: "Fall", 3: "car"}


def box_at(x, y, w=10.0, h=20.0):
    """Box whose bottom-centre anchor is (x, y)."""
    return [x - w / 2, y - h, x + w / 2, y]


def run(rules, frames, n=None, frame_size=(640, 480), names=NAMES, fps=FPS, finish=True):
    """frames: {index: [(track_id, box, class_id, score), ...]} -> (events, engine)."""
    eng = RuleEngine(rules, "cam", frame_size=frame_size, class_names=names)
    n = n if n is not None else max(frames) + 1
    out = []
    for i in range(n):
        rows = frames.get(i, [])
        d = Detections(xyxy=np.array([r[1] for r in rows], np.float32).reshape(-1, 4),
                       scores=[r[3] if len(r) > 3 else 1.0 for r in rows],
                       class_ids=[r[2] if len(r) > 2 else 0 for r in rows],
                       track_ids=[r[0] for r in rows], class_names=names)
        out += eng.update(None, d, i / fps, i)
    if finish:
        out += eng.finish((n - 1) / fps, n - 1)
    return out, eng


def path(tid, points, start=0, cls=0, score=1.0, **kw):
    """{frame: [(tid, box, cls, score)]} for a point sequence starting at frame ``start`` (None = absent)."""
    return {start + k: [(tid, box_at(*p, **kw), cls, score)] for k, p in enumerate(points) if p is not None}


def merge(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, []).extend(v)
    return out


def brief(evs):
    return [(e.type, e.frame, e.track_id, e.direction) for e in evs]


ZONE = [[100, 100], [300, 100], [300, 300], [100, 300]]
IN, OUT = (200, 200), (50, 200)


# --------------------------------------------------------------------------------------------- geometry
def test_point_in_polygon_matches_opencv_and_counts_boundary_inside():
    import cv2

    rng = np.random.default_rng(0)
    poly = np.array([[10, 10], [200, 30], [150, 120], [220, 220], [20, 200], [60, 100]], np.float64)
    pts = rng.uniform(0, 240, (5000, 2))
    ours = points_in_polygon(pts, poly)
    ref = np.array([cv2.pointPolygonTest(poly.astype(np.float32), (float(x), float(y)), False) >= 0 for x, y in pts])
    assert (ours == ref).all()
    edge = np.array([[10, 10], [105, 20], [20, 200], [200, 30], [40, 150]])  # vertices and edge points
    assert points_in_polygon(edge[:4], poly).all()


def test_side_and_segment_crossing():
    line = np.array([[0.0, 0.0], [100.0, 0.0]])
    assert polyline_side(np.array([[50, 10], [50, -10], [150, 0]]), line).tolist() == [1, -1, 0]
    assert crosses_polyline((50, -5), (50, 5), line)
    assert not crosses_polyline((150, -5), (150, 5), line)  # beyond the segment: half-plane must not count
    assert crosses_polyline((100, -5), (100, 5), line)  # through the end point (closed segment)


# --------------------------------------------------------------------------------------------- zones
def test_zone_enter_twice_and_exit():
    pts = [OUT, OUT, IN, IN, IN, OUT, OUT, IN, IN, OUT]
    rules = [dict(type="zone_enter", name="enter", zone=ZONE), dict(type="zone_exit", name="exit", zone=ZONE)]
    evs, eng = run(rules, path(7, pts))
    assert brief(evs) == [("zone_enter", 2, 7, None), ("zone_exit", 5, 7, None), ("zone_enter", 7, 7, None),
                          ("zone_exit", 9, 7, None)]
    assert [e.time for e in evs] == [0.2, 0.5, 0.7, 0.9]
    assert evs[0].zone == "enter" and evs[0].class_name == "person" and evs[0].bbox == box_at(*IN)


def test_zone_enter_min_frames_debounce_and_first_seen_inside():
    # track 1: flickers in for 2 frames (no event with min_frames=3), then stays: event at the run's first frame
    # track 2: first seen inside -> enters at its first frame (after 3 inside observations)
    t1 = [OUT, IN, IN, OUT, IN, IN, IN, IN, OUT, IN, OUT, OUT, OUT, IN, IN, IN]
    t2 = [IN, IN, IN, IN]
    evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, min_frames=3),
                  dict(type="zone_exit", name="x", zone=ZONE, min_frames=3)], merge(path(1, t1), path(2, t2, start=5)))
    assert brief(evs) == [("zone_enter", 4, 1, None), ("zone_enter", 5, 2, None), ("zone_exit", 10, 1, None),
                          ("zone_enter", 13, 1, None)]
    assert evs[0].extra == {"raised_frame": 6}


def test_zone_enter_gaps_do_not_break_runs_and_exit_never_fires_without_enter():
    pts = [OUT, IN, None, None, IN, OUT, OUT]  # absent frames 2, 3
    evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, min_frames=2),
                  dict(type="zone_exit", name="x", zone=ZONE, min_frames=2)], merge(path(1, pts), path(2, [OUT] * 7)))
    assert brief(evs) == [("zone_enter", 1, 1, None), ("zone_exit", 5, 1, None)]


def test_cooldown_suppresses_but_state_rearms():
    pts = [OUT, IN, OUT, IN, OUT, OUT, OUT, OUT, IN, OUT, IN]  # enters at 1, 3, 8, 10
    evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, cooldown=0.5)], path(1, pts))
    assert [e.frame for e in evs] == [1, 8]  # 3 is 0.2 s after 1; 10 is 0.2 s after 8


def test_class_filter_min_score_and_unconfirmed_tracks():
    rows = merge(path(1, [OUT, IN], cls=0), path(2, [OUT, IN], cls=3), path(3, [OUT, IN], cls=0, score=0.3),
                 path(-1, [OUT, IN], cls=0))
    evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, classes=["person"], min_score=0.5)], rows)
    assert brief(evs) == [("zone_enter", 1, 1, None)]
    evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, classes=[3])], rows)
    assert brief(evs) == [("zone_enter", 1, 2, None)]


def test_normalized_coordinates_equal_pixels():
    pts = [OUT, IN, OUT, IN]
    zn = [[x / 640, y / 480] for x, y in ZONE]
    a, _ = run([dict(type="zone_enter", name="z", zone=ZONE)], path(1, pts))
    b, _ = run([dict(type="zone_enter", name="z", zone=zn)], path(1, pts))  # auto-detected
    c, _ = run([dict(type="zone_enter", name="z", zone=zn, normalized=True)], path(1, pts))
    assert brief(a) == brief(b) == brief(c) == [("zone_enter", 1, 1, None), ("zone_enter", 3, 1, None)]
    with pytest.raises(ValueError, match="frame size is unknown"):
        run([dict(type="zone_enter", name="z", zone=zn)], path(1, pts), frame_size=None)


def test_normalized_frame_size_taken_from_first_frame():
    eng = RuleEngine([dict(type="zone_enter", name="z", zone=[[0, 0.5], [1, 0.5], [1, 1], [0, 1]])], "cam")
    img = np.zeros((100, 200, 3), np.uint8)
    d = Detections(xyxy=[box_at(100, 80)], track_ids=[1])
    evs = eng.update(Frame(img, 0, 0.0), d, 0.0, 0)
    assert [e.frame for e in evs] == [0]
    assert eng.shapes[0]["points"].tolist() == [[0, 50], [200, 50], [200, 100], [0, 100]]


def test_zone_touching_frame_edge_holds_boxes_running_off_the_image():
    edge_zone = [[0, 400], [640, 400], [640, 480], [0, 480]]  # bottom strip up to the frame edge
    pts = [(320, 300), (320, 470), (320, 480), (320, 520), (320, 300)]  # box bottom below the image at frame 3
    evs, _ = run([dict(type="zone_enter", name="z", zone=edge_zone), dict(type="zone_exit", name="x", zone=edge_zone)],
                 path(1, pts))
    assert brief(evs) == [("zone_enter", 1, 1, None), ("zone_exit", 4, 1, None)]


def test_anchor_choice():
    # box bottom inside the zone, centre and top outside
    rows = {0: [(1, [195, 70, 205, 120], 0)]}
    for anchor, expect in (("bottom_center", 1), ("center", 0), ("top_center", 0)):
        evs, _ = run([dict(type="zone_enter", name="z", zone=ZONE, anchor=anchor)], rows)
        assert len(evs) == expect, anchor


# --------------------------------------------------------------------------------------------- lines
LINE = [[100, 200], [300, 200]]  # A->B to the right; positive side = below (y larger) in image coordinates


def test_line_crossing_directions_and_counts():
    above, below = (200, 150), (200, 250)
    pts = [above, above, below, below, above, below]
    evs, eng = run([dict(type="line_crossing", name="l", line=LINE)], path(1, pts))
    assert brief(evs) == [("line_crossing", 2, 1, "in"), ("line_crossing", 4, 1, "out"), ("line_crossing", 5, 1, "in")]
    assert eng.counts["l"]["in"] == 2 and eng.counts["l"]["out"] == 1
    evs, eng = run([dict(type="line_crossing", name="l", line=LINE, direction="out")], path(1, pts))
    assert brief(evs) == [("line_crossing", 4, 1, "out")]
    assert eng.counts["l"] == {"in": 2, "out": 1, "events": 1}  # counts keep both directions


def test_line_is_a_segment_not_a_half_plane():
    pts = [(400, 150), (400, 250), (200, 250), (200, 150)]  # crosses the infinite line beyond B, then back over the segment
    evs, eng = run([dict(type="line_crossing", name="l", line=LINE)], path(1, pts))
    assert brief(evs) == [("line_crossing", 3, 1, "out")]
    assert eng.counts["l"]["in"] == 0


def test_oscillation_on_the_line_debounced():
    ys = [150, 190, 205, 195, 206, 194, 207, 230, 250, 260]  # wobbles across y=200, settles below at frame 6
    pts = [(200, y) for y in ys]
    evs, eng = run([dict(type="line_crossing", name="l", line=LINE, min_frames=2)], path(1, pts))
    assert brief(evs) == [("line_crossing", 6, 1, "in")]
    assert eng.counts["l"] == {"in": 1, "out": 0, "events": 1}
    evs, eng = run([dict(type="line_crossing", name="l", line=LINE, min_frames=1)], path(1, pts))
    assert [e.frame for e in evs] == [2, 3, 4, 5, 6]  # each real crossing once, never per frame on one side
    assert eng.counts["l"]["in"] - eng.counts["l"]["out"] == 1


def test_point_exactly_on_line_is_neutral():
    pts = [(200, 150), (200, 200), (200, 200), (200, 250), (200, 200), (200, 260)]
    evs, _ = run([dict(type="line_crossing", name="l", line=LINE)], path(1, pts))
    assert brief(evs) == [("line_crossing", 3, 1, "in")]


def test_id_switch_mid_crossing_gives_no_event():
    rows = merge(path(1, [(200, 150), (200, 180)]), path(2, [(200, 220), (200, 250)], start=2))
    evs, _ = run([dict(type="line_crossing", name="l", line=LINE)], rows)
    assert evs == []


def test_line_cooldown_and_debounce_time_is_first_frame_on_new_side():
    pts = [(200, 150), (200, 250), (200, 260), (200, 150), (200, 140), (200, 250), (200, 260)]
    evs, _ = run([dict(type="line_crossing", name="l", line=LINE, min_frames=2, cooldown=0.35)], path(1, pts))
    assert [(e.frame, e.direction, e.time) for e in evs] == [(1, "in", 0.1), (5, "in", 0.5)]  # out at 3 in cooldown


def test_fence_crossing_polyline_counts_a_vertex_once():
    fence = [[100, 200], [200, 200], [300, 100]]
    pts = [(200, 150), (200, 250), (150, 150), (280, 80), (300, 180)]
    evs, eng = run([dict(type="fence_crossing", name="f", fence=fence)], path(1, pts))
    # through the vertex (200,200): one "in"; back over segment 1: "out"; (150,150)->(280,80) stays on the
    # negative side; (280,80)->(300,180) crosses segment 2 (x+y=400) at x=286.7: "in"
    assert brief(evs) == [("fence_crossing", 1, 1, "in"), ("fence_crossing", 2, 1, "out"), ("fence_crossing", 4, 1, "in")]
    assert eng.counts["f"] == {"in": 2, "out": 1, "events": 3}


# --------------------------------------------------------------------------------------------- dwell
def test_loitering_one_event_per_visit_at_dwell_time():
    pts = [OUT] + [IN] * 25 + [OUT] * 3 + [IN] * 12
    evs, _ = run([dict(type="loitering", name="lo", zone=ZONE, dwell=1.0)], path(4, pts))
    assert [(e.frame, e.duration, e.extra["since"]) for e in evs] == [(11, 1.0, 0.1), (39, 1.0, 2.9)]


def test_loitering_number_of_entries_variant():
    pts = [OUT, IN, OUT, IN, OUT, IN, OUT, IN, OUT] + [OUT] * 30 + [IN]
    evs, _ = run([dict(type="loitering", name="lo", zone=ZONE, dwell=100, max_entries=3, window=1.0)], path(4, pts))
    assert [(e.frame, e.count, e.extra["reason"]) for e in evs] == [(5, 3, "entries")]


def test_presence_class_specific():
    rows = merge(path(1, [IN] * 10, cls=0), path(2, [IN] * 10, cls=1))
    evs, _ = run([dict(type="presence", name="p", zone=ZONE, classes=["bag"], min_duration=0.5)], rows)
    assert [(e.frame, e.track_id, e.class_name) for e in evs] == [(5, 2, "bag")]


def test_crowd_event_end_and_rearm():
    counts = [1, 3, 3, 3, 3, 2, 3, 3, 3, 3, 3, 3]
    rows = {}
    for i, c in enumerate(counts):
        rows[i] = [(k, box_at(150 + 10 * k, 200), 0, 1.0) for k in range(c)] + [(9, box_at(*OUT), 0, 1.0)]
    # hold 0: only the tracks observed on the frame count (hold: tests/test_rules_crowd.py)
    evs, eng = run([dict(type="crowd", name="c", zone=ZONE, min_count=3, min_duration=0.3, hold=0)], rows)
    got = [(e.frame, e.count, e.end is not None, e.track_id) for e in evs]
    assert got == [(4, 3, False, [0, 1, 2]), (5, 3, True, None), (9, 3, False, [0, 1, 2]), (11, 3, True, None)]
    assert evs[1].extra["of"] == evs[0].id and evs[1].duration == pytest.approx(0.4)
    assert evs[3].extra["reason"] == "end_of_stream"


def test_fall_by_class_and_by_aspect_ratio():
    stand = lambda x: [x - 10, 100, x + 10, 200]  # noqa: E731
    lying = lambda x: [x - 40, 170, x + 40, 200]  # noqa: E731
    rows = {}
    for i in range(12):
        rows[i] = [(1, stand(100) if i < 3 or i == 6 else lying(100), 0), (2, stand(300), 2 if i >= 4 else 0)]
    evs, _ = run([dict(type="fall", name="f", min_duration=0.3)], rows)
    assert [(e.frame, e.track_id) for e in evs] == [(7, 2), (10, 1)]
    evs, _ = run([dict(type="fall", name="f", min_duration=0.3, aspect_ratio=None)], rows)
    assert [(e.frame, e.track_id) for e in evs] == [(7, 2)]


# --------------------------------------------------------------------------------------------- abandoned / removed
def test_abandoned_object_detector_mode():
    bag = [200, 280, 230, 300]  # height 20 -> owner distance 2 x 20 = 40 px
    rows = {}
    for i in range(60):
        r = [(5, bag, 1)]
        if i < 20:
            r.append((1, [235, 200, 265, 300], 0))  # owner beside the bag
        elif i < 30:
            r.append((1, [235 + 20 * (i - 19), 200, 265 + 20 * (i - 19), 300], 0))  # walks away
        rows[i] = r
    rule = dict(type="abandoned_object", name="ab", classes=["bag"], min_duration=1.0, unattended=2.0)
    evs, eng = run([rule], rows)
    # owner beyond 40 px from the bag centre from frame 21 ((295-215)>40 at i=21? dx = 235+40-215 = 60)
    # last near at frame 20 (x1=255 -> dx 40 <= 40) -> unattended since 2.0 s -> event at 4.0 s
    assert [(e.frame, e.track_id, e.class_name) for e in evs] == [(40, 5, "bag")]
    assert eng.rules[0].mode == "detector"


def test_rules_needing_images_are_idle_on_replay(caplog):
    rows = path(1, [IN] * 5, cls=1)
    evs, _ = run([dict(type="object_removed", name="r", region=[0, 0, 50, 50]),
                  dict(type="abandoned_object", name="a", mode="foreground")], rows)
    assert evs == []
    assert sum("idle on replayed tracks" in r.message for r in caplog.records) == 2


def test_object_removed_configured_region():
    eng = RuleEngine([dict(type="object_removed", name="r", region=[40, 40, 80, 80], min_duration=0.3)], "cam")
    evs = []
    for i in range(20):
        img = np.full((120, 160, 3), 90, np.uint8)
        if i < 5 or i >= 15:
            img[45:75, 45:75] = (20, 200, 240)  # the guarded object (back from frame 15)
            img[55:65, 55:65] = 0
        evs += eng.update(Frame(img, i, i / FPS), Detections.empty(), i / FPS, i)
    assert [(e.frame, e.bbox) for e in evs] == [(8, [40, 40, 80, 80])]


def test_engine_alarmed_and_shapes():
    eng = RuleEngine([dict(type="zone_enter", name="z", zone=ZONE), dict(type="line_crossing", name="l", line=LINE)],
                     "cam", frame_size=(640, 480))
    eng.update(None, Detections(xyxy=[box_at(*OUT)], track_ids=[3]), 0.0, 0)
    eng.update(None, Detections(xyxy=[box_at(*IN)], track_ids=[3]), 0.1, 1)
    assert eng.alarmed == {"z": {3}, "l": set()}
    kinds = [(s["rule"], s["kind"]) for s in eng.shapes]
    assert kinds == [("z", "zone"), ("l", "line")]
    eng.update(None, Detections(xyxy=[box_at(*OUT)], track_ids=[3]), 3.0, 30)
    assert eng.alarmed["z"] == set()
