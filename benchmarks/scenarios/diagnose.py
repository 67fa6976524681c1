"""Why is an event missed or false? Every unmatched reference event and every false alarm of one setting,
on the cached detections (detcache.py), with the tracks behind it.

    python benchmarks/scenarios/diagnose.py [--set '{"lost": 2.0}'] [--sequences TUD-Campus ...]

For each reference event (a ground-truth track g, a rule, a time t) that no alarm matched: the predicted
track ids that covered g (IoU >= 0.5 box by box) in the window before t, where g had no confirmed box
(and whether the detector had a candidate for it at all, at any score >= the cache's 0.05), and alarms of
the same rule that came too early/late. For each false alarm (a predicted track p): the ground-truth id p
covered, whether that id has a reference event of the same rule (-> a duplicate after an ID switch),
and the distance between p's anchor and g's anchor (a box offset that moves the anchor over a line or edge).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEQUENCES, TOLERANCE, sequence
from detcache import CACHE_CONF, build, detections

WINDOW = {"loitering": None, "line_crossing": 1.0, "zone_enter": 1.0, "crowd": 1.0}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    ar = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])
    return inter / (ar(a)[:, None] + ar(b)[None, :] - inter + 1e-9)


def correspondence(gt: dict, pred: dict, frames: int) -> dict[int, dict[int, int]]:
    """{frame: {gt id: pred id}} by Hungarian matching at IoU >= 0.5 (CLEAR's matching, without its memory)."""
    from scipy.optimize import linear_sum_assignment

    out = {}
    for f in range(1, frames + 1):
        g, p = gt.get(f), pred.get(f)
        if g is None or p is None or not len(g) or not len(p):
            out[f] = {}
            continue
        m = _iou(g.xyxy, p.xyxy)
        r, c = linear_sum_assignment(-m)
        out[f] = {int(g.track_ids[i]): int(p.track_ids[j]) for i, j in zip(r, c) if m[i, j] >= 0.5}
    return out


def explain(name: str, setting: dict) -> dict:
    from sweep import run_setting

    from pockit.core import read_mot
    from pockit.evaluate.events import evaluate_events, fold_episodes
    from pockit.rules.replay import replay

    seq = sequence(name)
    wd = Path(tempfile.mkdtemp(prefix="scen_diag_"))
    res = run_setting(setting, [name], workdir=wd)[name]
    tracks_path = wd / f"{name}.txt"
    gt = read_mot(seq.gt, gt=True)
    pred = read_mot(tracks_path)
    from sweep import scene_config

    cfg = scene_config(seq)
    ref = fold_episodes(replay(cfg, seq.gt))
    ev = fold_episodes(replay(cfg, tracks_path, fps=seq.fps, frame_size=seq.size))
    rep = evaluate_events(ev, ref, tolerance=TOLERANCE)
    matched_p = {id(a) for a, _ in rep.matches}
    matched_g = {id(b) for _, b in rep.matches}
    corr = correspondence(gt, pred, seq.length)
    z = np.load(build(name))
    cand = {f: z["xyxy"][z["frame"] == f] for f in range(1, seq.length + 1)}
    score_of = {f: z["score"][z["frame"] == f] for f in range(1, seq.length + 1)}
    from pockit.config import ModelConfig

    conf = setting.get("conf", ModelConfig().conf)
    kept, _ = detections(name, conf, setting.get("iou", ModelConfig().iou))  # what the tracker received
    rules = {r.name: r for r in cfg.rules}
    lines, causes, hole_total = [], Counter(), Counter()

    def hole_reason(b, f) -> str:
        """Why the gt box b of frame f has no confirmed track box."""
        k = kept[f - 1]
        if len(k) and (_iou(b[None], k.xyxy).ravel() >= 0.5).any():
            return "detected, no confirmed track"
        iou = _iou(b[None], cand[f]).ravel()
        if not (iou >= 0.5).any():
            return "no candidate at all"
        if score_of[f][iou >= 0.5].max() >= conf:
            return "removed by NMS"
        return "candidate below conf"

    def gt_box(f, g):
        d = gt.get(f)
        if d is None:
            return None
        k = np.flatnonzero(d.track_ids == g)
        return d.xyxy[k[0]] if len(k) else None

    for e in ref:
        if id(e) in matched_g:
            continue
        rule = rules[e.rule]
        f_evt = e.frame + 1
        ids = e.track_id if isinstance(e.track_id, list) else [e.track_id]
        near = [p for p in ev if p.rule == e.rule and abs(p.time - e.time) <= 3.0]
        if rule.type == "loitering":
            f0 = round(float(e.extra.get("since", e.time)) * seq.fps) + 1
        else:
            f0 = f_evt - round((WINDOW.get(rule.type) or 1.0) * seq.fps)
        f0 = max(1, f0)
        parts = []
        for g in ids:
            cover = [corr[f].get(g) for f in range(f0, f_evt + 1) if gt_box(f, g) is not None]
            pids = [c for c in dict.fromkeys(cover) if c is not None]
            holes = sum(c is None for c in cover)
            why = Counter()
            for f in range(f0, f_evt + 1):
                b = gt_box(f, g)
                if b is None or corr[f].get(g) is not None:
                    continue
                why[hole_reason(b, f)] += 1
            parts.append(f"gt {g}: pred ids {pids} over frames {f0}-{f_evt}, {holes}/{len(cover)} frames without a "
                         f"confirmed box: {dict(why)}")
            hole_total.update(why)
            if rule.type != "crowd":
                if len(pids) > 1:
                    causes[f"{rule.type}: FN, gt track split over {len(pids)} pred ids"] += 1
                elif not pids:
                    causes[f"{rule.type}: FN, gt track not tracked at all"] += 1
                elif holes:
                    causes[f"{rule.type}: FN, gt track tracked with {holes} holes"] += 1
                else:
                    causes[f"{rule.type}: FN, tracked (one id), geometry/timing"] += 1
        if rule.type == "crowd":
            causes["crowd: FN (start/end shifted or split)"] += 1
        lines.append(f"  MISSED {e.rule} ({rule.type}) t={e.time:.2f}s frame {f_evt} tracks {ids}; alarms of this "
                     f"rule within 3 s: {[(round(p.time, 2), p.track_id) for p in near]}\n    " + "\n    ".join(parts))
    for p in ev:
        if id(p) in matched_p:
            continue
        rule = rules[p.rule]
        f_evt = p.frame + 1
        if rule.type == "crowd":
            causes["crowd: FP (extra episode)"] += 1
            lines.append(f"  FALSE {p.rule} t={p.time:.2f}s count {p.count} tracks {p.track_id}")
            continue
        inv = {v: k for k, v in corr[f_evt].items()}
        g = inv.get(int(p.track_id))
        if g is None:  # look a little around the event
            for df in range(1, int(seq.fps) + 1):
                for f in (f_evt - df, f_evt + df):
                    if f in corr:
                        g = {v: k for k, v in corr[f].items()}.get(int(p.track_id), g)
                if g is not None:
                    break
        same = [r for r in ref if r.rule == p.rule and (r.track_id == g)]
        first = min((f for f in corr if int(p.track_id) in corr[f].values()), default=None)
        if g is None:
            cause = "pred track matches no gt box (unannotated person / ghost / poor box)"
        elif same:
            cause = (f"gt {g} has its own reference event at {[round(r.time, 2) for r in same]} "
                     f"(duplicate or shifted > {TOLERANCE}s)")
        else:
            b, pb = gt_box(f_evt, g), pred[f_evt].xyxy[pred[f_evt].track_ids == p.track_id]
            cause = f"gt {g} has no event of this rule"
            if b is not None and len(pb):
                cause += (f"; anchor pred ({(pb[0][0] + pb[0][2]) / 2:.0f},{pb[0][3]:.0f}) vs gt "
                          f"({(b[0] + b[2]) / 2:.0f},{b[3]:.0f})")
        causes[f"{rule.type}: FP, " + cause.split(" (")[0].split(";")[0].split(" at ")[0]] += 1
        lines.append(f"  FALSE {p.rule} ({rule.type}) t={p.time:.2f}s frame {f_evt} pred track {p.track_id} "
                     f"(first matched frame {first}): {cause}")
    causes.update({f"gt-box holes in missed events: {k}": v for k, v in hole_total.items()})
    return {"result": {k: v for k, v in res.items() if k != "per_rule"}, "per_rule": res["per_rule"],
            "lines": lines, "causes": dict(causes)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="{}")
    ap.add_argument("--sequences", nargs="+", default=list(SEQUENCES))
    ap.add_argument("--json")
    a = ap.parse_args()
    s = json.loads(a.set)
    out = {}
    total = Counter()
    for n in a.sequences:
        r = out[n] = explain(n, s)
        x = r["result"]
        print(f"== {n}: P {x['precision']:.2f} R {x['recall']:.2f} F1 {x['f1']:.3f} MOTA {x['MOTA']:.1f} "
              f"IDF1 {x['IDF1']:.1f} IDsw {x['IDSW']}  per rule {r['per_rule']}")
        print("\n".join(r["lines"]))
        total.update(r["causes"])
    print("== causes over", ", ".join(a.sequences), f"(setting {s}, cache conf {CACHE_CONF}):")
    for k, v in total.most_common():
        print(f"  {v:3d}  {k}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
