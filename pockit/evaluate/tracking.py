"""Tracking accuracy from MOTChallenge files: CLEAR-MOT (MOTA, MOTP, ID switches, fragmentations,
MT/PT/ML), identity (IDF1, IDP, IDR) and HOTA (DetA, AssA, LocA).

The metrics follow the TrackEval definitions (Luiten et al., the MOTChallenge reference code)
line for line: same Hungarian matchings, same thresholds (IoU 0.5 for CLEAR and identity,
alpha 0.05..0.95 for HOTA), same edge cases. They are re-implemented here because the
packaged evaluators either break on NumPy 2 (py-motmetrics) or pull GUI OpenCV and
matplotlib into the runtime (trackeval); tests cross-check every number against trackeval.

Ground truth preprocessing as TrackEval's MOT15 setting: rows with ``consider == 0`` are dropped.
For MOT16/17/20 ground truth (class in column 8), only pedestrians (class 1) are kept and
predictions that match a distractor (classes 2, 7, 8, 12) at IoU 0.5 are removed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core import box_iou, load_mot_array
from ..core.mot import seqinfo_for
from .detection import EvaluationError

log = logging.getLogger(__name__)

EPS = np.finfo("float").eps
ALPHAS = np.arange(0.05, 0.99, 0.05)
DISTRACTORS = (2, 7, 8, 12)  # person_on_vehicle, static_person, distractor, reflection


@dataclass
class SequenceData:
    """Per-frame ids (0-based contiguous) and IoU matrices: the input of the metrics."""

    gt_ids: list[np.ndarray]
    tracker_ids: list[np.ndarray]
    similarity: list[np.ndarray]
    num_gt_ids: int
    num_tracker_ids: int
    gt_id_map: dict[int, int] = field(default_factory=dict)
    tracker_id_map: dict[int, int] = field(default_factory=dict)

    @property
    def num_gt_dets(self) -> int:
        return int(sum(len(g) for g in self.gt_ids))

    @property
    def num_tracker_dets(self) -> int:
        return int(sum(len(t) for t in self.tracker_ids))

    def as_trackeval(self) -> dict[str, Any]:
        """The same data in the dict layout TrackEval's metric classes take."""
        return {"gt_ids": self.gt_ids, "tracker_ids": self.tracker_ids, "similarity_scores": self.similarity,
                "num_gt_ids": self.num_gt_ids, "num_tracker_ids": self.num_tracker_ids,
                "num_gt_dets": self.num_gt_dets, "num_tracker_dets": self.num_tracker_dets,
                "num_timesteps": len(self.gt_ids), "seq": "seq"}


