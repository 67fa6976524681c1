"""Hostile and odd label input (issue 12): output paths stay inside the output folder, bad values
become findings or one LabelError naming file, place, field and value, the duplicate check runs in
bounded memory, and VOC keeps sub-pixel boxes."""
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pockit.cli import cli
from pockit.core import box_iou
from pockit.data import (
    Dataset,
    ImageRecord,
    LabelError,
    duplicate_boxes,
    read_coco,
    read_mot_dataset,
    read_voc,
    read_yolo,
    validate,
    write_coco,
    write_voc,
    write_yolo,
)
from pockit.evaluate import EvaluationError
from pockit.evaluate.io import load_boxes


def run(*args):
    return CliRunner().invoke(cli, ["data", *map(str, args)])


def image(path: Path, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)
    return path


def coco_doc(file_name="img.jpg", image_extra=None, ann_extra=None, n_boxes=1):
    im = {"id": 1, "file_name": file_name, "width": 64, "height": 48, **(image_extra or {})}
    anns = [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": [1 + 3 * k, 2, 10, 10], **(ann_extra or {})}
            for k in range(n_boxes)]
    return {"images": [im], "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def snapshot(root: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


# ---- 2. writers never leave the output folder ------------------------------------------------------------------

@pytest.mark.parametrize("to", ["voc", "yolo", "coco"])
@pytest.mark.parametrize("key", ["../../evil.jpg", "ABS", "..\\..\\evil.jpg", "C:\\evil.jpg", "split:../../x"])
def test_convert_refuses_file_names_that_escape(tmp_path, key, to):
    src = tmp_path / "w" / "src"
    doc = coco_doc()
    if key == "ABS":  # an absolute file name of an existing image
        doc["images"][0]["file_name"] = str(image(tmp_path / "abs" / "evil.jpg"))
    elif key.startswith("split:"):  # the split becomes a folder of the YOLO layout
        doc["images"][0]["split"] = key[6:]
        image(src / "img.jpg")
    else:  # the image exists where the reader looks, so the writer would place it
        doc["images"][0]["file_name"] = key
        image(src / key)
    (src / "ann.json").parent.mkdir(parents=True, exist_ok=True)
    (src / "ann.json").write_text(json.dumps(doc))
    # files an escape would overwrite or delete first (VOC JPEGImages/../../evil.jpg = out/../evil.jpg)
    for victim in (tmp_path / "w" / "evil.jpg", tmp_path / "w" / "evil.xml", tmp_path / "w" / "evil.txt"):
        victim.write_text("keep me")
    before = snapshot(tmp_path)
    r = run("convert", src / "ann.json", tmp_path / "w" / "out", "--to", to)
    if key.startswith("split:") and to != "yolo":  # only the YOLO layout has split folders
        assert r.exit_code == 0, r.output
        return
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and ("escapes" in r.output or "has a Windows drive letter" in r.output), r.output
    assert str(src / "ann.json") in r.output  # the label file the name came from
    assert snapshot(tmp_path) == before  # nothing written, nothing deleted, nowhere
    assert not (tmp_path / "w" / "out").exists()


def test_write_api_raises_label_error_and_writes_nothing(tmp_path):
    ds = Dataset([ImageRecord("../../evil.jpg", image(tmp_path / "evil.jpg"), 64, 48, [[1, 2, 10, 10]], [0]),
                  ImageRecord("ok.jpg", image(tmp_path / "ok.jpg"), 64, 48)], ["person"])
    for writer in (write_voc, write_yolo, write_coco):
        with pytest.raises(LabelError, match=r"image file name '\.\./\.\./evil\.jpg' (\(folder 'train'\) )?escapes"):
            writer(ds, tmp_path / "deep" / "out")
        assert not (tmp_path / "deep").exists()


def test_nested_names_and_relinking_still_work(tmp_path):
    """Keys in sub-folders are fine, and converting twice with linked images replaces the links."""
    src = tmp_path / "src"
    image(src / "cam1" / "a.jpg")
    (src / "ann.json").write_text(json.dumps(coco_doc("cam1/a.jpg")))
    for _ in range(2):
        r = run("convert", src / "ann.json", tmp_path / "out", "--to", "voc", "--images", "link")
        assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "JPEGImages" / "cam1" / "a.jpg").is_symlink()
    assert read_voc(tmp_path / "out").n_boxes == 1


