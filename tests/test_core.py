import numpy as np
import pytest

from pockit.core import Detections, Event, box_iou, read_events, read_mot, write_events, write_mot
from pockit.core.mot import MotFormatError


def test_detections_basics():
    d = Detections(xyxy=[[0, 0, 10, 20], [5, 5, 15, 15]], scores=[0.9, 0.4], class_ids=[0, 1],
                   class_names={0: "person", 1: "bag"})
    assert len(d) == 2 and d.names == ["person", "bag"]
    assert d.track_ids.tolist() == [-1, -1]
    np.testing.assert_allclose(d.anchors("bottom_center"), [[5, 20], [10, 15]])
    np.testing.assert_allclose(d.anchors("center"), [[5, 10], [10, 10]])
    np.testing.assert_allclose(d.anchors("top_center"), [[5, 0], [10, 5]])
    assert d[d.scores > 0.5].names == ["person"]
    assert d.area.tolist() == [200, 100]
    m = Detections.merge([d, d[1]])
    assert len(m) == 3 and m.class_ids.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="scores has 1 entries"):
        Detections(xyxy=[[0, 0, 1, 1], [0, 0, 1, 1]], scores=[1])


def test_box_iou_hand_computed():
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou, [[50 / 150, 0, 1]])


def test_supervision_roundtrip():
    d = Detections(xyxy=[[0, 0, 10, 20]], scores=[0.9], class_ids=[2], track_ids=[7])
    back = Detections.from_supervision(d.to_supervision())
    assert back.track_ids.tolist() == [7] and back.class_ids.tolist() == [2]


def test_event_json_roundtrip(tmp_path):
    ev = Event(rule="r", type="line_crossing", source="cam", time=1.23456, frame=30, track_id=4,
               class_name="person", bbox=[1, 2, 3, 4], direction="in", count=3)
    d = ev.to_dict()
    assert d["class"] == "person" and "class_name" not in d and d["time"] == 1.2346
    path = write_events([ev], tmp_path / "e.jsonl")
    back = read_events(path)[0]
    assert back.class_name == "person" and back.direction == "in" and back.id == ev.id
    good = path.read_text()
    path.write_text(good + "{broken\n")  # a torn last line (a killed run) is skipped and reported
    evs = read_events(path)
    assert len(evs) == 1 and len(evs.skipped) == 1
    path.write_text("{broken\n" + good)  # a bad line elsewhere is an error naming file and line
    with pytest.raises(ValueError, match=r"e\.jsonl:1: bad event record"):
        read_events(path)


def test_mot_roundtrip_with_classes(tmp_path):
    tracks = {1: Detections(xyxy=[[10, 20, 30, 60]], scores=[0.8], class_ids=[3], track_ids=[5])}
    p = write_mot(tracks, tmp_path / "t.txt")
    assert p.read_text().strip() == "1,5,10.00,20.00,20.00,40.00,0.8000,3,-1,-1"
    back = read_mot(p)
    assert back[1].class_ids.tolist() == [3] and back[1].track_ids.tolist() == [5]
    np.testing.assert_allclose(back[1].xyxy, [[10, 20, 30, 60]])


def test_mot_gt_reading(tud_campus, pets):
    gt = read_mot(tud_campus / "gt" / "gt.txt", gt=True)
    assert len(gt) == 71 and sum(len(d) for d in gt.values()) == 359
    assert len({int(t) for d in gt.values() for t in d.track_ids}) == 8
    gt = read_mot(pets / "gt" / "gt.txt", gt=True)  # ground-plane columns are not classes
    assert sum(len(d) for d in gt.values()) == 620
    assert {int(c) for d in gt.values() for c in d.class_ids} == {0}


def test_mot_malformed_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("1,1,0,0,10,10,1,-1,-1,-1\n2,x,0,0\n")
    with pytest.raises(MotFormatError, match=r"bad\.txt:2"):
        read_mot(p)
