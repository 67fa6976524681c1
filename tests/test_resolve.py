"""pockit.resolve: the one place URIs, class filters and box matches are resolved (and its callers use it)."""
import numpy as np
import pytest

from pockit.core import Detections
from pockit.resolve import (
    UriError,
    class_error,
    find_class,
    is_stream,
    local_media,
    match_boxes,
    match_classes,
    match_detections,
    resolve_classes,
    resolve_path,
    resolve_uri,
)


# -- URIs -----------------------------------------------------------------------------------------
def test_data_uri_under_the_data_dir(tmp_path, monkeypatch):
    (tmp_path / "video").mkdir()
    (tmp_path / "video" / "a.mp4").write_bytes(b"x")
    monkeypatch.setenv("POCKIT_DATA_DIR", str(tmp_path))
    assert resolve_uri("data:video/a.mp4") == str(tmp_path / "video" / "a.mp4")
    with pytest.raises(UriError) as ei:
        resolve_uri("data:video/b.mp4", field="sources[1].uri")
    assert str(ei.value) == (f"sources[1].uri: data:video/b.mp4: not found under the data directory {tmp_path} "
                             "(set POCKIT_DATA_DIR)")
    assert isinstance(ei.value, FileNotFoundError)


def test_media_uri_errors_name_the_field():
    with pytest.raises(UriError, match=r"^sources\[0\]\.uri: media:no-such-clip: 'no-such-clip' is neither an existing "
                                       r"file nor a known media name"):
        resolve_uri("media:no-such-clip", field="sources[0].uri")
    with pytest.raises(UriError, match=r"^uri: media:person-yolov8s: 'person-yolov8s' is a model, not media"):
        resolve_uri("media:person-yolov8s")


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg_dir = tmp_path / "poc"
    cfg_dir.mkdir()
    (cfg_dir / "clip.mp4").write_bytes(b"x")
    assert resolve_path("clip.mp4", cfg_dir) == str(cfg_dir / "clip.mp4")
    assert resolve_uri("clip.mp4", cfg_dir) == str(cfg_dir / "clip.mp4")
    assert resolve_path("missing.mp4", cfg_dir) == "missing.mp4"  # the opener names it in its error
    (tmp_path / "here.mp4").write_bytes(b"x")
    assert resolve_path("here.mp4", cfg_dir) == "here.mp4"  # found from the working directory first
    assert local_media("clip.mp4", cfg_dir) == cfg_dir / "clip.mp4"
    assert local_media("missing.mp4", cfg_dir) is None


@pytest.mark.parametrize("uri", [0, "2", "rtsp://cam/1", "HTTP://x/y.mjpg", "/dev/video0", "v4l2:///dev/video1",
                                 "gst:videotestsrc", "videotestsrc ! appsink"])
def test_streams_pass_through(uri):
    assert is_stream(uri)
    assert resolve_uri(uri, "/nowhere") == uri
    assert local_media(uri, "/nowhere") is None


def test_file_paths_are_not_streams():
    assert not any(is_stream(p) for p in ["clip.mp4", "/data/a.avi", "data:video/a.mp4", "media:car-detection"])


# -- class filters ----------------------------------------------------------------------------------
NAMES = {0: "person", 1: "Bag", 2: "bag", 3: "7"}


def test_one_case_rule():
    assert match_classes(["PERSON", " person "], NAMES) == ([0], [])
    assert match_classes(["Bag"], NAMES) == ([1], [])  # exact case wins
    assert match_classes(["bag"], NAMES) == ([2], [])
    assert match_classes(["BAG"], NAMES) == ([1], [])  # otherwise the lowest id of the names that fold alike
    assert match_classes(["7"], NAMES) == ([3], [])  # a digit string that is a class name is that name
    assert match_classes([1, "2", np.int64(0)], NAMES) == ([0, 1, 2], [])  # otherwise ids
    assert match_classes(["dog", 9], NAMES) == ([], ["dog", 9])
    assert match_classes([9], NAMES, check_ids=False) == ([9], [])
    assert match_classes([9, "dog"], {}) == ([9], ["dog"])  # no names: ids pass, names cannot match
    assert (find_class(" BAG ", NAMES), find_class("bag", NAMES), find_class("dog", NAMES)) == (1, 2, None)


