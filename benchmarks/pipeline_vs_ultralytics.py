#!/usr/bin/env python
"""pockit (the product: ``pockit.run``) vs Ultralytics ``model.track``: same detector, same frames, ByteTrack.

pockit runs the PoC pipeline exactly as ``pockit run`` does (``pockit.run(config)``; MOT tracks written)
with the default model configuration for the device (on a CPU: ``person-yolov8s`` ONNX on OpenVINO when
installed, else ONNX Runtime, rectangular letterbox), or the ``--backend``/``--half``/``--model`` given;
Ultralytics runs the original PyTorch weights (person-yolov8s-pt = best.pt) with
``model.track(persist=True, tracker="bytetrack.yaml")`` frame by frame on the same frames. Runs alternate
(pockit, Ultralytics, pockit, ...) so machine-load drift hits both alike; the median run of each side is
reported with its MOTA/IDF1/HOTA against the sequence's gt/gt.txt (pockit.evaluate.evaluate_tracks) and the
1-minute load average before and after.

Not a test. Usage::

    python benchmarks/pipeline_vs_ultralytics.py [--sequences TUD-Campus PETS09-S3-MF1 KITTI-17 TUD-Stadtmitte]
        [--device cpu] [--backend auto|onnx|openvino] [--half] [--model person-yolov8s] [--imgsz 640]
        [--conf 0.25] [--max-frames N] [--repeat 3] [--json out.json]

Needs the [ml] extra (torch + ultralytics) for the Ultralytics side.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2

from pockit.bench.runner import host_info
from pockit.bench.stats import summarize
from pockit.paths import data_dir

STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking")
SEQUENCES = ["TUD-Campus", "PETS09-S3-MF1", "KITTI-17", "TUD-Stadtmitte"]
METRICS = ("MOTA", "IDF1", "HOTA")


def frames_of(seq: Path, max_frames: int | None) -> list[Path]:
    files = sorted((seq / "img1").glob("*.jpg"))
    if not files:
        sys.exit(f"{seq}: no img1/*.jpg frames (expected a MOTChallenge sequence folder)")
    return files[:max_frames] if max_frames else files


def track_metrics(seq: Path, tracks: Path, n: int) -> dict:
    from pockit.evaluate import evaluate_tracks

    rep = evaluate_tracks(seq / "gt" / "gt.txt", tracks, num_frames=n)
    return {k: float(rep.metrics[k]) for k in METRICS if k in rep.metrics}


def model_config(args) -> dict:
    """The model section pockit runs with: ModelConfig defaults unless an option says otherwise."""
    cfg = {"path": args.model, "imgsz": args.imgsz, "conf": args.conf, "device": args.device}
    if args.backend:
        cfg["backend"] = args.backend
    if args.half:
        cfg["half"] = True
    if args.no_rect:
        cfg["rect"] = False
    if args.min_short_side is not None:
        cfg["min_short_side"] = args.min_short_side
    return cfg


def run_pockit(seq: Path, n: int, args, work: Path) -> dict:
    """The product pipeline on the sequence folder, no rules, MOT tracks written (as `pockit run`)."""
    import pockit
    from pockit.config import load_config
    from pockit.inference import load_detector

    cfg = {
        "name": f"bench-{seq.name}",
        "sources": [{"id": seq.name, "uri": str(seq), "max_frames": n}],
        "model": model_config(args),
        "tracker": {"type": "bytetrack"},
        "outputs": {"snapshots": False, "video": False, "sinks": [{"type": "jsonl"}]},
    }
    pc = load_config(cfg)
    # load and warm the detector outside the timed run, on a real frame (the rectangular variant for this
    # frame size is built or read from the cache and compiled here), like Ultralytics' warm-up below
    det = load_detector(pc.model)
    warm = cv2.imread(str(frames_of(seq, 1)[0]))
    for _ in range(2):
        det.detect([warm])
    run_dir = work / f"pockit-{seq.name}-{time.monotonic_ns()}"
    s = pockit.run(pc, run_dir=run_dir, detector=det, progress=False)
    stages = {k: s.timings[k]["mean_ms"] for k in STAGES if k in s.timings}
    info = det.info
    det.close()
    return {"frames": s.frames, "wall_s": s.wall_s, "fps": s.fps, "stages_ms": stages,
            "stages": {k: {kk: v[kk] for kk in ("mean_ms", "p50_ms", "p95_ms") if kk in v}
                       for k, v in s.timings.items() if isinstance(v, dict)},
            "tracks": s.sources[seq.name].tracks, "model": info["path"],
            "input_shapes": info.get("input_shapes"),
            "backend": f"{info['backend']} {','.join(info['providers'])}",
            "metrics": track_metrics(seq, run_dir / "tracks" / f"{seq.name}.txt", n)}


def run_ultralytics(seq: Path, files: list[Path], args, work: Path) -> dict:
    """Ultralytics model.track frame by frame on the same frames (decoded with cv2.imread, timed as decode)."""
    import torch
    from ultralytics import YOLO

    from pockit.inference import resolve_model

    pt = resolve_model("person-yolov8s-pt")
    model = YOLO(str(pt))
    # Ultralytics caps torch at cpu_count - 1 threads on import; give it the same cores ONNX Runtime uses
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    kw = {"persist": True, "imgsz": args.imgsz, "conf": args.conf, "tracker": "bytetrack.yaml",
          "device": args.device, "verbose": False}
    warm = cv2.imread(str(files[0]))
    for _ in range(2):
        model.predict(warm, imgsz=args.imgsz, conf=args.conf, device=args.device, verbose=False)
    samples: dict[str, list[float]] = {k: [] for k in STAGES}
    ids: set[int] = set()
    rows: list[str] = []
    t_start = time.perf_counter()
    for frame_no, f in enumerate(files, start=1):
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
            for (x1, y1, x2, y2), tid, sc, c in zip(res.boxes.xyxy.tolist(), res.boxes.id.tolist(),
                                                   res.boxes.conf.tolist(), res.boxes.cls.tolist()):
                rows.append(f"{frame_no},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{sc:.4f},{int(c)},-1,-1")
    wall = time.perf_counter() - t_start
    tracks = work / f"ultralytics-{seq.name}-{time.monotonic_ns()}.txt"
    tracks.write_text("\n".join(rows) + ("\n" if rows else ""))
    st = {k: summarize(v) for k, v in samples.items()}
    import ultralytics

    return {"frames": len(files), "wall_s": wall, "fps": len(files) / wall,
            "stages_ms": {k: v["mean_ms"] for k, v in st.items()},
            "stages": {k: {kk: v[kk] for kk in ("mean_ms", "p50_ms", "p95_ms")} for k, v in st.items()},
            "tracks": len(ids), "model": str(pt),
            "backend": f"ultralytics {ultralytics.__version__} / torch {torch.__version__} ({torch.get_num_threads()} threads)",
            "metrics": track_metrics(seq, tracks, len(files))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", nargs="+", default=SEQUENCES)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="person-yolov8s", help="pockit's model (registry name or path)")
    ap.add_argument("--backend", help="pockit's model.backend (default: the ModelConfig default, auto)")
    ap.add_argument("--half", action="store_true", help="pockit model.half (OpenVINO: bf16 where native)")
    ap.add_argument("--no-rect", action="store_true", help="pockit model.rect: false (square 640x640 input)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--min-short-side", type=int, default=None,
                    help="pockit model.min_short_side (default: the ModelConfig default; 0: plain letterbox)")
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
    out = {"host": host, "args": vars(args), "pockit_model": model_config(args), "sequences": {}}
    work = Path(tempfile.mkdtemp(prefix="pockit-vs-ultralytics-"))
    for name in args.sequences:
        seq = data_dir() / "mot" / name
        if not seq.is_dir():
            sys.exit(f"{seq}: sequence not found (POCKIT_DATA_DIR={data_dir()})")
        files = frames_of(seq, args.max_frames)
        w, h = cv2.imread(str(files[0])).shape[1::-1]
        load0 = os.getloadavg()[0]
        runs_p, runs_u = [], []
        for _ in range(args.repeat):  # alternate, so machine-load drift hits both sides alike
            runs_p.append(run_pockit(seq, len(files), args, work))
            runs_u.append(run_ultralytics(seq, files, args, work))
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
        for k in METRICS:
            print(f"  {k:<22}{p['metrics'].get(k, float('nan')):>10.3f}{u['metrics'].get(k, float('nan')):>13.3f}")
        print(f"  pockit input sizes (h, w): {p.get('input_shapes')}")
        print(f"  FPS ratio pockit / ultralytics: {p['fps'] / u['fps']:.2f}  (median of {args.repeat} alternating "
              f"runs each; all FPS: pockit {[round(r['fps'], 2) for r in runs_p]}, ultralytics "
              f"{[round(r['fps'], 2) for r in runs_u]}; 1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f})")
    print("\n| sequence | pockit fps | Ultralytics fps | ratio | MOTA pockit / Ultralytics | IDF1 pockit / Ultralytics "
          "| 1-min load |")
    print("|---|---|---|---|---|---|---|")
    for name, r in out["sequences"].items():
        p, u = r["pockit"], r["ultralytics"]
        print(f"| {name} ({r['frames']} f, {r['resolution'][0]}x{r['resolution'][1]}) | {p['fps']:.2f} | {u['fps']:.2f} "
              f"| **{r['fps_ratio_pockit_over_ultralytics']:.2f}** | {p['metrics']['MOTA']:.3f} / {u['metrics']['MOTA']:.3f} "
              f"| {p['metrics']['IDF1']:.3f} / {u['metrics']['IDF1']:.3f} "
              f"| {r['load_avg_1min'][0]:.1f} -> {r['load_avg_1min'][1]:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
