"""Tracking metrics: a hand-computed tiny case, a cross-check against TrackEval, bad input."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import load_mot_array
from pockit.evaluate import EvaluationError, evaluate_tracks
from pockit.evaluate.tracking import (
    clear_metrics,
    hota_metrics,
    identity_metrics,
    prepare_sequence,
)

A = [0, 0, 10, 10]      # xywh
B = [100, 0, 10, 10]
C = [200, 200, 10, 10]


def rows(spec):
    return np.array([[f, i, *box, 1, -1, -1, -1] for f, i, box in spec], float)


GT = rows([(f, 1, A) for f in (1, 2, 3, 4)] + [(f, 2, B) for f in (1, 2, 3, 4)])
# track 7 follows gt 1 on frames 1-2, track 8 takes over on 3-4 (one ID switch);
# track 9 follows gt 2 but misses frame 3 (one fragmentation); track 5 is a false positive on frame 4
PRED = rows([(1, 7, A), (2, 7, A), (3, 8, A), (4, 8, A), (1, 9, B), (2, 9, B), (4, 9, B), (4, 5, C)])


def test_hand_computed():
    r = evaluate_tracks(GT, PRED)
    m = r.metrics
    # CLEAR: TP = 4 + 3 = 7, FN = 1 (gt 2 @ frame 3), FP = 1 (track 5), IDSW = 1 (gt 1: 7 -> 8)
    # MOTA = (TP - FP - IDSW) / (TP + FN) = (7 - 1 - 1) / 8 = 0.625; MOTP = mean IoU = 1
    assert (m["TP"], m["FN"], m["FP"], m["IDSW"]) == (7, 1, 1, 1)
    assert m["MOTA"] == pytest.approx(0.625) and m["MOTP"] == pytest.approx(1.0)
    # Frag: gt 1 tracked without a gap (the switch is not a gap) -> 0; gt 2 tracked, lost, re-tracked -> 1
    assert m["Frag"] == 1
    # MT/PT/ML: gt 1 matched 4/4 > 0.8 -> MT; gt 2 matched 3/4 = 0.75 in [0.2, 0.8] -> PT
    assert (m["MT"], m["PT"], m["ML"]) == (1, 1, 0)
    # IDF1: best one-to-one id map gt1<->7 (2 boxes, tie with 8), gt2<->9 (3 boxes): IDTP = 5 of 8 gt and
    # 8 predicted boxes -> IDP = IDR = IDF1 = 5/8
    assert (m["IDTP"], m["IDFN"], m["IDFP"]) == (5, 3, 3)
    assert m["IDF1"] == pytest.approx(5 / 8) and m["IDP"] == pytest.approx(5 / 8)
    # HOTA (every IoU is 1, so every alpha gives the same): DetA = TP / (TP + FN + FP) = 7/9.
    # AssA = mean over the 7 TPs of TPA / (TPA + FNA + FPA) of its (gt, track) pair:
    #   (1,7): 2 / (4 + 2 - 2) = 0.5 for 2 TPs; (1,8): 0.5 for 2 TPs; (2,9): 3 / (4 + 3 - 3) = 0.75 for 3 TPs
    #   -> (1 + 1 + 2.25) / 7 = 4.25 / 7
    # HOTA = sqrt(DetA * AssA) = sqrt(4.25 / 9)
    assert m["DetA"] == pytest.approx(7 / 9)
    assert m["AssA"] == pytest.approx(4.25 / 7)
    assert m["HOTA"] == pytest.approx(np.sqrt(4.25 / 9))
    assert m["LocA"] == pytest.approx(1.0)
    assert r.frames == 4 and r.gt_ids == 2 and r.pred_ids == 4


def test_hota_localisation_threshold():
    # one gt, one track shifted so IoU = 50/150 = 1/3 on both frames: matched for alpha <= 0.3 (6 alphas)
    gt = rows([(1, 1, A), (2, 1, A)])
    pred = rows([(1, 3, [5, 0, 10, 10]), (2, 3, [5, 0, 10, 10])])
    m = evaluate_tracks(gt, pred).metrics
    assert m["DetA_alpha"][:6] == [1.0] * 6 and m["DetA_alpha"][6:] == [0.0] * 13
    assert m["HOTA"] == pytest.approx(6 / 19)
    assert m["MOTA"] == pytest.approx(-1.0)  # IoU 1/3 < 0.5: 2 misses and 2 false positives


def _perturbed(gt, seed=0):
    rng = np.random.default_rng(seed)
    p = gt.copy()
    p[:, 2:4] += rng.normal(0, 4, (len(p), 2))
    p = p[rng.random(len(p)) > 0.1]
    p[(p[:, 1] == 3) & (p[:, 0] > 30), 1] = 99
    p[(p[:, 1] == 5) & (p[:, 0] % 7 == 0), 1] = 98
    return p


@pytest.mark.parametrize("kind", ["perturbed", "public_det"])
def test_matches_trackeval(tud_campus, kind):
    """Every metric equals TrackEval's (the MOTChallenge reference code) on TUD-Campus."""
    te = pytest.importorskip("trackeval.metrics")
    gt = load_mot_array(tud_campus / "gt/gt.txt")
    if kind == "perturbed":
        pred = _perturbed(gt)
    else:  # public detections with arbitrary ids: a deliberately bad tracker
        pred = load_mot_array(tud_campus / "det/det.txt")
        pred[:, 1] = np.arange(len(pred)) % 5
    data, _ = prepare_sequence(gt, pred, 71)
    mine = {**hota_metrics(data), **clear_metrics(data), **identity_metrics(data)}
    ref = {}
    for metric in (te.HOTA({"PRINT_CONFIG": False}), te.CLEAR({"PRINT_CONFIG": False}),
                   te.Identity({"PRINT_CONFIG": False})):
        ref.update(metric.eval_sequence(data.as_trackeval()))
    pairs = {"HOTA": "HOTA", "DetA": "DetA", "AssA": "AssA", "LocA": "LocA", "DetRe": "DetRe", "AssPr": "AssPr",
             "MOTA": "MOTA", "MOTP": "MOTP", "IDSW": "IDSW", "Frag": "Frag", "MT": "MT", "PT": "PT", "ML": "ML",
             "TP": "CLR_TP", "FP": "CLR_FP", "FN": "CLR_FN", "IDF1": "IDF1", "IDP": "IDP", "IDR": "IDR"}
    for k, k2 in pairs.items():
        assert mine[k] == pytest.approx(float(np.mean(ref[k2])), abs=1e-12), k


