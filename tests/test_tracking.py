import numpy as np

from pockit.config import TrackerConfig
from pockit.core import Detections, read_mot
from pockit.tracking import make_tracker


def _box(x, y):
    return [x, y, x + 40, y + 100]


def test_two_objects_keep_ids_and_confirmation():
    tr = make_tracker(TrackerConfig(minimum_consecutive_frames=2), fps=10)
    outs = []
    for i in range(10):
        d = Detections(xyxy=[_box(10 + 5 * i, 50), _box(300 - 5 * i, 60)], scores=[0.9, 0.9])
        outs.append(tr.update(d, i / 10))
    assert len(outs[0]) == 0  # not yet confirmed on the first frame
    ids = {tuple(sorted(o.track_ids.tolist())) for o in outs[2:]}
    assert len(ids) == 1 and len(next(iter(ids))) == 2
    tid = int(outs[-1].track_ids[0])
    h = tr.history(tid)
    assert h.shape[1] == 5 and h[-1, 0] == 0.9 and len(h) >= 8


def test_lost_then_removed():
    tr = make_tracker(TrackerConfig(minimum_consecutive_frames=1, lost_track_seconds=0.5), fps=10)
    for i in range(3):
        tr.update(Detections(xyxy=[_box(10 + 2 * i, 50)], scores=[0.9]), i / 10)
    (tid,) = tr.active_ids
    tr.update(Detections.empty(), 0.3)
    assert tr.lost_ids == [tid]
    for i in range(4, 12):
        tr.update(Detections.empty(), i / 10)
    assert tr.tracks[tid].state == "removed" and tr.active_ids == [] and tr.lost_ids == []


def test_ground_truth_boxes_give_one_track_per_identity(tud_campus):
    gt = read_mot(tud_campus / "gt" / "gt.txt", gt=True)
    tr = make_tracker(TrackerConfig(minimum_consecutive_frames=1, track_activation_threshold=0.1), fps=25)
    for f in sorted(gt):
        tr.update(gt[f], (f - 1) / 25)
    assert tr.total_tracks == 8  # TUD-Campus has 8 identities


def test_class_ids_survive_tracking():
    tr = make_tracker(TrackerConfig(minimum_consecutive_frames=1), fps=10)
    d = Detections(xyxy=[_box(10, 50), _box(300, 60)], scores=[0.9, 0.9], class_ids=[0, 24])
    out = None
    for i in range(3):
        out = tr.update(d, i / 10)
    assert sorted(out.class_ids.tolist()) == [0, 24]
    np.testing.assert_allclose(np.sort(out.xyxy[:, 0]), [10, 300], atol=1)
