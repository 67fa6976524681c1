"""pockit.sinks.draw: the one renderer (zones/lines/boxes for outputs, live view and notebooks), trails, heatmap,
zone occupancy; pixel checks on synthetic frames."""
import numpy as np
import pytest

from pockit.core import Detections
from pockit.notebook.display import draw_scene
from pockit.notebook.scene import SceneEditor, Shape
from pockit.rules import RuleEngine
from pockit.sinks.draw import (
    SELECTED,
    ZONE,
    Heatmap,
    Trails,
    ZoneCounter,
    annotate,
    draw_shapes,
)


def dets(boxes, ids, cls=None, scores=None, names=None):
    n = len(boxes)
    return Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4), track_ids=ids,
                      class_ids=cls if cls is not None else [0] * n,
                      scores=scores if scores is not None else [0.9] * n, class_names=names or {0: "person"})


def test_trail_keeps_the_last_points_in_the_tracks_colour_and_forgets_lost_tracks():
    tr = Trails(length=5, forget=1.0)
    for i in range(9):  # feet of track 3 at x = 20, 40, ... 180 on y = 150
        tr.update(dets([[10 + 20 * i, 100, 30 + 20 * i, 150]], [3]), i * 0.1, (200, 200))
    tr.update(dets([[0, 0, 10, 10]], [-1]), 0.85)  # untracked boxes leave no trail
    assert list(tr.points) == [3] and [p[0] for p in tr.points[3]] == [100.0, 120.0, 140.0, 160.0, 180.0]
    img = np.full((200, 200, 3), 60, np.uint8)
    tr.draw(img)
    assert tuple(int(v) for v in img[150, 170]) == (178, 114, 0)  # palette colour of id 3 (RGB 0,114,178)
    assert tuple(int(v) for v in img[150, 110]) == (178, 114, 0)
    assert (img[150, :95] == 60).all()  # older points are gone: nothing left of x = 100
    assert (img[:140] == 60).all() and (img[160:] == 60).all()  # only along the path (thickest 3 px at the head)
    tr.update(Detections.empty(), 1.95)  # 1.1 s after the last sighting
    assert tr.points == {} and tr.seen == {}
    with pytest.raises(ValueError, match="at least 2 points"):
        Trails(length=1)


def test_heatmap_red_where_objects_stay_blue_where_they_passed_and_decays():
    hm = Heatmap(half_life=10.0, cell=8)
    for i in range(20):  # one object stands with its feet at (40, 100); another passes (120, 100) once
        hm.update(dets([[30, 40, 50, 100]], [1]), (160, 120), i * 0.0)
    hm.update(dets([[110, 40, 130, 100]], [2]), (160, 120), 0.0)
    img = np.full((120, 160, 3), 60, np.uint8)
    hm.draw(img)
    b, _, r = (int(v) for v in img[100, 40])
    assert r > 150 and b < 60  # the hot spot: the colour map's red end, half blended
    b, _, r = (int(v) for v in img[100, 120])
    assert b > r + 20 and b > 70  # visited once: the colour map's blue end, fainter
    assert (img[:50] == 60).all() and (img[:, 82:94] == 60).all()  # never visited: the frame untouched
    total = float(hm.grid.sum())
    hm.update(Detections.empty(), (160, 120), 10.0)  # one half-life later, nobody there
    assert float(hm.grid.sum()) == pytest.approx(total / 2, rel=1e-6)
    hm.update(Detections.empty(), (320, 240), 11.0)  # another frame size: starts again
    assert hm.grid.shape == (31, 41) and not hm.grid.any()


