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
    # removed tracks are forgotten (memory stays flat on long runs) but still counted
    assert tid not in tr.tracks and tr.active_ids == [] and tr.lost_ids == [] and tr.total_tracks == 1
    assert tr.history(tid).shape == (0, 5)


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


def _reappear(reid: float, shift: float, gap: int = 4, fps: float = 10, old_stays: bool = False):
    """A small standing person (16x40 px) unseen for ``gap`` frames, found again ``shift`` px to the right:
    IoU with the old box < 0.1, so the library starts a new track."""
    tr = make_tracker(TrackerConfig(reid_distance=reid), fps=fps)
    ids = []
    for i in range(8 + gap + 8):
        boxes = []
        if i < 8 or i >= 8 + gap or old_stays:
            boxes.append([300, 200, 316, 240])
        if i >= 8 + gap:
            boxes.append([300 + shift, 200, 316 + shift, 240])
            if not old_stays:
                boxes.pop(0)
        out = tr.update(Detections(xyxy=boxes, scores=[0.9] * len(boxes)) if boxes else Detections.empty(), i / fps)
        ids.append(sorted(out.track_ids.tolist()))
    return ids, tr


def test_reidentification_keeps_the_id_of_a_track_lost_nearby():
    ids, tr = _reappear(0.0, 15)  # off: a second id after the gap
    assert ids[7] == [1] and ids[8:12] == [[]] * 4 and ids[12] == [] and ids[13:] == [[2]] * 7  # 2nd frame confirms
    ids, tr = _reappear(0.5, 15)  # 15 px = 0.375 box heights from where it was lost: same person
    assert ids[13:] == [[1]] * 7 and tr.reidentified == 1 and tr.total_tracks == 1
    assert tr.history(1)[-1, 1] == 315  # the history goes on under the old id


def test_reidentification_refuses_far_late_or_coexisting_tracks():
    ids, tr = _reappear(0.5, 30)  # 0.75 box heights away: someone else
    assert ids[13:] == [[2]] * 7 and tr.reidentified == 0
    ids, tr = _reappear(0.5, 15, gap=16)  # lost 1.6 s > lost_track_seconds (1.5): removed, not re-identified
    assert ids[-1] == [2] and tr.reidentified == 0
    ids, tr = _reappear(0.5, 15, old_stays=True)  # both visible at once: two people
    assert ids[-1] == [1, 2] and tr.reidentified == 0


def test_memory_stays_flat_over_many_short_tracks():
    """A camera that runs for weeks sees thousands of people: removed tracks must not pile up."""
    tr = make_tracker(TrackerConfig(minimum_consecutive_frames=1, lost_track_seconds=0.2), fps=10)
    t = 0.0
    for k in range(60):
        x = 20 + (k % 5) * 100
        for i in range(3):
            tr.update(Detections(xyxy=[_box(x + i, 50)], scores=[0.9]), t)
            t += 0.1
        t += 1.0  # gone long enough to be removed
    tr.update(Detections.empty(), t)
    assert len(tr.tracks) <= 2 and tr.total_tracks == 60
    assert len(tr._ids) <= 2 and len(tr._owner) <= 2
