"""Detection metrics on hand-computed cases, plus the CLI on TUD-Campus."""
import json

import pytest
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import Detections
from pockit.evaluate import EvaluationError, evaluate_detections


def D(boxes, classes, scores=None):
    return Detections(xyxy=boxes, class_ids=classes, scores=scores if scores is not None else [1.0] * len(classes),
                      class_names={0: "person", 1: "car"})


@pytest.fixture
def case():
    # image 1: two persons; a perfect person hit (0.9) and a person false alarm (0.8)
    # image 2: one car, found with the right box but called "person" (0.7); a low-score car (0.1) on it too
    gt = {1: D([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]), 2: D([[0, 0, 10, 10]], [1])}
    pred = {1: D([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], [0.9, 0.8]),
            2: D([[0, 0, 10, 10], [0, 0, 10, 10.5]], [0, 1], [0.7, 0.1])}
    return gt, pred


def test_map_and_operating_point(case):
    gt, pred = case
    r = evaluate_detections(gt, pred, ["person", "car"], conf=0.25)
    # person: ranked 0.9 TP, 0.8 FP, 0.7 FP over 2 gt -> precision 1 up to recall 0.5, then none:
    # COCO 101-point AP = 51/101 at every IoU threshold (the TP box is exact)
    # car: a single prediction (0.1) on the only car, IoU = 100/105 = 0.952, which passes all ten IoU
    # thresholds 0.50..0.95 -> AP50 = AP50-95 = 1
    assert r.per_class[0]["ap50"] == pytest.approx(51 / 101)
    assert r.per_class[1]["ap50"] == pytest.approx(1.0)
    assert r.per_class[1]["ap50_95"] == pytest.approx(1.0)
    assert r.map50 == pytest.approx((51 / 101 + 1) / 2)
    # at conf 0.25 the car prediction (0.1) is dropped: person 1 TP of 3 preds, 2 gt; car 0 of 0 preds, 1 gt
    p, c = r.per_class
    assert (p["tp"], p["fp"], p["fn"], p["pred"], p["gt"]) == (1, 2, 1, 3, 2)
    assert p["precision"] == pytest.approx(1 / 3) and p["recall"] == pytest.approx(0.5)
    assert p["f1"] == pytest.approx(0.4)
    assert (c["tp"], c["fp"], c["fn"]) == (0, 0, 1)
    # confusion (rows gt, cols pred, last = background): person->person 1, person missed 1,
    # car called person 1, person false alarm 1
    assert r.confusion.tolist() == [[1, 0, 1], [1, 0, 0], [1, 0, 0]]
    assert r.totals["tp"] == 1 and r.totals["fp"] == 2 and r.totals["fn"] == 2


def test_low_threshold_changes_operating_point_only(case):
    gt, pred = case
    r = evaluate_detections(gt, pred, ["person", "car"], conf=0.05)
    assert r.per_class[1]["tp"] == 1 and r.per_class[1]["fp"] == 0
    assert r.map50 == pytest.approx((51 / 101 + 1) / 2)
    # the car box 0.1 now competes class-agnostically in the confusion matrix, but the 0.7 "person" box
    # has the higher score and takes the car first; the car box then is a background false alarm
    assert r.confusion.tolist() == [[1, 0, 1], [1, 0, 0], [1, 1, 0]]


def test_greedy_by_score_takes_best_iou():
    gt = {0: D([[0, 0, 10, 10], [4, 0, 14, 10]], [0, 0])}
    # the higher-score box overlaps both; it takes the better IoU (gt 1), the second one gets gt 0
    pred = {0: D([[4, 0, 14, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])}
    r = evaluate_detections(gt, pred, ["person", "car"])
    assert r.per_class[0]["tp"] == 2 and r.per_class[0]["ap50"] == pytest.approx(1.0)


def test_pr_curve_shape(case):
    gt, pred = case
    r = evaluate_detections(gt, pred, ["person", "car"])
    c = r.pr_curves["person"]
    assert len(c["recall"]) == 101 and c["precision"][:51] == [1.0] * 51 and c["precision"][51:] == [0.0] * 50
    figs = r.figures()
    assert set(figs) == {"pr", "confusion"}
    assert json.loads(json.dumps(r.to_dict()))["confusion"]["labels"] == ["person", "car", "background"]


def test_bad_inputs():
    with pytest.raises(EvaluationError, match="no ground truth"):
        evaluate_detections({}, {1: D([[0, 0, 1, 1]], [0])})
    with pytest.raises(EvaluationError, match="share no image"):
        evaluate_detections({1: D([[0, 0, 1, 1]], [0])}, {0: D([[0, 0, 1, 1]], [0])})
    with pytest.raises(EvaluationError, match="class id 1 outside"):
        evaluate_detections({1: D([[0, 0, 1, 1]], [1])}, {1: D([[0, 0, 1, 1]], [0])}, ["person"])
    r = evaluate_detections({1: D([[0, 0, 1, 1]], [0])}, {1: D([], []), 5: D([[0, 0, 1, 1]], [0])}, ["person"])
    assert r.per_class[0]["fn"] == 1 and r.map50 == 0.0
    assert any("no ground truth and were ignored" in w for w in r.warnings)
    assert any("no predictions on the annotated images" in w for w in r.warnings)


def test_cli_on_tud_campus(tud_campus, tmp_path):
    out = tmp_path / "det.json"
    res = CliRunner().invoke(cli, ["eval", "detections", "--gt", str(tud_campus / "gt/gt.txt"),
                                   "--pred", str(tud_campus / "det/det.txt"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    # public detections vs gt: 71 frames, 359 gt boxes; numbers pinned from faster-coco-eval
    assert d["images"] == 71 and d["gt_boxes"] == 359
    assert d["per_class"][0]["tp"] == 257 and d["per_class"][0]["pred"] == 343
    assert d["map50"] == pytest.approx(0.554, abs=5e-4)
    assert "mAP50 0.554" in res.output
    res = CliRunner().invoke(cli, ["eval", "detections", "--gt", str(tmp_path / "nope.txt"),
                                   "--pred", str(tud_campus / "det/det.txt")])
    assert res.exit_code != 0 and "ground-truth file not found" in res.output


def test_cli_on_a_runs_two_class_tracks(tmp_path):
    # a run with the registry's Normal/Fall model writes class ids 0 and 1 in tracks/<source>.txt; against a
    # single-class MOT ground truth both count as the gt's class (names from run.json beside tracks/)
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,20,40,1,1,1\n1,2,100,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n")
    run = tmp_path / "run"
    (run / "tracks").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"model": {"class_names": {"0": "Normal", "1": "Fall"}}}))
    rows = "1,1,10,10,20,40,0.9,0,-1,-1\n1,2,100,10,20,40,0.8,1,-1,-1\n2,1,12,10,20,40,0.9,1,-1,-1\n"
    (run / "tracks" / "cam.txt").write_text(rows)
    res = CliRunner().invoke(cli, ["eval", "detections", "--gt", str(gt), "--pred", str(run / "tracks" / "cam.txt")])
    assert res.exit_code == 0, res.output
    assert "predicted classes ['Fall', 'Normal'] all count as 'person'" in res.output
    assert "mAP50 1.000" in res.output
    # the same file outside a run: the unnamed class id 1 is named '1', still merged, no crash
    loose = tmp_path / "loose.txt"
    loose.write_text(rows)
    res = CliRunner().invoke(cli, ["eval", "detections", "--gt", str(gt), "--pred", str(loose)])
    assert res.exit_code == 0, res.output
    assert "predicted classes ['1', 'person'] all count as 'person'" in res.output and "mAP50 1.000" in res.output