def test_capture_source_id_cannot_place_frames_outside(tmp_path):
    from pockit.data.capture import capture

    image(tmp_path / "frames" / "000.png")
    with pytest.raises(LabelError, match=r"frame file name \(source id\) '\.\./\.\./evil_000000\.jpg' escapes"):
        capture(tmp_path / "frames", tmp_path / "a" / "out", dedup_hamming=None, source_id="../../evil", progress=False)
    assert not list(tmp_path.rglob("evil*"))


# ---- 9. duplicate check: bounded memory, same result ------------------------------------------------------------

def duplicates_full_matrix(xyxy, class_ids, thr):
    """The check as it was: one n x n IoU matrix per image."""
    iou = box_iou(xyxy, xyxy)
    same = class_ids[:, None] == class_ids[None, :]
    dup = np.zeros(len(xyxy), bool)
    out = []
    for j in range(len(xyxy)):
        prev = np.flatnonzero((iou[:j, j] >= thr) & same[:j, j] & ~dup[:j])
        if len(prev):
            dup[j] = True
            out.append((j, int(prev[0]), float(iou[prev[0], j])))
    return out


def test_duplicate_boxes_equal_the_full_matrix_on_random_cases():
    rng = np.random.default_rng(12)
    checked = dups = 0
    for case in range(400):
        n = int(rng.integers(0, 40))
        xy = rng.uniform(0, 60, (n, 2))
        wh = rng.uniform(1, 30, (n, 2))
        boxes = np.c_[xy, xy + wh]
        if n > 3:  # exact and near copies, so duplicates occur at every threshold
            k = int(rng.integers(1, n // 2 + 1))
            src = rng.integers(0, n, k)
            dst = rng.integers(0, n, k)
            boxes[dst] = boxes[src] + rng.normal(0, [0, 0.5, 2.0][case % 3], (k, 4))
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.1)
        classes = rng.integers(0, 1 + case % 3, n)
        for thr in (0.0, 0.3, 0.5, 0.7, 0.95, 1.0):
            want = duplicates_full_matrix(boxes, classes, thr)
            assert duplicate_boxes(boxes, classes, thr) == want, (case, thr)
            checked += 1
            dups += len(want)
    assert checked == 2400 and dups > 1000


def test_validate_many_boxes_on_one_image_in_bounded_memory():
    rng = np.random.default_rng(3)
    n = 6000  # the old n x n check allocated 6000^2 x 8 B = 288 MB per matrix (x3 matrices)
    xy = rng.uniform(0, 1800, (n, 2)) * [1, 0.55]
    boxes = np.c_[xy, xy + rng.uniform(5, 100, (n, 2))]
    boxes = np.r_[boxes, boxes[:50]]  # 50 exact duplicates at the end
    ds = Dataset([ImageRecord("big.jpg", "big.jpg", 1920, 1080, boxes, np.zeros(len(boxes), int))], ["person"])
    tracemalloc.start()
    try:
        validate(ds, check_images=False, dup_iou=0.95)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dup_issues = ds.report.of_kind("duplicate_box")
    assert len(dup_issues) == len(duplicates_full_matrix(np.r_[boxes[:n]], np.zeros(n, int), 0.95)) + 50
    assert sum("with IoU 1.00" in i.message for i in dup_issues) >= 50
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"


# ---- 10. bad values: findings or one LabelError naming file, place, field and value ----------------------------

@pytest.mark.parametrize("value,problem", [("inf", "not a finite number"), ("1e400", "not a finite number"),
                                           ("nan", "not a finite number"), ("x", "not a number")])
def test_yolo_bad_class_id_is_a_finding(tmp_path, value, problem):
    image(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{value} 0.5 0.5 0.1 0.1\n")
    (tmp_path / "classes.txt").write_text("person\n")
    ds = read_yolo(tmp_path)
    assert ds.n_boxes == 1
    [i] = ds.report.issues
    assert (i.kind, i.action, i.file, i.line) == ("malformed_line", "dropped", str(tmp_path / "a.txt"), 2)
    assert i.message == f"class id: {problem} (got {value!r})"


@pytest.mark.parametrize("image_extra,ann_extra,expect,boxes", [
    ({"width": [320]}, {}, "images[0].width: not a number (got [320]); the image's real size is used", 1),
    ({"width": "wide"}, {}, "images[0].width: not a number (got 'wide'); the image's real size is used", 1),
    ({"frame": "ten"}, {}, "images[0].frame: not a number (got 'ten'); read without a frame number", 1),
    ({"id": [1]}, {}, "images[0].id: not a number (got [1]); image and its boxes left out", 0),
    ({}, {"image_id": [1]}, "annotations[0].image_id: not a number (got [1])", 0),
    ({}, {"score": "high"}, "annotations[0].score: not a number (got 'high')", 0),
    ({}, {"bbox": [1, 2, "nan", 4]}, "annotations[0].bbox[2]: not a finite number (got 'nan')", 0),
    ({}, {"category_id": {"a": 1}}, "annotations[0].category_id: not a number (got {'a': 1})", 0),
])
def test_coco_bad_fields_are_findings(tmp_path, image_extra, ann_extra, expect, boxes):
    image(tmp_path / "img.jpg")
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(coco_doc(image_extra=image_extra, ann_extra=ann_extra)))
    ds = read_coco(p)
    assert ds.n_boxes == boxes
    msgs = [i.message for i in ds.report.issues if i.kind == "malformed_line"]
    assert msgs[0] == expect and all(i.file == str(p) for i in ds.report.issues)
    r = run("check", p)  # listed, not a traceback
    assert expect in r.output and "Traceback" not in r.output
    assert r.exit_code == (0 if boxes else 1) and (r.exception is None or isinstance(r.exception, SystemExit))


def test_voc_entities_and_bad_numbers_are_findings(tmp_path):
    image(tmp_path / "a.jpg")
    (tmp_path / "bomb.xml").write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]>'
                                       "<annotation><filename>&e;</filename></annotation>")
    (tmp_path / "enc.xml").write_text('<?xml version="1.0" encoding="nope"?><annotation/>')
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg</filename><size><width>inf</width><height>48</height></size>"
                                    "<object><name>p</name><bndbox><xmin>1</xmin><ymin>1e400</ymin><xmax>9</xmax><ymax>9</ymax>"
                                    "</bndbox></object><object><name>p</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>9</xmax>"
                                    "<ymax>9</ymax></bndbox></object><pockit source=\"c\" frame=\"x\"/></annotation>")
    ds = read_voc(tmp_path)
    by_file = {(Path(i.file).name, i.kind): i.message for i in ds.report.issues}
    assert by_file[("bomb.xml", "malformed_file")].startswith("declares XML entity 'e', refused for safety")
    assert by_file[("enc.xml", "malformed_file")].startswith("declares an unknown text encoding")
    assert by_file[("a.xml", "malformed_line")] == "object #0 <bndbox><ymin>: not a finite number (got '1e400')"
    msgs = [i.message for i in ds.report.issues if Path(i.file).name == "a.xml" and i.kind == "malformed_file"]
    assert msgs == ["<size><width>: not a finite number (got 'inf'); the image's real size is used",
                    "<pockit frame=>: not a number (got 'x'); read without frame/timestamp"]
    assert ds.n_boxes == 1 and (ds[0].width, ds[0].height) == (64, 48)


