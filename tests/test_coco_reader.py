"""One COCO reader (pockit.data.coco): the data loop drops and reports a bad entry, evaluation refuses it with the
same words; both read boxes, categories and scores the same way."""
import json

import numpy as np
import pytest

from pockit.data import read_coco
from pockit.evaluate.io import BoxFileError, load_boxes

GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                 {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
      "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "person"}],
      "annotations": [{"image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40]},
                      {"image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 0}]}


def test_gt_read_the_same_by_both(tmp_path):
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(GT))
    boxes, names, cmap = load_boxes(p, gt=True)
    assert names == {0: "person", 1: "car"} and cmap == {3: 0, 7: 1}  # classes in ascending category id
    np.testing.assert_allclose(boxes[1].xyxy, [[10, 20, 40, 60]])
    assert boxes[1].class_ids.tolist() == [0] and boxes[2].class_ids.tolist() == [1]
    ds = read_coco(p, check_images=False)
    assert ds.class_names == ["person", "car"]
    by_file = {im.file: im for im in ds.images}
    np.testing.assert_allclose(by_file["a.jpg"].xyxy, [[10, 20, 40, 60]])
    assert by_file["a.jpg"].class_ids.tolist() == [0] and by_file["b.jpg"].class_ids.tolist() == [1]


def test_results_list_with_gt_categories(tmp_path):
    p = tmp_path / "det.json"
    p.write_text(json.dumps([{"image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.25}]))
    boxes, _, _ = load_boxes(p, gt=False, categories={3: 0, 7: 1})
    np.testing.assert_allclose(boxes[2].xyxy, [[1, 2, 4, 6]])
    assert boxes[2].scores.tolist() == [0.25] and boxes[2].class_ids.tolist() == [1]
    with pytest.raises(BoxFileError, match=r"\[0\]\.category_id: unknown category \(known: \[3\]\) \(got 7\)"):
        load_boxes(p, gt=False, categories={3: 0})


@pytest.mark.parametrize("ann,detail", [
    ({"image_id": 1, "category_id": 3, "bbox": [1, 2, "nan", 4]}, "annotations[0].bbox[2]: not a finite number (got 'nan')"),
    ({"image_id": 1, "category_id": 3, "bbox": [1, 2, 3]}, "annotations[0].bbox: is not [x, y, w, h] (got [1, 2, 3])"),
    ({"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": "high"},
     "annotations[0].score: not a number (got 'high')"),
])
def test_a_bad_entry_is_dropped_by_the_data_loop_and_refused_by_evaluation(tmp_path, ann, detail):
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({**GT, "annotations": [ann]}))
    ds = read_coco(p, check_images=False)
    assert ds.n_boxes == 0 and [i.message for i in ds.report.issues if i.kind == "malformed_line"] == [detail]
    with pytest.raises(BoxFileError) as ei:
        load_boxes(p, gt=True)
    assert ei.value.detail == detail and ei.value.file == str(p)