def test_perturbed_numbers_pinned(tud_campus, tmp_path):
    gt = load_mot_array(tud_campus / "gt/gt.txt")
    pred = tmp_path / "pred.txt"
    np.savetxt(pred, _perturbed(gt), delimiter=",", fmt="%.3f")
    res = CliRunner().invoke(cli, ["eval", "tracks", "--gt", str(tud_campus / "gt/gt.txt"), "--pred", str(pred),
                                   "-o", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "t.json").read_text())
    assert d["frames"] == 71 and d["gt_ids"] == 8 and d["gt_boxes"] == 359
    s = d["summary"]  # same numbers as test_matches_trackeval checks against TrackEval
    assert s["IDSW"] == 17 and s["MT"] == 8 and s["ML"] == 0
    assert "HOTA" in res.output and "MOTA" in res.output


def test_bad_input(tud_campus, tmp_path):
    gt = tud_campus / "gt/gt.txt"
    with pytest.raises(EvaluationError, match="ground-truth file not found"):
        evaluate_tracks(tmp_path / "missing.txt", gt)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(EvaluationError, match="has no rows"):
        evaluate_tracks(empty, gt)
    r = evaluate_tracks(gt, empty)
    assert r.metrics["MOTA"] == 0.0 and r.metrics["FN"] == 359 and r.metrics["HOTA"] == 0.0
    assert any("no tracks" in w for w in r.warnings)
    shifted = load_mot_array(gt)
    shifted[:, 0] += 500
    far = tmp_path / "far.txt"
    np.savetxt(far, shifted, delimiter=",")
    with pytest.raises(EvaluationError, match="frame ranges do not overlap.*1-71.*501-571"):
        evaluate_tracks(gt, far)
    zero = load_mot_array(gt)
    zero[:, 0] -= 1
    np.savetxt(far, zero, delimiter=",")
    with pytest.raises(EvaluationError, match="MOT frames are 1-based"):
        evaluate_tracks(gt, far)
    longer = load_mot_array(gt)
    longer[:, 0] += 5  # frames 6..76: the sequence has 71 (seqinfo.ini)
    np.savetxt(far, longer, delimiter=",")
    with pytest.raises(EvaluationError, match="up to 76 but the sequence has 71"):
        evaluate_tracks(gt, far)
    res = CliRunner().invoke(cli, ["eval", "tracks", "--gt", str(gt), "--pred", str(tud_campus / "det/det.txt")])
    assert res.exit_code != 0 and "repeats a track id" in res.output