def test_fatal_label_errors_are_clean_messages(tmp_path):
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "data.yaml").write_text("- just\n- a list\n")
    r = run("check", tmp_path / "y")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{tmp_path / 'y' / 'data.yaml'}: data.yaml: must be a mapping (path, train, val, names) (got ['just', 'a list'])" \
        in r.output
    (tmp_path / "y" / "data.yaml").write_bytes(b"names: [caf\xe9]\n")  # Latin-1
    with pytest.raises(LabelError, match=r"data\.yaml:1: data.yaml is not UTF-8 text \(byte 11\) \(got b'\\xe9'\)"):
        read_yolo(tmp_path / "y")
    seq = tmp_path / "SEQ"
    image(seq / "img1" / "000001.jpg")
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("1,1,10,10,5,5,1,1,1\n1,2,nan,10,5,5,1,1,1\n")
    with pytest.raises(LabelError) as e:
        read_mot_dataset(seq)
    assert (e.value.file, e.value.line) == (str(seq / "gt" / "gt.txt"), 2)
    assert "column 3 is not a finite number: 'nan'" in str(e.value)


def test_evaluation_box_files_name_the_bad_entry(tmp_path):
    p = tmp_path / "pred.json"
    p.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
                             {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}]))
    with pytest.raises(LabelError) as e:
        load_boxes(p, gt=False, categories={1: 0})
    assert isinstance(e.value, EvaluationError)
    assert str(e.value) == f"{p}: [1].score: not a number (got 'high')"
    p.write_text(json.dumps({"annotations": [{"image_id": [1], "category_id": 1, "bbox": [1, 2, 3, 4]}],
                             "categories": [{"id": 1, "name": "p"}]}))
    with pytest.raises(EvaluationError, match=r"annotations\[0\]\.image_id: not a number \(got \[1\]\)"):
        load_boxes(p, gt=True)


