"""Label formats: sample sets read identically, round trips, each broken variant's report entry."""
import json
from pathlib import Path

import numpy as np
import pytest

from pockit.data import (Dataset, read_coco, read_mot_dataset, read_voc, read_yolo, to_coco_dict, write_coco, write_voc,
                         write_yolo)
from pockit.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "datasets" / "samples"
BROKEN = SAMPLES / "broken"
TRUTH = json.loads((SAMPLES / "truth.json").read_text())
CLASSES = TRUTH["classes"]


def as_truth(ds: Dataset) -> dict:
    return {Path(im.file).name: sorted([ds.class_names[c], *map(float, b)] for b, c in zip(im.xyxy, im.class_ids))
            for im in ds.images}


def expected() -> dict:
    return {f: sorted([o[0], *map(float, o[1:])] for o in v["boxes"]) for f, v in TRUTH["images"].items()}


@pytest.mark.parametrize("reader,path", [(read_voc, SAMPLES / "voc"), (read_coco, SAMPLES / "coco" / "annotations.json"),
                                         (read_yolo, SAMPLES / "yolo" / "data.yaml")])
def test_sample_sets_match_truth(reader, path):
    ds = reader(path)
    assert ds.class_names == CLASSES
    assert len(ds) == 6 and ds.n_boxes == 10
    got = as_truth(ds)
    for f, boxes in expected().items():
        np.testing.assert_allclose([b[1:] for b in got[f]], [b[1:] for b in boxes], atol=1e-3) if boxes else None
        assert [b[0] for b in got[f]] == [b[0] for b in boxes]
    assert all((im.width, im.height) == (320, 240) for im in ds)


def test_sample_metadata():
    voc, coco, yolo = read_voc(SAMPLES / "voc"), read_coco(SAMPLES / "coco"), read_yolo(SAMPLES / "yolo")
    assert voc.report.ok and coco.report.ok
    # the background image has an empty YOLO label file: reported, kept
    assert yolo.report.counts() == {"empty_label": 1}
    assert yolo.report.issues[0].image == "cam2_000100.jpg" and yolo.report.issues[0].action == "kept"
    assert {im.file: im.split for im in yolo} == {f: v["split"] for f, v in TRUTH["images"].items()}
    for ds in (voc, coco):
        assert {im.file: (im.source, im.frame, im.timestamp) for im in ds} == {
            f: (v["source"], v["frame"], v["frame"] / TRUTH["fps"]) for f, v in TRUTH["images"].items()}


def test_round_trip_voc_coco_yolo_voc(tmp_path):
    voc = read_voc(SAMPLES / "voc")
    coco_json = write_coco(voc, tmp_path / "coco")
    coco = read_coco(coco_json)
    assert as_truth(coco) == as_truth(voc)
    for a, b in zip(voc, coco):
        assert (a.source, a.frame, a.timestamp, a.width, a.height) == (b.source, b.frame, b.timestamp, b.width, b.height)
    yaml_path = write_yolo(coco, tmp_path / "yolo")
    yolo = read_yolo(yaml_path)
    assert yolo.class_names == voc.class_names
    for f, boxes in as_truth(yolo).items():  # YOLO keeps 6 normalised decimals: < 0.001 px here
        ref = as_truth(voc)[f]
        assert [b[0] for b in boxes] == [b[0] for b in ref]
        if boxes:
            np.testing.assert_allclose([b[1:] for b in boxes], [b[1:] for b in ref], atol=1e-3)
    back = read_voc(write_voc(yolo, tmp_path / "voc2"))
    assert as_truth(back) == as_truth(voc)  # integer VOC coordinates: exact again
    assert back.report.ok


def test_coco_dict_ids_and_fields():
    d = to_coco_dict(read_voc(SAMPLES / "voc"))
    assert [c["name"] for c in d["categories"]] == CLASSES and [c["id"] for c in d["categories"]] == [1, 2, 3]
    a = d["annotations"][0]
    assert a["bbox"] == [40.0, 60.0, 40.0, 120.0] and a["area"] == 4800.0 and a["category_id"] == 1


def test_voc_float_decimals(tmp_path):
    ds = read_voc(SAMPLES / "voc")
    ds.images[0].xyxy[0] = [40.25, 60.5, 80.125, 180.0]
    back = read_voc(write_voc(ds, tmp_path / "v", decimals=3, images="link"))
    np.testing.assert_array_equal(back.images[0].xyxy[0], [40.25, 60.5, 80.125, 180.0])


# ---- broken variants: one report entry each, the rest loads --------------------------------------------------

def one(ds, kind):
    assert ds.report.counts() == {kind: 1}, ds.report.text()
    return ds.report.issues[0]


def test_box_outside_clip_and_drop():
    ds = read_voc(BROKEN / "voc_box_outside")
    assert ds.report.counts() == {"box_outside": 2}
    clipped, dropped = ds.report.issues
    assert clipped.action == "clipped" and clipped.class_name == "car" and clipped.box == [250, 120, 400, 260]
    assert dropped.action == "dropped" and dropped.class_name == "bag"
    np.testing.assert_array_equal(ds.images[0].xyxy, [[40, 60, 80, 180], [250, 120, 320, 240]])
    ds = read_voc(BROKEN / "voc_box_outside", on_outside="drop")
    assert [i.action for i in ds.report] == ["dropped", "dropped"] and ds.n_boxes == 1


