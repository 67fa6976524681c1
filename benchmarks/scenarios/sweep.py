"""Offline sweep of the default settings on cached detections (see detcache.py): the product's tracker
(``pockit.tracking.make_tracker``), rules (``pockit.rules.replay``) and evaluation, without the detector.

    python benchmarks/scenarios/sweep.py grid   [--json out.json]   # the grid below, table per setting
    python benchmarks/scenarios/sweep.py loo                         # leave-one-sequence-out on model.conf

Each setting is scored per sequence with the same numbers as run.py (event F1, MOTA, IDF1, ...).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEQUENCES, score, sequence
from detcache import detections


def scene_config(seq, rule_defaults: dict | None = None):
    """The scene as a PocConfig; rule_defaults fill fields the scene leaves unset (e.g. min_frames, hold)."""
    from pockit.config import parse_config

    data = yaml.safe_load(seq.scene.read_text())
    if rule_defaults:
        from pockit.rules.schema import CrowdRule, LineCrossingRule, ZoneEnterRule

        for r in data.get("rules", []):
            for k, v in rule_defaults.items():
                model = {"zone_enter": ZoneEnterRule, "line_crossing": LineCrossingRule, "crowd": CrowdRule}.get(r["type"])
                if model is not None and k in model.model_fields and k not in r:
                    r[k] = v
    return parse_config(data, str(seq.scene))


def simulate(name: str, conf: float | None = None, iou: float | None = None, tracker: dict | None = None,
             rule_defaults: dict | None = None, workdir: Path | None = None) -> dict:
    """Score one sequence: cached detections at (conf, iou) -> tracker -> MOT file -> rules -> metrics.

    None = the current default (ModelConfig / TrackerConfig / rule schema)."""
    from pockit.config import ModelConfig, TrackerConfig
    from pockit.core.mot import write_mot
    from pockit.rules.replay import replay
    from pockit.tracking import make_tracker

    seq = sequence(name)
    m = ModelConfig()
    dets, _ = detections(name, m.conf if conf is None else conf, m.iou if iou is None else iou)
    tcfg = TrackerConfig(**(tracker or {}))
    tr = make_tracker(tcfg, fps=seq.fps)
    out = []
    for i, d in enumerate(dets):
        t = tr.update(d, i / seq.fps)
        if len(t):
            out.append((i + 1, t))
    wd = Path(workdir or tempfile.mkdtemp(prefix="scen_"))
    path = write_mot(out, wd / f"{name}.txt")
    cfg = scene_config(seq, rule_defaults)
    ref = replay(cfg, seq.gt)
    ev = replay(cfg, path, fps=seq.fps, frame_size=seq.size)
    return score(seq, ev, path, ref=ref)


# -- the grid ------------------------------------------------------------------------------------
GRID = {
    "conf": [0.1],
    "high": [0.3, 0.4, 0.5],
    "act": [0.3, 0.4, 0.5],
    "lost": [1.0, 2.0],
    "mcf": [2, 3],
    "miniou": [0.1, 0.2],
    "min_frames": [1, 2, 3],
}


LOO_CONF = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]


def settings(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _debounce(s: dict, name: str) -> dict | None:
    """Proposed rule change "debounce in seconds" (zone_enter/line_crossing): the new state must hold on
    observations spanning at least debounce_s seconds; on this footage's regular frame grid that is
    min_frames = 1 + ceil(debounce_s x fps) consecutive observations."""
    if not s.get("debounce_s"):
        return None
    fps = sequence(name).fps
    return {"min_frames": 1 + math.ceil(s["debounce_s"] * fps - 1e-9)}


def run_setting(s: dict, names=SEQUENCES, workdir: Path | None = None) -> dict:
    tracker = {k2: s[k1] for k1, k2 in (("high", "high_conf_det_threshold"), ("act", "track_activation_threshold"),
                                        ("lost", "lost_track_seconds"), ("mcf", "minimum_consecutive_frames"),
                                        ("miniou", "minimum_iou_threshold"),
                                        ("reid", "reid_distance")) if k1 in s}
    rd = {"min_frames": s["min_frames"]} if "min_frames" in s else {}
    if "crowd_hold" in s:  # the crowd rule's hold (seconds; 0 = only the tracks observed on the frame count)
        rd["hold"] = s["crowd_hold"]
    return {n: simulate(n, conf=s.get("conf"), iou=s.get("iou"), tracker=tracker,
                        rule_defaults={**rd, **(_debounce(s, n) or {})} or None, workdir=workdir) for n in names}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["grid", "one", "loo"])
    ap.add_argument("--json")
    ap.add_argument("--set", default="{}", help="one setting as JSON (mode one)")
    a = ap.parse_args()
    wd = Path(tempfile.mkdtemp(prefix="scen_sweep_"))
    if a.mode == "loo":
        res = leave_one_out(LOO_CONF)
        for held, r in res["folds"].items():
            print(f"held out {held}: conf chosen on the other three = {r['chosen']} (their min F1 "
                  f"{r['train_min_f1']:.3f}); F1 on {held} = {r['test_f1']:.3f} (best any conf: "
                  f"{r['test_f1_best_possible']:.3f})")
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1))
        return
    rows = []
    todo = settings(GRID) if a.mode == "grid" else [json.loads(a.set)]
    for s in todo:
        r = run_setting(s, workdir=wd)
        rows.append({"setting": s, "results": {n: {k: v for k, v in x.items() if k != "per_rule"} for n, x in r.items()}})
        f1 = [x["f1"] for x in r.values()]
        print(json.dumps(s), " ".join(f"{n[:6]}:F1={x['f1']:.2f},MOTA={x['MOTA']:.1f},IDF1={x['IDF1']:.1f},"
                                      f"rec={x['box_recall']:.0f},sw={x['IDSW']}" for n, x in r.items()),
              f"minF1={min(f1):.3f} meanF1={np.mean(f1):.3f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))



def leave_one_out(values: list, key: str = "conf", base: dict | None = None, names=SEQUENCES) -> dict:
    """Choose ``key`` on three sequences (max of the min event F1, then the mean), test on the fourth."""
    base = dict(base or {})
    f1 = {v: {n: x["f1"] for n, x in run_setting({**base, key: v}, names).items()} for v in values}
    out = {}
    for held in names:
        train = [n for n in names if n != held]
        best = max(values, key=lambda v: (min(f1[v][n] for n in train), float(np.mean([f1[v][n] for n in train]))))
        out[held] = {"chosen": best, "train_min_f1": min(f1[best][n] for n in train), "test_f1": f1[best][held],
                     "test_f1_best_possible": max(f1[v][held] for v in values)}
    return {"key": key, "values": values, "base": base, "f1": {str(v): f1[v] for v in values}, "folds": out}


if __name__ == "__main__":
    main()