def test_dataset_classes_map_to_model_classes_by_the_same_rule():
    from pockit.data import Dataset
    from pockit.data.classes import map_to_model

    ds = map_to_model(Dataset([], ["PERSON", "bag"]), {0: "person", 1: "Bag", 2: "bag"})
    assert ds.class_names == ["person", "Bag", "bag"]
    with pytest.raises(ValueError, match=r"dataset classes \['dog'\] have no model class"):
        map_to_model(Dataset([], ["dog"]), {0: "person"})


def test_one_error_message_naming_the_field():
    assert resolve_classes(None, NAMES, field="model.classes") is None
    assert resolve_classes(["person", "bag"], NAMES, field="model.classes") == [0, 2]
    with pytest.raises(ValueError) as ei:
        resolve_classes(["person", "dog"], {0: "person", 1: "car"}, field="model.classes", owner="m.onnx")
    assert str(ei.value) == "model.classes: 'dog' is not a class of m.onnx; its classes are 0=person, 1=car"
    with pytest.raises(ValueError, match=r"^rules\.x\.classes: 5 is not a class of the model; its classes are 0=a$"):
        resolve_classes([5], {0: "a"}, field="rules.x.classes")
    assert class_error("f", "x", {}) == "f: 'x' is not a class of the model; its classes are (unknown: give ids)"


def test_rule_class_filter_warns_with_the_same_message(caplog):
    from pockit.rules import RuleEngine

    rules = [{"name": "z", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]], "classes": ["PERSON", "dog"]}]
    eng = RuleEngine(rules, "cam", frame_size=(100, 100), class_names={0: "person", 1: "car"})
    dets = Detections([[10, 10, 20, 20], [30, 30, 40, 40]], [0.9, 0.9], [0, 1], track_ids=[1, 2],
                      class_names={0: "person", 1: "car"})
    with caplog.at_level("WARNING"):
        eng.update(None, dets, 0.0, 0)
    msgs = [r.getMessage() for r in caplog.records]
    assert "rule 'z': classes: 'dog' is not a class of the model; its classes are 0=person, 1=car; it matches nothing" \
        in msgs


# -- box matching -----------------------------------------------------------------------------------
def test_match_boxes_score_order_and_iou_order_differ():
    gt = np.array([[0, 0, 10, 10]], float)
    pr = np.array([[0, 0, 10, 12], [0, 0, 10, 10]], float)  # IoU 10/12 and 1.0
    assert match_boxes(pr, gt, 0.5, scores=np.array([0.9, 0.3])) == [(0, 0, pytest.approx(10 / 12))]  # COCO
    assert match_boxes(pr, gt, 0.5) == [(1, 0, 1.0)]  # best pair first
    assert match_boxes(pr, gt, 0.9, scores=np.array([0.9, 0.3])) == [(1, 0, 1.0)]  # below thr: the next one
    assert match_boxes(pr[:0], gt) == [] and match_boxes(pr, gt[:0]) == []


def test_match_boxes_one_to_one_and_same_class():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    b = np.array([[0, 0, 10, 10], [51, 50, 61, 60]], float)
    pairs = match_boxes(a, b, 0.5)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (2, 1)]  # each box of b at most once
    assert match_boxes(a, b, 0.5, classes=(np.array([1, 0, 0]), np.array([0, 0]))) == [
        (1, 0, 1.0), (2, 1, pytest.approx(90 / 110))]
    x = Detections(a, [0.1, 0.9, 0.5], [1, 0, 0])
    y = Detections(b, [0.9, 0.9], [0, 0])
    assert match_detections(x, y, by_score=True, same_class=False) == [(1, 0, 1.0), (2, 1, pytest.approx(90 / 110))]


def test_int8_vs_fp16_comparison_uses_the_shared_matcher():
    from pockit.deploy.tensorrt import compare_precisions as from_old_path
    from pockit.evaluate.agreement import compare_precisions

    assert from_old_path is compare_precisions
    a = Detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])
    b = Detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.7, 0.8], [0, 0])  # second box: other class
    r = compare_precisions([a], [b])
    assert (r.fp16_boxes, r.int8_boxes, r.matched) == (2, 2, 1)
    assert r.mean_score_drift == pytest.approx(-0.2) and r.mean_iou == 1.0
    with pytest.raises(ValueError, match="2 FP16 frames vs 1 INT8 frames"):
        compare_precisions([a, a], [b])