def test_unknown_class_voc_coco_yolo():
    i = one(read_voc(BROKEN / "voc_unknown_class"), "unknown_class")
    assert i.class_name == "dog" and i.action == "dropped" and i.file.endswith("cam1_000000.xml")
    i = one(read_coco(BROKEN / "coco_unknown_class"), "unknown_class")
    assert "annotations[2]" in i.message and "category_id 17" in i.message
    ds = read_yolo(BROKEN / "yolo_unknown_class")
    i = one(ds, "unknown_class")
    assert i.line == 3 and i.class_name == "7" and ds.n_boxes == 2


def test_missing_image():
    ds = read_voc(BROKEN / "voc_missing_image")
    i = one(ds, "missing_image")
    assert i.image == "gone.jpg" and i.file.endswith("gone.xml") and "1 box(es) dropped" in i.message
    # the report says where the image was looked for, so the user can fix the path or <filename>
    assert str(BROKEN / "voc_missing_image" / "JPEGImages" / "gone.jpg") in i.message
    assert len(ds) == 1 and ds.n_boxes == 2
    i = one(read_yolo(BROKEN / "yolo_missing_image"), "missing_image")
    assert i.file.endswith("ghost.txt") and i.action == "dropped"


def test_malformed_xml_and_json_name_file_and_line():
    ds = read_voc(BROKEN / "voc_malformed_xml")
    i = one(ds, "malformed_file")
    assert i.file.endswith("cam1_000050.xml") and i.line == 9 and "mismatched tag" in i.message
    assert len(ds) == 1 and ds.n_boxes == 2  # the good file still loads
    ds = read_coco(BROKEN / "coco_malformed_json" / "annotations.json")
    i = one(ds, "malformed_file")
    assert i.line == 7 and "Expecting ',' delimiter" in i.message and len(ds) == 0
    assert "annotations.json:7" in ds.report.text()


def test_malformed_yolo_line():
    ds = read_yolo(BROKEN / "yolo_malformed_line")
    i = one(ds, "malformed_line")
    assert i.line == 2 and ds.n_boxes == 1


def test_empty_label_file():
    ds = read_yolo(BROKEN / "yolo_empty_label")
    i = one(ds, "empty_label")
    assert i.image == "cam1_000050.jpg" and i.action == "kept"
    assert [len(im) for im in ds] == [2, 0]


def test_zero_area_and_duplicate():
    ds = read_voc(BROKEN / "voc_zero_area_duplicate")
    assert ds.report.counts() == {"duplicate_box": 1, "zero_area": 1}
    assert ds.n_boxes == 1
    df = ds.report.to_dataframe()
    assert list(df["kind"]) == ["zero_area", "duplicate_box"] and list(df["action"]) == ["dropped", "dropped"]


def test_unreadable_image():
    ds = read_voc(BROKEN / "unreadable_image")
    i = one(ds, "unreadable_image")
    assert "cannot identify image file" in i.message and "2 box(es) dropped" in i.message and len(ds) == 0


def test_size_mismatch(tmp_path):
    ds = read_voc(SAMPLES / "voc")
    ds.images[0].width = 640
    out = write_voc(ds, tmp_path / "v", images="copy")
    back = read_voc(out)
    i = one(back, "size_mismatch")
    assert "label says 640x240, image is 320x240" in i.message and back.images[0].width == 320


def test_mot_as_detection_dataset(tud_campus):
    ds = read_mot_dataset(tud_campus)
    assert len(ds) == 71 and ds.n_boxes == 359 and ds.class_names == ["person"]
    assert ds.images[0].file == "TUD-Campus/img1/000001.jpg" and ds.images[70].frame == 70
    assert ds.images[25].timestamp == pytest.approx(1.0)
    # boxes crossing the frame border are clipped and listed, none silently
    assert ds.report.counts() == {"box_outside": 19}
    assert {i.action for i in ds.report} == {"clipped"}
    assert len(read_mot_dataset(tud_campus, every=10)) == 8


def test_yolo_recovers_source_and_frame_from_image_names(tmp_path, tud_campus):
    """YOLO (and VOC/COCO re-saved by LabelImg/CVAT) lose source/frame: they are read back from the
    image names, so a split after the round trip keeps consecutive frames of a camera together."""
    from pockit.data import leakage, split

    yolo = read_yolo(SAMPLES / "yolo")  # pockit capture names <source>_<frame>.jpg
    assert {im.file: (im.source, im.frame) for im in yolo} == {
        f: (v["source"], v["frame"]) for f, v in TRUTH["images"].items()}
    mot = read_mot_dataset(tud_campus)  # TUD-Campus/img1/000001.jpg: folder = camera, number = frame
    back = read_yolo(write_yolo(mot, tmp_path / "y", images="link"))
    assert {im.source for im in back} == {"TUD-Campus"}
    assert sorted(im.frame for im in back) == list(range(1, 72))
    s = split(back, val=0.25, chunk_frames=10, seed=0)
    assert not leakage(s, chunk_frames=10)
    order = [im.split for im in sorted(s, key=lambda im: im.frame)]
    # whole 10-frame chunks: the split changes only at chunk boundaries (frames 10, 20, ...)
    assert all(order[i] == order[i - 1] for i in range(1, 71) if (i + 1) % 10 != 0)
    assert {"train", "val"} == set(order)
    # metadata written by pockit wins over the name; names that fit neither scheme stay 'default'
    assert read_voc(SAMPLES / "voc").images[0].source == "cam1"
    from pockit.data import ImageRecord, infer_source_frame
    ims = [ImageRecord("photo.jpg", "/x/photo.jpg", 10, 10), ImageRecord("000007.jpg", "/x/000007.jpg", 10, 10),
           ImageRecord("a_1.jpg", "/x/a_1.jpg", 10, 10, source="cam9")]
    assert infer_source_frame(ims) == 0 and [(im.source, im.frame) for im in ims] == [
        ("default", None), ("default", None), ("cam9", None)]
