"""Detection accuracy: COCO mAP (faster-coco-eval), per-class P/R/F1 at the operating threshold,
precision-recall curves and a confusion matrix with a background row/column.

Operating-point matching follows COCO: per image and class, predictions (score >= conf) in
descending score order each take the unmatched ground-truth box of highest IoU >= ``iou``.
The confusion matrix matches the same way but ignoring class, so a box found with the wrong
class lands off the diagonal instead of counting as one miss plus one false alarm.
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Detections
from ..resolve import match_boxes

log = logging.getLogger(__name__)

BACKGROUND = "background"


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated (missing or mismatched ground truth, empty runs)."""


@dataclass
class DetectionReport:
    """Results of :func:`evaluate_detections`. All rates in [0, 1]."""

    class_names: list[str]
    conf: float
    iou: float
    map50: float
    map50_95: float
    per_class: list[dict[str, Any]]  # class, gt, pred, tp, fp, fn, precision, recall, f1, ap50, ap50_95
    confusion: np.ndarray  # (K+1, K+1) rows = ground truth, cols = prediction; last = background
    pr_curves: dict[str, dict[str, list[float]]]  # class -> {recall, precision} at IoU 0.5 (COCO 101 points)
    images: int
    gt_boxes: int
    pred_boxes: int
    warnings: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, float]:
        tp = sum(r["tp"] for r in self.per_class)
        fp = sum(r["fp"] for r in self.per_class)
        fn = sum(r["fn"] for r in self.per_class)
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": _f1(p, r)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "map50": self.map50, "map50_95": self.map50_95, "conf": self.conf, "iou": self.iou,
            "images": self.images, "gt_boxes": self.gt_boxes, "pred_boxes": self.pred_boxes,
            **{k: v for k, v in self.totals.items()},
            "per_class": self.per_class,
            "confusion": {"labels": self.class_names + [BACKGROUND], "matrix": self.confusion.tolist()},
            "pr_curves": self.pr_curves,
            "warnings": self.warnings,
        }

    def to_frame(self):
        import pandas as pd

        rows = list(self.per_class)
        rows.append({"class": "all", **{k: v for k, v in self.totals.items()},
                     "gt": self.gt_boxes, "pred": sum(r["pred"] for r in self.per_class),
                     "ap50": self.map50, "ap50_95": self.map50_95})
        cols = ["class", "gt", "pred", "tp", "fp", "fn", "precision", "recall", "f1", "ap50", "ap50_95"]
        return pd.DataFrame(rows)[cols]

    def figures(self, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Plotly figures: ``pr`` (precision-recall per class) and ``confusion``."""
        import plotly.graph_objects as go

        t = dict(labels or {})
        pr = go.Figure()
        for name, c in self.pr_curves.items():
            pr.add_trace(go.Scatter(x=c["recall"], y=c["precision"], mode="lines", name=name))
        for row in self.per_class:
            pr.add_trace(go.Scatter(x=[row["recall"]], y=[row["precision"]], mode="markers",
                                    marker={"size": 10, "symbol": "x"},
                                    name=f"{row['class']} @ conf {self.conf:g}"))
        pr.update_layout(xaxis_title=t.get("recall", "Recall"), yaxis_title=t.get("precision", "Precision"),
                         xaxis_range=[0, 1.02], yaxis_range=[0, 1.02], height=380,
                         title=t.get("pr_title", "Precision-recall (IoU 0.5)"), margin={"t": 50, "b": 40})
        lab = self.class_names + [t.get("background", BACKGROUND)]
        cm = go.Figure(go.Heatmap(z=self.confusion, x=lab, y=lab, colorscale="Blues", text=self.confusion,
                                  texttemplate="%{text}", showscale=False))
        cm.update_layout(xaxis_title=t.get("predicted", "Predicted"), yaxis_title=t.get("actual", "Ground truth"),
                         yaxis_autorange="reversed", height=380, title=t.get("cm_title", "Confusion matrix"),
                         margin={"t": 50, "b": 40})
        return {"pr": pr, "confusion": cm}


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _greedy_match(gt_xyxy: np.ndarray, pr_xyxy: np.ndarray, pr_scores: np.ndarray, iou: float) -> list[tuple[int, int]]:
    """COCO-style matching (:func:`pockit.resolve.match_boxes` in score order): [(gt index, prediction index)]."""
    return [(g, p) for p, g, _ in match_boxes(pr_xyxy, gt_xyxy, iou, scores=pr_scores)]


def _coco_eval(gt: Mapping, pred: Mapping, keys: list, ncls: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Run faster-coco-eval; returns map50, map50_95, per-class (ap50, ap50_95) (K,2), precision (T,R,K)."""
    from faster_coco_eval import COCO, COCOeval_faster

    images, anns, dets = [], [], []
    aid = 1
    for i, k in enumerate(keys, 1):
        g = gt[k]
        w = float(max(g.xyxy[:, 2].max() if len(g) else 1, 1))
        h = float(max(g.xyxy[:, 3].max() if len(g) else 1, 1))
        images.append({"id": i, "width": w, "height": h, "file_name": str(k)})
        for box, c in zip(g.xyxy.astype(float), g.class_ids):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append({"id": aid, "image_id": i, "category_id": int(c) + 1, "bbox": [box[0], box[1], bw, bh],
                         "area": bw * bh, "iscrowd": 0})
            aid += 1
        p = pred.get(k)
        if p is not None:
            for box, c, s in zip(p.xyxy.astype(float), p.class_ids, p.scores.astype(float)):
                dets.append({"image_id": i, "category_id": int(c) + 1, "score": s,
                             "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    cats = [{"id": c + 1, "name": str(c)} for c in range(ncls)]
    if not dets:
        return 0.0, 0.0, np.zeros((ncls, 2)), np.zeros((10, 101, ncls))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = np.asarray(ev.eval["precision"])  # T, R, K, A, M
    prec = prec[:, :, :, 0, -1]  # area "all", maxDets 100 (COCO standard)
    per = np.zeros((ncls, 2))
    for k in range(ncls):
        p50 = prec[0, :, k]
        pall = prec[:, :, k]
        per[k, 0] = float(p50[p50 > -1].mean()) if (p50 > -1).any() else float("nan")
        per[k, 1] = float(pall[pall > -1].mean()) if (pall > -1).any() else float("nan")
    valid = ~np.isnan(per[:, 0])
    map50 = float(per[valid, 0].mean()) if valid.any() else 0.0
    map5095 = float(per[valid, 1].mean()) if valid.any() else 0.0
    return map50, map5095, per, prec


def evaluate_detections(
    gt: Mapping[Hashable, Detections],
    pred: Mapping[Hashable, Detections],
    class_names: list[str] | Mapping[int, str] | None = None,
    conf: float = 0.25,
    iou: float = 0.5,
) -> DetectionReport:
    """Score predicted boxes against ground truth, image by image.

    gt / pred: {image key: Detections}; every gt key is an annotated image (an empty Detections
    means "annotated, nothing there"); pred keys absent from gt are ignored with a warning.
    class_names: list indexed by class id (or {id: name}); default: union of the inputs' names.
    conf: operating threshold for P/R/F1 and the confusion matrix (mAP uses all scores).
    """
    if not gt:
        raise EvaluationError("no ground truth: the ground-truth set has no annotated images; "
                              "pass the annotation file of the same footage (e.g. gt/gt.txt)")
    warnings: list[str] = []
    keys = list(gt)
    extra = [k for k in pred if k not in gt]
    overlap = [k for k in pred if k in gt]
    if pred and not overlap:
        gk, pk = sorted(map(str, gt))[:3], sorted(map(str, pred))[:3]
        raise EvaluationError(f"prediction and ground truth share no image/frame: gt keys start {gk}, "
                              f"prediction keys start {pk}. Check the frame numbering (MOT frames are 1-based) "
                              "and that both files are of the same footage")
    if extra:
        warnings.append(f"{len(extra)} predicted image(s)/frame(s) have no ground truth and were ignored "
                        f"(e.g. {sorted(map(str, extra))[:3]})")
    if not any(len(pred[k]) for k in overlap):
        warnings.append("no predictions on the annotated images: every ground-truth box counts as missed")

    if class_names is None:
        names: dict[int, str] = {}
        for d in list(gt.values()) + list(pred.values()):
            names.update({int(k): str(v) for k, v in d.class_names.items()})
        used = {int(c) for d in list(gt.values()) + list(pred.values()) for c in d.class_ids}
        ncls = max(used | set(names) | {0}) + 1
        class_names = [names.get(i, str(i)) for i in range(ncls)]
    elif isinstance(class_names, Mapping):
        ncls = max(int(k) for k in class_names) + 1
        class_names = [str(class_names.get(i, i)) for i in range(ncls)]
    class_names = [str(c) for c in class_names]
    K = len(class_names)
    for what, src in (("ground truth", gt), ("prediction", pred)):
        for k, d in src.items():
            if len(d) and (d.class_ids.min() < 0 or d.class_ids.max() >= K):
                raise EvaluationError(f"{what} image {k!r} has class id {int(d.class_ids.max())} outside "
                                      f"the {K} class names {class_names}; pass matching class_names or map classes")

    map50, map5095, ap, prec = _coco_eval(gt, pred, keys, K)

    tp = np.zeros(K, int)
    npred = np.zeros(K, int)
    ngt = np.zeros(K, int)
    cm = np.zeros((K + 1, K + 1), int)
    for k in keys:
        g = gt[k]
        p = pred.get(k, Detections.empty())
        p = p.filter(p.scores >= conf)
        for c in range(K):
            gm, pm = g.class_ids == c, p.class_ids == c
            ngt[c] += int(gm.sum())
            npred[c] += int(pm.sum())
            tp[c] += len(_greedy_match(g.xyxy[gm], p.xyxy[pm], p.scores[pm], iou))
        pairs = _greedy_match(g.xyxy, p.xyxy, p.scores, iou)
        mg = {a for a, _ in pairs}
        mp = {b for _, b in pairs}
        for a, b in pairs:
            cm[g.class_ids[a], p.class_ids[b]] += 1
        for a in set(range(len(g))) - mg:
            cm[g.class_ids[a], K] += 1
        for b in set(range(len(p))) - mp:
            cm[K, p.class_ids[b]] += 1

    per_class = []
    curves = {}
    recall_pts = np.linspace(0, 1, 101)
    for c, name in enumerate(class_names):
        P, R = _ratio(tp[c], npred[c]), _ratio(tp[c], ngt[c])
        per_class.append({
            "class": name, "gt": int(ngt[c]), "pred": int(npred[c]), "tp": int(tp[c]),
            "fp": int(npred[c] - tp[c]), "fn": int(ngt[c] - tp[c]),
            "precision": P, "recall": R, "f1": _f1(P, R),
            "ap50": None if np.isnan(ap[c, 0]) else float(ap[c, 0]),
            "ap50_95": None if np.isnan(ap[c, 1]) else float(ap[c, 1]),
        })
        if ngt[c]:
            p50 = prec[0, :, c]
            ok = p50 > -1
            curves[name] = {"recall": [round(float(x), 4) for x in recall_pts[ok]],
                            "precision": [round(float(x), 4) for x in p50[ok]]}
    return DetectionReport(
        class_names=class_names, conf=conf, iou=iou, map50=map50, map50_95=map5095, per_class=per_class,
        confusion=cm, pr_curves=curves, images=len(keys), gt_boxes=int(ngt.sum()),
        pred_boxes=int(sum(len(pred[k]) for k in overlap)), warnings=warnings,
    )
