"""Scenario benchmark: every MOT sequence with ground truth, its scene (benchmarks/scenarios/scenes/),
pockit end to end with default settings vs Ultralytics ``model.track`` (ByteTrack) with the same weights.

    python benchmarks/scenarios/run.py [--json out.json] [--sequences TUD-Campus ...] [--no-sensitivity]
    python benchmarks/scenarios/run.py --sensitivity-only     # only the plots -> benchmarks/results/

Reference events: the scene's rules replayed on the ground-truth tracks (``pockit rules SCENE --tracks
gt.txt``). pockit: ``pockit.run`` of the scene (default model/tracker/rule settings), then its
events.jsonl and tracks/<source>.txt are scored with ``pockit.evaluate`` (= ``pockit eval events`` and
``pockit eval tracks``). Ultralytics: ``YOLO(person-yolov8s.pt).track(frame, persist=True)`` frame by
frame (its defaults: conf 0.1, bytetrack.yaml), tracks written as MOT text, the same rules replayed on
them (``pockit rules --tracks``) and scored the same way. The sensitivity plots (event F1 per sequence,
mean and min, against each setting in SENSITIVITY, others at their defaults) are computed offline on
cached detections (detcache.py, sweep.py) and written as HTML and PNG (kaleido) under ``--plots``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SEQUENCES, replay_tracks, score, sequence

os.environ.setdefault("YOLO_OFFLINE", "1")
COLS = (("precision", "P", ".2f"), ("recall", "R", ".2f"), ("f1", "F1", ".2f"), ("latency_p50_s", "lat p50 s", "+.2f"),
        ("MOTA", "MOTA", ".1f"), ("IDF1", "IDF1", ".1f"), ("HOTA", "HOTA", ".1f"), ("IDSW", "IDsw", "d"),
        ("box_recall", "box rec %", ".1f"))


def run_pockit(seq, out_dir: Path) -> dict:
    import pockit
    from pockit.config import load_config
    from pockit.core import read_events

    cfg = load_config(seq.scene)
    cfg.outputs.snapshots = False  # outputs only: no effect on detection, tracking or rules
    run_dir = out_dir / "pockit" / seq.name
    t0 = time.time()
    pockit.run(cfg, run_dir=run_dir, progress=False, overwrite=True)
    wall = time.time() - t0
    src = cfg.sources[0].id
    res = score(seq, read_events(run_dir / "events.jsonl"), run_dir / "tracks" / f"{src}.txt")
    res["wall_s"] = wall
    res["run_dir"] = str(run_dir)
    return res


def ultralytics_tracks(seq, out: Path, force: bool = False) -> Path:
    """Ultralytics model.track (ByteTrack, persist=True, its default settings) on the sequence's frames."""
    if out.exists() and not force:
        return out
    import cv2
    from ultralytics import YOLO

    from pockit.core import Detections
    from pockit.core.mot import write_mot
    from pockit.registry import resolve_model

    model = YOLO(str(resolve_model("person-yolov8s-pt")))
    rows = []
    for i, p in enumerate(seq.frames()):
        r = model.track(cv2.imread(str(p)), persist=True, tracker="bytetrack.yaml", verbose=False, device="cpu")[0]
        b = r.boxes
        if b is None or b.id is None or len(b) == 0:
            continue
        rows.append((i + 1, Detections(xyxy=b.xyxy.numpy(), scores=b.conf.numpy(), class_ids=b.cls.numpy().astype(int),
                                       track_ids=b.id.numpy().astype(int))))
    return write_mot(rows, out)


def run_ultralytics(seq, out_dir: Path, force: bool = False) -> dict:
    t0 = time.time()
    path = ultralytics_tracks(seq, CACHE / f"ultralytics_{seq.name}.txt", force)
    res = score(seq, replay_tracks(seq, path), path)
    res["wall_s"] = time.time() - t0
    res["tracks"] = str(path)
    return res