# ---- 13. VOC keeps sub-pixel boxes -------------------------------------------------------------------------------

def voc_set(root: Path, boxes: list, size=(640, 480)) -> Path:
    image(root / "a.jpg", size)
    objs = "".join(f"<object><name>p</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    (root / "a.xml").write_text(f"<annotation><filename>a.jpg</filename><size><width>{size[0]}</width>"
                                f"<height>{size[1]}</height></size>{objs}</annotation>")
    return root


def round_trip(src: Path, tmp: Path) -> Dataset:
    """VOC -> COCO -> YOLO -> VOC, each step read back from disk."""
    coco = read_coco(write_coco(read_voc(src), tmp / "coco"))
    yolo = read_yolo(write_yolo(coco, tmp / "yolo"))
    return read_voc(write_voc(yolo, tmp / "voc2"))


def test_voc_round_trip_keeps_decimals(tmp_path):
    """Boxes on a 0.01 px grid (CVAT writes 2 decimals) on a 640x480 image come back exactly: YOLO's 6
    normalised decimals are off by at most 7.5e-7 * 640 = 4.8e-4 px, less than the half step of the
    VOC writer's 3 decimals."""
    rng = np.random.default_rng(5)
    xy = np.round(rng.uniform(0, 300, (40, 2)), 2)
    boxes = np.round(np.c_[xy, xy + rng.uniform(5, 150, (40, 2))], 2).tolist()
    boxes.append([10.5, 20.25, 100.125, 200.0])
    back = round_trip(voc_set(tmp_path / "src", boxes), tmp_path)
    got = sorted(map(tuple, back[0].xyxy.tolist()))
    assert got == sorted(map(tuple, boxes))  # exact, decimals kept
    text = (tmp_path / "voc2" / "Annotations" / "a.xml").read_text()
    assert "<xmin>10.5</xmin>" in text and "<ymin>20.25</ymin>" in text and "<xmin>100.125</xmin>" not in text
    assert "<xmax>100.125</xmax>" in text and "<ymax>200</ymax>" in text  # integral values stay integers


def test_voc_round_trip_tolerance_on_large_images(tmp_path):
    """Arbitrary float boxes: COCO's 3 decimals (x + w anchored to the rounded x) lose <= 5e-4 px, YOLO's 6
    normalised decimals <= 7.5e-7 * size px, the VOC writer's 3 decimals <= 5e-4 px."""
    rng = np.random.default_rng(6)
    xy = rng.uniform(0, 1000, (60, 2))
    boxes = np.c_[xy, xy + rng.uniform(5, 800, (60, 2))]
    boxes[:, 2], boxes[:, 3] = np.minimum(boxes[:, 2], 1920), np.minimum(boxes[:, 3], 1080)
    back = round_trip(voc_set(tmp_path / "src", boxes.tolist(), (1920, 1080)), tmp_path)
    err = np.abs(np.array(sorted(map(tuple, back[0].xyxy.tolist()))) - np.array(sorted(map(tuple, boxes.tolist()))))
    bound = 5e-4 + 7.5e-7 * 1920 + 5e-4
    assert err.max() <= bound + 1e-9
    assert err.max() > 1e-4  # not trivially exact: the bound is what is at stake


def test_voc_int_option_rounds(tmp_path):
    src = voc_set(tmp_path / "src", [[10.4, 20.6, 100.5, 200.25]])
    ds = read_voc(src)
    np.testing.assert_array_equal(read_voc(write_voc(ds, tmp_path / "a", images="link"))[0].xyxy, [[10.4, 20.6, 100.5, 200.25]])
    np.testing.assert_array_equal(read_voc(write_voc(ds, tmp_path / "b", images="link", decimals=0))[0].xyxy,
                                  [[10, 21, 100, 200]])
    r = run("convert", src, tmp_path / "c", "--to", "voc", "--voc-int")
    assert r.exit_code == 0, r.output
    assert "<xmin>10</xmin>" in (tmp_path / "c" / "Annotations" / "a.xml").read_text()
    r = run("convert", src, tmp_path / "d", "--to", "coco", "--voc-int")
    assert r.exit_code == 2 and "only applies to --to voc" in r.output