def clear_metrics(d: SequenceData, threshold: float = 0.5) -> dict[str, float]:
    """CLEAR-MOT: MOTA, MOTP, IDSW, Frag, MT/PT/ML (TrackEval ``CLEAR``)."""
    r = {"TP": 0, "FN": 0, "FP": 0, "IDSW": 0, "MOTP_sum": 0.0, "MT": 0, "PT": 0, "ML": 0, "Frag": 0}
    if d.num_tracker_dets == 0:
        r.update(FN=d.num_gt_dets, ML=d.num_gt_ids)
        return _clear_final(r)
    if d.num_gt_dets == 0:
        r.update(FP=d.num_tracker_dets)
        return _clear_final(r)
    n = d.num_gt_ids
    gt_count, gt_matched, frag = np.zeros(n), np.zeros(n), np.zeros(n)
    prev_tr = np.full(n, np.nan)  # last tracker id matched to each gt (any time back): ID switches
    prev_step = np.full(n, np.nan)  # tracker id matched in the previous step: continuity preference
    for g, t, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        if len(g) == 0:
            r["FP"] += len(t)
            continue
        if len(t) == 0:
            r["FN"] += len(g)
            gt_count[g] += 1
            continue
        score = 1000.0 * (t[None, :] == prev_step[g[:, None]]) + sim
        score[sim < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > EPS
        rows, cols = rows[ok], cols[ok]
        mg, mt = g[rows], t[cols]
        pm = prev_tr[mg]
        r["IDSW"] += int(np.sum(~np.isnan(pm) & (mt != pm)))
        gt_count[g] += 1
        gt_matched[mg] += 1
        was_untracked = np.isnan(prev_step)
        prev_tr[mg] = mt
        prev_step[:] = np.nan
        prev_step[mg] = mt
        frag += was_untracked & ~np.isnan(prev_step)
        r["TP"] += len(mg)
        r["FN"] += len(g) - len(mg)
        r["FP"] += len(t) - len(mg)
        r["MOTP_sum"] += float(sim[rows, cols].sum())
    seen = gt_count > 0
    ratio = gt_matched[seen] / gt_count[seen]
    r["MT"] = int(np.sum(ratio > 0.8))
    r["PT"] = int(np.sum(ratio >= 0.2)) - r["MT"]
    r["ML"] = n - r["MT"] - r["PT"]
    r["Frag"] = int(np.sum(frag[frag > 0] - 1))
    return _clear_final(r)


def _clear_final(r: dict) -> dict:
    tp, fn, fp = r["TP"], r["FN"], r["FP"]
    r["MOTA"] = (tp - fp - r["IDSW"]) / max(1.0, tp + fn)
    r["MOTP"] = r["MOTP_sum"] / max(1.0, tp)
    r["MODA"] = (tp - fp) / max(1.0, tp + fn)
    r["CLR_Re"] = tp / max(1.0, tp + fn)
    r["CLR_Pr"] = tp / max(1.0, tp + fp)
    return r


def identity_metrics(d: SequenceData, threshold: float = 0.5) -> dict[str, float]:
    """IDF1, IDP, IDR with the global one-to-one id assignment (TrackEval ``Identity``)."""
    r = {"IDTP": 0, "IDFN": 0, "IDFP": 0}
    if d.num_tracker_dets == 0:
        r["IDFN"] = d.num_gt_dets
    elif d.num_gt_dets == 0:
        r["IDFP"] = d.num_tracker_dets
    else:
        ng, nt = d.num_gt_ids, d.num_tracker_ids
        pot = np.zeros((ng, nt))
        gc, tc = np.zeros(ng), np.zeros(nt)
        for g, t, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
            a, b = np.nonzero(sim >= threshold)
            pot[g[a], t[b]] += 1
            gc[g] += 1
            tc[t] += 1
        fp = np.zeros((ng + nt, ng + nt))
        fn = np.zeros((ng + nt, ng + nt))
        fp[ng:, :nt] = 1e10
        fn[:ng, nt:] = 1e10
        for i in range(ng):
            fn[i, :nt] = gc[i]
            fn[i, nt + i] = gc[i]
        for j in range(nt):
            fp[:ng, j] = tc[j]
            fp[j + ng, j] = tc[j]
        fn[:ng, :nt] -= pot
        fp[:ng, :nt] -= pot
        rows, cols = linear_sum_assignment(fn + fp)
        r["IDFN"] = int(fn[rows, cols].sum())
        r["IDFP"] = int(fp[rows, cols].sum())
        r["IDTP"] = int(gc.sum() - r["IDFN"])
    tp, fn_, fp_ = r["IDTP"], r["IDFN"], r["IDFP"]
    r["IDR"] = tp / max(1.0, tp + fn_)
    r["IDP"] = tp / max(1.0, tp + fp_)
    r["IDF1"] = tp / max(1.0, tp + 0.5 * fp_ + 0.5 * fn_)
    return r


def hota_metrics(d: SequenceData) -> dict[str, Any]:
    """HOTA, DetA, AssA, DetRe/Pr, AssRe/Pr, LocA averaged over alpha 0.05..0.95 (TrackEval ``HOTA``).

    Per-alpha arrays are kept under ``*_alpha`` keys.
    """
    A = len(ALPHAS)
    TP, FN, FP, LocA = np.zeros(A), np.zeros(A), np.zeros(A), np.zeros(A)
    AssA, AssRe, AssPr = np.zeros(A), np.zeros(A), np.zeros(A)
    if d.num_tracker_dets == 0 or d.num_gt_dets == 0:
        FN[:] = d.num_gt_dets if d.num_tracker_dets == 0 else 0
        FP[:] = d.num_tracker_dets if d.num_gt_dets == 0 else 0
        LocA[:] = 1.0
        return _hota_final(TP, FN, FP, LocA, AssA, AssRe, AssPr)
    ng, nt = d.num_gt_ids, d.num_tracker_ids
    pot = np.zeros((ng, nt))
    gc, tc = np.zeros((ng, 1)), np.zeros((1, nt))
    for g, t, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        m = denom > EPS
        sim_iou[m] = sim[m] / denom[m]
        pot[g[:, None], t[None, :]] += sim_iou
        gc[g] += 1
        tc[0, t] += 1
    align = pot / (gc + tc - pot)
    counts = [np.zeros_like(pot) for _ in ALPHAS]
    for g, t, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        if len(g) == 0:
            FP += len(t)
            continue
        if len(t) == 0:
            FN += len(g)
            continue
        rows, cols = linear_sum_assignment(-(align[g[:, None], t[None, :]] * sim))
        for a, alpha in enumerate(ALPHAS):
            ok = sim[rows, cols] >= alpha - EPS
            ar, ac = rows[ok], cols[ok]
            TP[a] += len(ar)
            FN[a] += len(g) - len(ar)
            FP[a] += len(t) - len(ar)
            if len(ar):
                LocA[a] += float(sim[ar, ac].sum())
                counts[a][g[ar], t[ac]] += 1
    for a in range(A):
        mc = counts[a]
        AssA[a] = np.sum(mc * (mc / np.maximum(1, gc + tc - mc))) / max(1.0, TP[a])
        AssRe[a] = np.sum(mc * (mc / np.maximum(1, gc))) / max(1.0, TP[a])
        AssPr[a] = np.sum(mc * (mc / np.maximum(1, tc))) / max(1.0, TP[a])
    LocA = np.maximum(1e-10, LocA) / np.maximum(1e-10, TP)
    return _hota_final(TP, FN, FP, LocA, AssA, AssRe, AssPr)


def _hota_final(TP, FN, FP, LocA, AssA, AssRe, AssPr) -> dict[str, Any]:
    DetRe = TP / np.maximum(1, TP + FN)
    DetPr = TP / np.maximum(1, TP + FP)
    DetA = TP / np.maximum(1, TP + FN + FP)
    HOTA = np.sqrt(DetA * AssA)
    arrays = {"HOTA": HOTA, "DetA": DetA, "AssA": AssA, "DetRe": DetRe, "DetPr": DetPr, "AssRe": AssRe, "AssPr": AssPr, "LocA": LocA}
    out: dict[str, Any] = {k: float(np.mean(v)) for k, v in arrays.items()}
    out["HOTA(0)"] = float(HOTA[0])
    out.update({f"{k}_alpha": [float(x) for x in v] for k, v in arrays.items()})
    out.update(HOTA_TP=TP.tolist(), HOTA_FN=FN.tolist(), HOTA_FP=FP.tolist())
    return out


# --------------------------------------------------------------------------------------------
@dataclass
class TrackingReport:
    """Results of :func:`evaluate_tracks` for one sequence."""

    metrics: dict[str, Any]
    frames: int
    gt_ids: int
    gt_boxes: int
    pred_ids: int
    pred_boxes: int
    gt_path: str = ""
    pred_path: str = ""
    warnings: list[str] = field(default_factory=list)

    SUMMARY = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "Frag", "MT", "PT", "ML",
               "TP", "FP", "FN", "LocA")

    @property
    def summary(self) -> dict[str, float]:
        return {k: self.metrics[k] for k in self.SUMMARY}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "metrics": self.metrics, "frames": self.frames, "gt_ids": self.gt_ids,
                "gt_boxes": self.gt_boxes, "pred_ids": self.pred_ids, "pred_boxes": self.pred_boxes,
                "gt": self.gt_path, "pred": self.pred_path, "warnings": self.warnings}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([{"metric": k, "value": v} for k, v in self.summary.items()])

    def figures(self, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Plotly figure ``hota``: DetA, AssA and HOTA against the localisation threshold alpha."""
        import plotly.graph_objects as go

        t = dict(labels or {})
        fig = go.Figure()
        for k in ("HOTA", "DetA", "AssA", "LocA"):
            fig.add_trace(go.Scatter(x=[round(a, 2) for a in ALPHAS], y=self.metrics[f"{k}_alpha"],
                                     mode="lines+markers", name=k))
        fig.update_layout(xaxis_title=t.get("alpha", "IoU threshold alpha"), yaxis_range=[0, 1.02], height=340,
                          title=t.get("hota_title", "HOTA components vs localisation threshold"),
                          margin={"t": 50, "b": 40})
        return {"hota": fig}


def _seq_length(gt_path: Path) -> int | None:
    try:
        return int(seqinfo_for(gt_path)["seqlength"])
    except (KeyError, ValueError):
        return None


def _xywh_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:4]], 1)
    bx = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:4]], 1)
    return box_iou(ax, bx)


def prepare_sequence(gt: np.ndarray, pred: np.ndarray, num_frames: int) -> tuple[SequenceData, list[str]]:
    """Build :class:`SequenceData` from MOT row arrays (frame, id, x, y, w, h, conf, c8, c9, c10)."""
    warnings: list[str] = []
    mot17 = len(gt) > 0 and bool(np.all(gt[:, 7] == np.round(gt[:, 7])) and np.all(gt[:, 7] >= 1)
                                 and np.all((gt[:, 8] >= 0) & (gt[:, 8] <= 1)))
    gts, prs, sims = [], [], []
    for f in range(1, num_frames + 1):
        g = gt[gt[:, 0] == f]
        p = pred[pred[:, 0] == f]
        if mot17 and len(g) and len(p):
            iou = _xywh_iou(g[:, 2:6], p[:, 2:6])
            score = np.where(iou >= 0.5 - EPS, iou, 0)
            rows, cols = linear_sum_assignment(-score)
            ok = score[rows, cols] > EPS
            distract = np.isin(g[rows[ok], 7], DISTRACTORS)
            p = np.delete(p, cols[ok][distract], axis=0)
        keep = g[:, 6] != 0
        if mot17:
            keep &= g[:, 7] == 1
        g = g[keep]
        gts.append(g)
        prs.append(p)
        sims.append(_xywh_iou(g[:, 2:6], p[:, 2:6]) if len(g) and len(p) else np.zeros((len(g), len(p))))
    if mot17:
        warnings.append("MOT16/17/20 ground truth: pedestrians only, predictions on distractors removed")
    gid = np.unique(np.concatenate([g[:, 1] for g in gts])) if gts else np.zeros(0)
    tid = np.unique(np.concatenate([p[:, 1] for p in prs])) if prs else np.zeros(0)
    gmap = {int(v): i for i, v in enumerate(gid)}
    tmap = {int(v): i for i, v in enumerate(tid)}
    data = SequenceData(
        gt_ids=[np.array([gmap[int(v)] for v in g[:, 1]], int) for g in gts],
        tracker_ids=[np.array([tmap[int(v)] for v in p[:, 1]], int) for p in prs],
        similarity=sims, num_gt_ids=len(gid), num_tracker_ids=len(tid), gt_id_map=gmap, tracker_id_map=tmap,
    )
    return data, warnings


def evaluate_tracks(
    gt: str | Path | np.ndarray,
    pred: str | Path | np.ndarray,
    num_frames: int | None = None,
    frames: tuple[int, int] | None = None,
) -> TrackingReport:
    """Score a predicted MOT track file against a ground-truth MOT file of the same sequence.

    num_frames: sequence length; default from seqinfo.ini beside the gt (MOTChallenge layout),
    else the last frame of either file. Raises :class:`EvaluationError` on empty ground truth,
    0-based or disjoint frame numbering, or predictions past the sequence end.
    frames: (first, last) MOT frames, inclusive: score only this span (what a run analysed, see
    :func:`pockit.evaluate.events.analysed_spans`); rows outside it on either side are left out.
    """
    gt_path = str(gt) if not isinstance(gt, np.ndarray) else "<array>"
    pred_path = str(pred) if not isinstance(pred, np.ndarray) else "<array>"
    if not isinstance(gt, np.ndarray) and not Path(gt).exists():
        raise EvaluationError(f"ground-truth file not found: {gt} (a MOTChallenge gt.txt: frame,id,x,y,w,h,...)")
    if not isinstance(pred, np.ndarray) and not Path(pred).exists():
        raise EvaluationError(f"prediction file not found: {pred} (the run's tracks/<source>.txt)")
    G = gt if isinstance(gt, np.ndarray) else load_mot_array(gt)
    P = pred if isinstance(pred, np.ndarray) else load_mot_array(pred)
    if len(G) == 0:
        raise EvaluationError(f"ground truth {gt_path} has no rows: nothing to evaluate against")
    span_note = None
    if frames is not None:
        f0, f1 = int(frames[0]), int(frames[1])
        if f1 < f0:
            raise EvaluationError(f"frames {f0}-{f1}: the analysed span is empty (the run decoded no frame)")
        n_out = int(((G[:, 0] < f0) | (G[:, 0] > f1)).sum())
        g0, g1 = int(G[:, 0].min()), int(G[:, 0].max())
        G = G[(G[:, 0] >= f0) & (G[:, 0] <= f1)]
        P = P[(P[:, 0] >= f0) & (P[:, 0] <= f1)]
        if len(G) == 0:
            raise EvaluationError(f"frame ranges do not overlap: ground truth {gt_path} covers frames {g0}-{g1}, "
                                  f"the run analysed frames {f0}-{f1}. Are they the same footage, with the same "
                                  "start and frame rate (source fps/start options)?")
        span_note = f"scored on frames {f0}-{f1} only (what the run analysed): {n_out} ground-truth boxes outside"
        num_frames = f1
    for name, arr, path in (("ground truth", G, gt_path), ("prediction", P, pred_path)):
        if len(arr) and arr[:, 0].min() < 1:
            raise EvaluationError(f"{name} {path} has frame {int(arr[:, 0].min())}: MOT frames are 1-based; "
                                  "add 1 to the frame column")
        if len(arr):
            key = arr[:, 0].astype(np.int64) * 10**9 + arr[:, 1].astype(np.int64)
            if len(np.unique(key)) != len(key):
                raise EvaluationError(f"{name} {path} repeats a track id within one frame: each id may appear "
                                      "once per frame")
    warnings: list[str] = [span_note] if span_note else []
    seq_len = num_frames or (None if isinstance(gt, np.ndarray) else _seq_length(Path(gt)))
    g0, g1 = int(G[:, 0].min()), int(G[:, 0].max())
    if len(P):
        p0, p1 = int(P[:, 0].min()), int(P[:, 0].max())
        if p0 > g1 or p1 < g0:
            raise EvaluationError(f"frame ranges do not overlap: ground truth {gt_path} covers frames {g0}-{g1}, "
                                  f"prediction {pred_path} covers {p0}-{p1}. Are they the same footage, "
                                  "with the same start and frame rate (source fps/start options)?")
        if seq_len and p1 > seq_len:
            raise EvaluationError(f"prediction {pred_path} has frames up to {p1} but the sequence has {seq_len} "
                                  "frames (seqinfo.ini): the run used a different source or frame rate")
        if not seq_len and p1 > g1:
            warnings.append(f"prediction runs to frame {p1}, past the last annotated frame {g1}: "
                            f"its {int((P[:, 0] > g1).sum())} boxes there count as false positives")
        if p1 < g1:
            warnings.append(f"prediction stops at frame {p1}, ground truth runs to {g1}: "
                            "later ground truth counts as missed (was the run cut short by max_frames?)")
    else:
        warnings.append("the prediction has no tracks: every ground-truth box counts as missed")
    n = seq_len or max(g1, int(P[:, 0].max()) if len(P) else 0)
    data, w = prepare_sequence(G, P, n)
    warnings += w
    m: dict[str, Any] = {}
    m.update(hota_metrics(data))
    m.update(clear_metrics(data))
    m.update(identity_metrics(data))
    return TrackingReport(metrics=m, frames=n - (int(frames[0]) - 1 if frames is not None else 0), gt_ids=data.num_gt_ids, gt_boxes=data.num_gt_dets,
                          pred_ids=data.num_tracker_ids, pred_boxes=data.num_tracker_dets, gt_path=gt_path,
                          pred_path=pred_path, warnings=warnings)
