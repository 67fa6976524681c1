"""Class mapping, health statistics, leak-free stratified split, Ultralytics export."""
import numpy as np
import pytest
import yaml

from pockit.data import (Dataset, export_ultralytics, health, leakage, map_to_model, read_mot_dataset, read_voc, read_yolo,
                         remap_classes, split)
from pockit.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "datasets" / "samples"


@pytest.fixture
def voc():
    return read_voc(SAMPLES / "voc")


def counts(ds):
    return {n: int(sum((im.class_ids == i).sum() for im in ds)) for i, n in enumerate(ds.class_names)}


def test_rename_merge_drop(voc):
    assert counts(voc) == {"person": 5, "car": 3, "bag": 2}
    m = remap_classes(voc, {"person": "pedestrian", "car": "vehicle", "bag": None})
    assert m.class_names == ["pedestrian", "vehicle"] and counts(m) == {"pedestrian": 5, "vehicle": 3}
    assert m.report.counts() == {"dropped_class": 2} and {i.class_name for i in m.report} == {"bag"}
    assert voc.n_boxes == 10 and voc.report.ok  # the source dataset is untouched
    merged = remap_classes(voc, {"car": "object", "bag": "object"})
    assert merged.class_names == ["person", "object"] and counts(merged) == {"person": 5, "object": 5}
    only = remap_classes(voc, {"person": "person"}, drop_unmapped=True)
    assert only.class_names == ["person"] and only.n_boxes == 5 and len(only.report) == 5
    with pytest.raises(KeyError, match="'truck'"):
        remap_classes(voc, {"truck": "car"})


def test_map_to_model(voc):
    coco80 = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 24: "backpack"}
    m = map_to_model(voc, coco80, {"bag": "backpack"})
    assert len(m.class_names) == 25 and m.class_names[24] == "backpack"
    ids = sorted({int(c) for im in m for c in im.class_ids})
    assert ids == [0, 2, 24] and m.n_boxes == 10
    with pytest.raises(ValueError, match=r"dataset classes \['bag'\] have no model class"):
        map_to_model(voc, coco80)
    m = map_to_model(voc, ["Normal", "Fall"], {"person": "Normal"}, drop_unknown=True)
    assert m.class_names == ["Normal", "Fall"] and counts(m) == {"Normal": 5, "Fall": 0}
    assert m.report.counts() == {"dropped_class": 5}


def test_health_tables_and_figures(voc):
    h = health(voc)
    pc = h.per_class.set_index("class")
    assert pc.loc["person", "boxes"] == 5 and pc.loc["person", "images"] == 4
    assert pc.loc["car", "images"] == 3 and pc.loc["bag", "boxes"] == 2
    # COCO sizes: bag 24x22 = 528 px² and 34x30 = 1020 px² are small (< 1024); people/cars medium or large
    assert pc.loc["bag", "small"] == 2 and pc.loc["car", "large"] == 3
    assert pc.loc["person", "medium"] + pc.loc["person", "large"] == 5
    ps = h.per_source.set_index("source")
    assert ps.loc["cam1", "images"] == 3 and ps.loc["cam2", "boxes"] == 4 and ps.loc["cam2", "background"] == 1
    assert h.summary == {"images": 6, "boxes": 10, "background": 1, "classes": 3, "sources": 2,
                         "boxes_per_image_mean": pytest.approx(10 / 6), "issues": 0}
    figs = h.figures()
    assert set(figs) == {"per_class", "sizes", "boxes_per_image", "aspect_ratios", "per_source"}
    assert list(figs["per_class"].data[0].y) == [5, 3, 2]


@pytest.fixture(scope="module")
def mot(tud_campus, pets):
    return Dataset.concat([read_mot_dataset(tud_campus), read_mot_dataset(pets)], name="mot")


def test_split_has_no_leakage_and_is_stratified(mot):
    s = split(mot, val=0.25, chunk_s=2.0, seed=0)
    assert leakage(s, chunk_s=2.0) == []
    assert all(im.split is None for im in mot)  # the input is untouched
    h = health(s).per_split.set_index("split")
    assert h["images"].sum() == 178
    # each camera contributes to both splits, and val holds ~25% of the images
    by = s.images_frame().groupby(["source", "split"]).size().unstack()
    assert (by > 0).all().all(), by
    assert 0.18 <= h.loc["val", "images"] / 178 <= 0.32
    # every val chunk is whole: consecutive frames of one chunk share the split
    for src in ("TUD-Campus", "PETS09-S3-MF1"):
        ims = sorted((im for im in s if im.source == src), key=lambda im: im.frame)
        chunks = {}
        for im in ims:
            chunks.setdefault(int(im.timestamp // 2.0), set()).add(im.split)
        assert all(len(v) == 1 for v in chunks.values())
    # deterministic
    assert [im.split for im in split(mot, val=0.25, chunk_s=2.0, seed=0)] == [im.split for im in s]


def test_split_detects_leak_when_chunks_ignored(mot):
    s = split(mot, val=0.25, chunk_s=2.0)
    s.images[0].split, s.images[1].split = "train", "val"  # frames 0 and 1 of TUD-Campus
    assert leakage(s, chunk_s=2.0) == [("TUD-Campus", 0)]


def test_split_stratifies_classes():
    # 20 single-image groups: 16 'a' images, 4 'b' images -> val 25% should hold 4 a + 1 b
    from pockit.data import ImageRecord

    ims = [ImageRecord(f"{i}.jpg", f"/x/{i}.jpg", 100, 100, [[0, 0, 10, 10]], [0 if i < 16 else 1], source=f"s{i % 2}")
           for i in range(20)]
    s = split(Dataset(ims, ["a", "b"]), val=0.25)
    val = [im for im in s if im.split == "val"]
    assert len(val) == 5 and sum(int(im.class_ids[0]) for im in val) == 1


def test_export_ultralytics(voc, tmp_path):
    with pytest.raises(ValueError, match="call pockit.data.split"):
        export_ultralytics(voc, tmp_path / "x")
    s = split(voc, val=0.34, chunk_s=1000)  # one chunk per camera: cam1 and cam2 land in different splits
    assert leakage(s, chunk_s=1000) == []
    y = export_ultralytics(s, tmp_path / "ul")
    cfg = yaml.safe_load(y.read_text())
    assert cfg["names"] == {0: "person", 1: "car", 2: "bag"} and cfg["path"] == str((tmp_path / "ul").resolve())
    assert {cfg["train"], cfg["val"]} == {"images/train", "images/val"}
    back = read_yolo(y)
    assert len(back) == 6 and back.n_boxes == 10
    assert {im.file: im.split for im in back} == {im.file: im.split for im in s}
    np.testing.assert_allclose(back.images[0].xyxy, [im for im in s if im.file == back.images[0].file][0].xyxy, atol=1e-3)