def test_zone_counter_counts_what_the_zone_rules_see():
    rules = [
        {"name": "right", "type": "zone_enter", "zone": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "classes": ["person"],
         "zone_name": "right half"},
        {"name": "sure", "type": "crowd", "zone": [[100, 0], [200, 0], [200, 100], [100, 100]], "min_count": 2,
         "min_score": 0.5, "anchor": "center"},
        {"name": "gate", "type": "line_crossing", "line": [[0, 0], [10, 10]]},  # no zone: not counted
        {"name": "off", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1]], "enabled": False},
    ]
    names = {0: "person", 1: "car"}
    zc = ZoneCounter(rules, names)
    d = dets([[110, 20, 130, 80],   # person, feet (120, 80) in 'right', centre (120, 50) in 'sure'
              [150, 60, 170, 100],  # person, feet on the border y = 100 of 'right' (inside), centre (160, 80) in 'sure'
              [160, 10, 180, 30],   # car: not a person; centre in 'sure'
              [140, 10, 150, 30],   # person, score 0.3: counts for 'right' (no min_score), not for 'sure'
              [120, 50, 140, 90],   # untracked: counted nowhere
              [10, 10, 30, 90]],    # person on the left
             [1, 2, 3, 4, -1, 5], cls=[0, 0, 1, 0, 0, 0], scores=[0.9, 0.9, 0.9, 0.3, 0.9, 0.9], names=names)
    assert zc.count(d, (200, 100)) == {"right": 3, "sure": 3}
    assert zc.names == {"right": "right half", "sure": "sure"}
    assert zc.count(Detections.empty(), (200, 100)) == {"right": 0, "sure": 0}


def test_one_renderer_for_run_outputs_and_the_notebook_scene():
    img = np.full((240, 320, 3), 60, np.uint8)
    zone = [[200, 20], [300, 20], [300, 200], [200, 200]]
    eng = RuleEngine([{"name": "yard", "type": "zone_enter", "zone": zone}], "cam", frame_size=(320, 240))
    run_pic = annotate(img, None, eng)
    scene = SceneEditor((320, 240), [Shape("zone", [list(map(float, p)) for p in zone], {"name": "yard",
                                                                                        "type": "zone_enter"},
                                           finished=True)])
    scene.active = None
    nb_pic = draw_scene(img, scene)
    inside = (slice(60, 190), slice(210, 290))  # the zone's fill, away from the label and the vertex dots
    assert (run_pic[inside] == nb_pic[inside]).all()
    assert tuple(int(v) for v in run_pic[120, 250]) == tuple(round(0.18 * c + 0.82 * 60) for c in ZONE)
    assert (run_pic[:, :190] == 60).all() and (nb_pic[:, :190] == 60).all()
    scene.active = 0  # the selected shape in the editor's orange, drawn the same way
    sel = draw_scene(img, scene)
    assert tuple(int(v) for v in sel[120, 250]) == tuple(round(0.18 * c + 0.82 * 60) for c in SELECTED)


def test_zone_label_carries_the_occupancy_and_lines_their_counts():
    img = np.full((240, 320, 3), 60, np.uint8)
    shapes = [{"kind": "zone", "rule": "yard", "name": "yard", "points": np.array([[200, 20], [300, 20], [300, 200],
                                                                                    [200, 200]])}]
    base = img.copy()
    draw_shapes(base, shapes)
    with_count = img.copy()
    draw_shapes(with_count, shapes, occupancy={"yard": 4})
    changed = (base != with_count).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert len(ys) and ys.min() >= 20 and ys.max() <= 45 and xs.min() >= 230  # only after the name in the label
    line = [{"kind": "line", "name": "gate", "points": np.array([[100.0, 200.0], [100.0, 40.0]]),
             "counts": {"in": 2, "out": 0}}]
    a, b = img.copy(), img.copy()
    draw_shapes(a, line)
    draw_shapes(b, [{**line[0], "counts": {"in": 3, "out": 0}}])
    assert (a != b).any()
    # the arrow points to the 'in' side, where the rules' cross(B - A, p - A) > 0: for A->B going up the image,
    # x > 100 (walking from the left of A->B to its right is 'in')
    left = (a[110:130, 60:95] != 60).any(axis=2).sum()
    right = (a[110:130, 106:140] != 60).any(axis=2).sum()
    assert right > 20 and left == 0