def table(results: dict) -> str:
    head = "| sequence | tracker | events (ref) | " + " | ".join(c[1] for c in COLS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLS))]
    for name, per in results.items():
        for who in ("pockit", "ultralytics"):
            r = per.get(who)
            if r is None:
                continue
            cells = []
            for k, _, f in COLS:
                v = r.get(k)
                cells.append("-" if v is None else format(v, f))
            lines.append(f"| {name} | {who} | {r['events_pred']} ({r['events_ref']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    out = []
    for name, per in results.items():
        p, u = per.get("pockit"), per.get("ultralytics")
        if not p or not u:
            continue
        checks = [("F1>=0.90", p["f1"] >= 0.90), ("MOTA>=UL", p["MOTA"] >= u["MOTA"]),
                  ("IDF1>=UL+10", p["IDF1"] >= u["IDF1"] + 10)]
        out.append(f"{name}: " + ", ".join(f"{c} {'met' if ok else 'NOT met'}" for c, ok in checks))
    return out


# Each setting the defaults depend on, swept alone (others at their defaults) on the cached detections:
# (sweep.py key, label, values, the product default or None for a proposed rule change that is not a default)
SENSITIVITY = (
    ("conf", "model.conf (detector score threshold)", [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]),
    ("high", "tracker.high_conf_det_threshold", [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]),
    ("reid", "tracker.reid_distance (box heights; 0 = off)", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("lost", "tracker.lost_track_seconds (x source fps = frames)", [0.5, 1.0, 1.5, 2.0, 3.0]),
    ("crowd_hold", "crowd.hold (s a hidden member still counts; 0 = off)",
     [0.0, 0.25, 0.5, 1.0, 2.0]),
    ("debounce_s", "zone_enter/line_crossing: seconds the new side must hold (proposed, 0 = today)",
     [0.0, 0.04, 0.08, 0.1, 0.12, 0.15, 0.2]),
)


PROPOSED = ("debounce_s",)  # rule changes measured in the sweep, not product defaults


def _default(key: str):
    from pockit.config import ModelConfig, TrackerConfig

    m, t = ModelConfig(), TrackerConfig()
    return {"conf": m.conf, "high": t.high_conf_det_threshold, "reid": t.reid_distance,
            "lost": t.lost_track_seconds, "crowd_hold": _rule_defaults()["crowd.hold"], "debounce_s": 0.0}[key]


def _rule_defaults() -> dict:
    """Rule defaults the scenes rely on (they leave these fields unset)."""
    from pockit.rules.schema import CrowdRule, LineCrossingRule, ZoneEnterRule

    return {"crowd.hold": CrowdRule.model_fields["hold"].default,
            "zone_enter.min_frames": ZoneEnterRule.model_fields["min_frames"].default,
            "line_crossing.min_frames": LineCrossingRule.model_fields["min_frames"].default}


def sensitivity(out_dir: Path, names, keys=None) -> dict:
    """Event F1 per sequence (and mean/min) against each setting in SENSITIVITY, the others at their defaults:
    one plotly figure per setting, HTML and PNG (PNG needs kaleido and a Chrome/Chromium)."""
    from sweep import run_setting

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {}
    for key, label, values in SENSITIVITY:
        if keys and key not in keys:
            continue
        per = {n: [] for n in names}
        mota = {n: [] for n in names}
        idf1 = {n: [] for n in names}
        for v in values:
            r = run_setting({key: v}, names)
            for n in names:
                per[n].append(r[n]["f1"])
                mota[n].append(r[n]["MOTA"])
                idf1[n].append(r[n]["IDF1"])
        mean = [float(np.mean([per[n][i] for n in names])) for i in range(len(values))]
        mn = [float(min(per[n][i] for n in names)) for i in range(len(values))]
        doc[key] = {"label": label, "values": values, "default": _default(key), "f1": per, "mean": mean, "min": mn,
                    "MOTA": mota, "IDF1": idf1}
        doc[key].update(plot(key, doc[key], out_dir))
        print(f"sensitivity {key}: " + ", ".join(f"{v}: min {a:.3f} mean {b:.3f}" for v, a, b in zip(values, mn, mean)),
              file=sys.stderr, flush=True)
    return doc


def plot(key: str, e: dict, out_dir: Path) -> dict:
    """One sensitivity figure (an entry of :func:`sensitivity`) as HTML and PNG (kaleido + Chrome/Chromium)."""
    import plotly.graph_objects as go

    values = e["values"]
    fig = go.Figure()
    for n, f1 in e["f1"].items():
        fig.add_trace(go.Scatter(x=values, y=f1, mode="lines+markers", name=n, line={"dash": "dot"}))
    fig.add_trace(go.Scatter(x=values, y=e["mean"], mode="lines+markers", name="mean", line={"width": 4}))
    fig.add_trace(go.Scatter(x=values, y=e["min"], mode="lines+markers", name="min", line={"width": 2}))
    fig.add_vline(x=e["default"], line_dash="dash", annotation_text="default" if key not in PROPOSED else "today")
    fig.add_hline(y=0.9, line_dash="dot", annotation_text="target 0.90", annotation_position="bottom right")
    fig.update_layout(title=f"Event F1 against {e['label']}<br><sup>one setting at a time, the others at the "
                            "defaults; cached detections of the default detector</sup>",
                      xaxis_title=e["label"], yaxis_title="event F1", yaxis_range=[0.6, 1.02], height=450, width=900)
    html = out_dir / f"scenarios_sensitivity_{key}.html"
    fig.write_html(html, include_plotlyjs="cdn")
    png = out_dir / f"scenarios_sensitivity_{key}.png"
    try:
        fig.write_image(png, width=900, height=450)
    except Exception as exc:  # noqa: BLE001  kaleido missing, no Chrome, a browser error: the HTML is the plot
        print(f"PNG not written ({type(exc).__name__}: {exc}); the HTML has the plot", file=sys.stderr)
        png = None
    return {"html": str(html), "png": str(png) if png else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--out", default="runs/scenarios", help="run directories, plots [runs/scenarios]")
    ap.add_argument("--sequences", nargs="+", default=list(SEQUENCES))
    ap.add_argument("--no-ultralytics", action="store_true")
    ap.add_argument("--no-sensitivity", action="store_true")
    ap.add_argument("--sensitivity-only", action="store_true", help="only the sensitivity plots (cached detections)")
    ap.add_argument("--plots", default="benchmarks/results", help="where the sensitivity plots go [benchmarks/results]")
    ap.add_argument("--keys", nargs="+", help="only these sensitivity settings (default: all of SENSITIVITY)")
    ap.add_argument("--fresh", action="store_true", help="re-run Ultralytics even if its tracks are cached")
    a = ap.parse_args(argv)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from pockit.config import ModelConfig, TrackerConfig

    if a.sensitivity_only:
        path = Path(a.json or Path(a.plots) / "scenarios_sensitivity.json")
        doc = json.loads(path.read_text()) if a.keys and path.exists() else {"sensitivity": {}}
        doc["defaults"] = {"model": ModelConfig().model_dump(), "tracker": TrackerConfig().model_dump(),
                           "rules": _rule_defaults()}
        doc["sensitivity"].update(sensitivity(Path(a.plots), a.sequences, a.keys))
        path.write_text(json.dumps(doc, indent=1, default=str))
        return 0
    results: dict = {}
    for name in a.sequences:
        seq = sequence(name)
        results[name] = {"pockit": run_pockit(seq, out_dir)}
        if not a.no_ultralytics:
            results[name]["ultralytics"] = run_ultralytics(seq, out_dir, a.fresh)
        print(f"{name} done", file=sys.stderr, flush=True)
    doc = {"defaults": {"model": ModelConfig().model_dump(), "tracker": TrackerConfig().model_dump(),
                        "rules": _rule_defaults()},
           "results": results, "table": table(results), "targets": targets(results)}
    print(doc["table"])
    print("\n".join(doc["targets"]))
    if not a.no_sensitivity:
        doc["sensitivity"] = sensitivity(Path(a.plots), a.sequences, a.keys)
        print("sensitivity: " + ", ".join(v["html"] for v in doc["sensitivity"].values()))
    if a.json:
        Path(a.json).write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
