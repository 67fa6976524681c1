"""Multi-stream GPU throughput of pockit's pipeline vs the model alone vs Ultralytics.

N streams of real footage (native size and upscaled to 1080p) flow through:

  decode workers (threads; write decoded frames straight into pinned host slots)
    -> inference thread A: gather up to B frames of many streams, H2D on a copy stream,
       letterbox + normalize on the GPU, model (FP16, CUDA graph)  [TorchDetector.launch]
    -> inference thread B: batched NMS on the GPU, boxes to frame pixels, slots freed [finish]
    -> tracking + rules processes (pockit.tracking / pockit.rules, per stream, off the GPU process)

Reported per configuration: end-to-end frames/s (frames that came out of tracking+rules),
model-only images/s at the same batch in the same run, their ratio, stage busy fractions and
the limiting stage, GPU utilization (NVML), peak GPU memory, latency capture->tracked.
``--decode predecoded`` copies frames decoded before the timed window (the model-side
measurement); ``--decode live`` decodes the files during the window (H.264 with FFmpeg via OpenCV,
on the CPU). Ultralytics ``predict`` (batched) and ``track`` (frame by frame) run on the same frames.

Example (see benchmarks/README.md for the recorded figures):
  python benchmarks/gpu_throughput.py --model .devdata/best.pt --videos .devdata/*.mp4 .devdata/*.avi \
      --streams 8 32 64 --sizes native 1080p --seconds 8 --json results.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RES_1080P = (1920, 1080)


# -- footage ----------------------------------------------------------------------------------
def load_pool(videos: list[str], size: str, frames: int) -> list[list[np.ndarray]]:
    """Decode ``frames`` frames of each video once (upscaled to 1080p when size == '1080p')."""
    pool = []
    for v in videos:
        cap = cv2.VideoCapture(v)
        if not cap.isOpened():
            raise SystemExit(f"cannot open video {v}")
        out = []
        while len(out) < frames:
            ok, f = cap.read()
            if not ok:
                break
            if size == "1080p" and (f.shape[1], f.shape[0]) != RES_1080P:
                f = cv2.resize(f, RES_1080P, interpolation=cv2.INTER_LINEAR)
            out.append(f)
        cap.release()
        if not out:
            raise SystemExit(f"no frames decoded from {v}")
        pool.append(out)
    return pool


# -- tracking + rules worker process ----------------------------------------------------------
def _make_rules(stream_ids, size_of):
    try:
        from pydantic import TypeAdapter

        from pockit.rules import RuleEngine
        from pockit.rules.schema import RuleConfig
    except Exception as e:  # rules engine not importable here
        return None, f"rules off ({type(e).__name__}: {e})"
    ta = TypeAdapter(RuleConfig)
    rules = [
        ta.validate_python({"name": "zone", "type": "zone_enter", "zone": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]}),
        ta.validate_python({"name": "loiter", "type": "loitering", "dwell": 5.0, "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]}),
        ta.validate_python({"name": "line", "type": "line_crossing", "line": [[0.5, 0.0], [0.5, 1.0]]}),
    ]
    engines = {s: RuleEngine(rules, str(s), frame_size=size_of.get(s), class_names={0: "Normal", 1: "Fall"}) for s in stream_ids}
    return engines, "rules on: zone_enter, loitering, line_crossing per stream"


def track_worker(wid, inq, outq, sizes, fps, counter):
    """Per-stream tracker (+ rules) for the streams routed to this process."""
    from pockit.core import Detections

    note = []
    trackers = {}
    try:
        from pockit.config import TrackerConfig
        from pockit.tracking import make_tracker

        def new_tracker():
            return make_tracker(TrackerConfig(), fps)

        note.append("tracker: pockit.tracking bytetrack")
    except Exception as e:
        outq.put({"worker": wid, "error": f"pockit.tracking unavailable: {e}"})
        return
    engines, rnote = _make_rules(list(sizes), sizes)
    note.append(rnote)
    busy = 0.0
    lat = []
    events = 0
    n = 0
    while True:
        item = inq.get()
        if item is None:
            break
        t0 = time.perf_counter()
        for sid, idx, tcap, xyxy, sc, cl in item:
            tr = trackers.get(sid)
            if tr is None:
                tr = trackers[sid] = new_tracker()
            d = Detections(xyxy, sc, cl, class_names={0: "Normal", 1: "Fall"})
            ts = idx / fps
            tracked = tr.update(d, ts)
            if engines is not None:
                events += len(engines[sid].update(None, tracked, ts, idx))
            n += 1
            if len(lat) < 200000:
                lat.append(time.monotonic() - tcap)
        with counter.get_lock():
            counter.value += len(item)
        busy += time.perf_counter() - t0
    outq.put({"worker": wid, "busy_s": busy, "frames": n, "events": events, "lat": lat, "note": note})


# -- the pipeline -----------------------------------------------------------------------------
class Slots:
    """A bounded pool of pinned host frame buffers (bounded memory; backpressure on decode)."""

    def __init__(self, torch, n: int, max_bytes: int):
        pin = torch.cuda.is_available()
        self.buf = [torch.empty(max_bytes, dtype=torch.uint8, pin_memory=pin) for _ in range(n)]
        self.free: queue.Queue = queue.Queue()
        for i in range(n):
            self.free.put(i)

    def view(self, i, h, w):
        return self.buf[i][: h * w * 3].view(h, w, 3)


def run_pipeline(det, torch, streams, pool, live_files, batch, seconds, warmup_s, n_decode, n_track, fps_pace, size):
    """One end-to-end run. Returns a dict of measurements."""
    n_decode = max(1, min(n_decode, streams))  # a worker without streams would only spin on the GIL
    n_track = max(1, min(n_track, streams))
    stop = threading.Event()
    ready: queue.Queue = queue.Queue()
    if live_files:
        probe = [cv2.VideoCapture(f) for f in live_files]
        shapes = [(int(c.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(c.get(cv2.CAP_PROP_FRAME_WIDTH))) for c in probe]
        for c in probe:
            c.release()
    else:
        shapes = [p[0].shape[:2] for p in pool]
    nsrc = len(shapes)
    max_bytes = max(h * w * 3 for h, w in shapes)
    slots = Slots(torch, 3 * batch, max_bytes)
    stream_shape = {s: shapes[s % nsrc] for s in range(streams)}
    size_of = {s: (stream_shape[s][1], stream_shape[s][0]) for s in range(streams)}
    dec_busy = [0.0] * n_decode
    dec_wait = [0.0] * n_decode
    produced = [0] * n_decode
    dropped = [0] * n_decode

    def decoder(k):
        mine = [s for s in range(streams) if s % n_decode == k]
        caps, idx = {}, {}
        for s in mine:
            if live_files:
                cap = cv2.VideoCapture(live_files[s % nsrc])
                start = (s * 37) % 200
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
                caps[s] = cap
            idx[s] = (s * 37) % len(pool[s % nsrc]) if pool else 0
        nxt = {s: time.monotonic() for s in mine}
        count = {s: 0 for s in mine}
        while not stop.is_set():
            for s in mine:
                if fps_pace:
                    now = time.monotonic()
                    if now < nxt[s]:
                        continue
                    nxt[s] += 1.0 / fps_pace
                    if now - nxt[s] > 1.0:  # more than a second behind: drop, like a live camera would
                        dropped[k] += 1
                        continue
                t0 = time.perf_counter()
                try:
                    slot = slots.free.get(timeout=0.5)
                except queue.Empty:
                    continue
                t1 = time.perf_counter()
                h, w = stream_shape[s]
                view = slots.view(slot, h, w)
                arr = view.numpy()
                if live_files:
                    ok, out = caps[s].read(arr)
                    if not ok:
                        caps[s].set(cv2.CAP_PROP_POS_FRAMES, 0)
                        ok, out = caps[s].read(arr)
                    if out is not None and out.ctypes.data != arr.ctypes.data:
                        np.copyto(arr, out)  # OpenCV allocated its own buffer
                else:
                    frames = pool[s % nsrc]
                    np.copyto(arr, frames[idx[s] % len(frames)])
                    idx[s] += 1
                ready.put((slot, s, count[s], time.monotonic(), h, w))
                count[s] += 1
                produced[k] += 1
                t2 = time.perf_counter()
                dec_wait[k] += t1 - t0
                dec_busy[k] += t2 - t1
            if fps_pace:
                time.sleep(0.001)

    inflight: queue.Queue = queue.Queue(maxsize=2)
    stat = {"a_busy": 0.0, "a_wait": 0.0, "a_put": 0.0, "b_busy": 0.0, "batches": 0, "frames": 0}
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    track_in = [ctx.Queue() for _ in range(n_track)]
    track_out = ctx.Queue()
    procs = []
    for w in range(n_track):
        mine = {s: size_of[s] for s in range(streams) if s % n_track == w}
        p = ctx.Process(target=track_worker, args=(w, track_in[w], track_out, mine, 25.0, counter), daemon=True)
        p.start()
        procs.append(p)

    def thread_a():
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                items = [ready.get(timeout=0.2)]
            except queue.Empty:
                continue
            deadline = time.perf_counter() + 0.004
            while len(items) < batch:
                try:
                    items.append(ready.get_nowait())
                except queue.Empty:
                    if time.perf_counter() > deadline:
                        break
                    time.sleep(0.0002)
            t1 = time.perf_counter()
            frames = [slots.view(sl, h, w) for sl, _, _, _, h, w in items]
            pend = det.launch(frames)
            t2 = time.perf_counter()
            inflight.put((pend, items))  # blocks while two batches are already in flight
            stat["a_wait"] += t1 - t0
            stat["a_busy"] += t2 - t1
            stat["a_put"] += time.perf_counter() - t2

    def thread_b():
        while True:
            got = inflight.get()
            if got is None:
                break
            pend, items = got
            t0 = time.perf_counter()
            dets = det.finish(pend)
            for sl, *_ in items:
                slots.free.put(sl)
            routed = [[] for _ in range(n_track)]
            for (sl, s, i, tcap, h, w), d in zip(items, dets):
                routed[s % n_track].append((s, i, tcap, d.xyxy, d.scores, d.class_ids))
            for w, r in enumerate(routed):
                if r:
                    track_in[w].put(r)
            stat["b_busy"] += time.perf_counter() - t0
            stat["batches"] += 1
            stat["frames"] += len(items)

    nvml = _nvml() if det.is_cuda else None
    if det.is_cuda:
        torch.cuda.reset_peak_memory_stats()
    threads = [threading.Thread(target=decoder, args=(k,), daemon=True) for k in range(n_decode)]
    ta, tb = threading.Thread(target=thread_a, daemon=True), threading.Thread(target=thread_b, daemon=True)
    for t in threads + [ta, tb]:
        t.start()
    time.sleep(warmup_s)
    # timed window
    snap0 = (counter.value, stat["frames"], dict(stat), list(dec_busy), list(dec_wait), sum(produced), sum(dropped))
    t_start = time.perf_counter()
    util = []
    while time.perf_counter() - t_start < seconds:
        time.sleep(0.25)
        if nvml:
            util.append(nvml())
    t_end = time.perf_counter()
    snap1 = (counter.value, stat["frames"], dict(stat), list(dec_busy), list(dec_wait), sum(produced), sum(dropped))
    stop.set()
    ta.join(2)
    inflight.put(None)
    tb.join(5)
    for q in track_in:
        q.put(None)
    reports = []
    for _ in procs:
        try:
            reports.append(track_out.get(timeout=60))
        except queue.Empty:
            break
    for p in procs:
        p.join(5)
    for t in threads:
        t.join(2)
    wall = t_end - t_start
    e2e = (snap1[0] - snap0[0]) / wall
    inf_fps = (snap1[1] - snap0[1]) / wall
    dt = {k: snap1[2][k] - snap0[2][k] for k in ("a_busy", "a_wait", "a_put", "b_busy", "batches", "frames")}
    dec_b = sum(snap1[3]) - sum(snap0[3])
    dec_w = sum(snap1[4]) - sum(snap0[4])
    track_busy = sum(r.get("busy_s", 0) for r in reports)
    track_frames = sum(r.get("frames", 0) for r in reports)
    lat = np.concatenate([np.asarray(r.get("lat", []), float) for r in reports]) if reports else np.zeros(0)
    notes = sorted({n for r in reports for n in r.get("note", [])} | {r["error"] for r in reports if "error" in r})
    return {
        "e2e_fps": e2e,
        "inference_fps": inf_fps,
        "mean_batch": dt["frames"] / max(dt["batches"], 1),
        "wall_s": wall,
        "frames_produced": snap1[5] - snap0[5],
        "frames_dropped_pacing": snap1[6] - snap0[6],
        "busy": {
            "decode_workers": dec_b / (n_decode * wall),
            "decode_wait_for_free_slot": dec_w / (n_decode * wall),
            "infer_A_launch": dt["a_busy"] / wall,
            "infer_A_wait_for_frames": dt["a_wait"] / wall,
            "infer_A_wait_for_gpu": dt["a_put"] / wall,
            "infer_B_nms_and_wait": dt["b_busy"] / wall,
            "tracking_rules_per_process": track_busy / max(n_track * (wall + warmup_s), 1e-9),
        },
        "gpu_util_mean": float(np.mean(util)) if util else None,
        "gpu_mem_peak_gib": torch.cuda.max_memory_allocated() / 2**30 if det.is_cuda else None,
        "latency_ms_p50": float(np.percentile(lat, 50) * 1e3) if lat.size else None,
        "latency_ms_p95": float(np.percentile(lat, 95) * 1e3) if lat.size else None,
        "tracked_frames_total": track_frames,
        "events": sum(r.get("events", 0) for r in reports),
        "notes": notes,
    }


def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: pynvml.nvmlDeviceGetUtilizationRates(h).gpu
    except Exception:
        return None


def limiting_stage(r: dict) -> str:
    """The stage that bounds throughput, read from GPU utilization and who waits on whom."""
    b = r["busy"]
    if r.get("gpu_util_mean") is not None and r["gpu_util_mean"] >= 90:
        return "GPU (model)"
    if b["decode_workers"] >= 0.8 and b["decode_wait_for_free_slot"] < 0.2:
        return "decode (CPU)"
    if b["infer_A_wait_for_frames"] > 0.3:
        return "decode (CPU)" if b["decode_workers"] > b["tracking_rules_per_process"] else "input pacing"
    if b["tracking_rules_per_process"] >= 0.8:
        return "tracking+rules processes"
    return "host threads of the inference process (Python/GIL: launch, NMS, decode loop)"


def model_only(det, torch, frames, batch, iters=60):
    """images/s of the model alone (same precision, same CUDA graph) on a real letterboxed batch."""
    imgs = [frames[i % len(frames)] for i in range(batch)]
    with torch.inference_mode():
        x, _ = det.preprocess_gpu(det.upload(imgs))
        if not det.is_cuda:  # smoke-test path
            det.forward_raw(x)
            t0 = time.perf_counter()
            for _ in range(iters):
                det.forward_raw(x)
            return batch * iters / (time.perf_counter() - t0)
        for _ in range(10):
            det.forward_raw(x)
        torch.cuda.synchronize()
        ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(5):
            ev0.record()
            for _ in range(iters // 5):
                det.forward_raw(x)
            ev1.record()
            torch.cuda.synchronize()
            times.append(ev0.elapsed_time(ev1) / 1e3 / (iters // 5))
    return batch / float(np.median(times))


def ultralytics_compare(model_path, frames, batch, n_predict, n_track):
    import logging

    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(logging.ERROR)  # one deprecation warning per call otherwise

    out = {}
    y = YOLO(model_path)
    kw = dict(imgsz=640, half=True, device=0, conf=0.25, iou=0.45, verbose=False)
    sel = [frames[i % len(frames)] for i in range(n_predict)]
    y.predict(sel[:batch], batch=batch, **kw)  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(sel), batch):
        y.predict(sel[i : i + batch], batch=batch, **kw)
    out["predict_batched_fps"] = len(sel) / (time.perf_counter() - t0)
    yt = YOLO(model_path)
    seq = frames[: n_track]
    yt.track(seq[0], persist=True, **kw)
    t0 = time.perf_counter()
    for f in seq[1:]:
        yt.track(f, persist=True, **kw)
    out["track_frame_by_frame_fps"] = (len(seq) - 1) / (time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--videos", nargs="+", required=True, help="native-size footage")
    ap.add_argument("--live-1080p", nargs="*", default=[], help="1080p encoded files for --decode live at 1080p")
    ap.add_argument("--streams", nargs="+", type=int, default=[8, 32, 64])
    ap.add_argument("--sizes", nargs="+", default=["native", "1080p"], choices=["native", "1080p"])
    ap.add_argument("--decode", nargs="+", default=["predecoded"], choices=["predecoded", "live"])
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--pool-frames", type=int, default=120)
    ap.add_argument("--decode-workers", type=int, default=max(4, (os.cpu_count() or 8) - 6))
    ap.add_argument("--track-workers", type=int, default=4)
    ap.add_argument("--pace", type=float, default=0.0, help="also run paced at this fps per stream (0 = off)")
    ap.add_argument("--pace-streams", type=int, default=64)
    ap.add_argument("--pace-decode", nargs="+", default=["predecoded"], choices=["predecoded", "live"])
    ap.add_argument("--no-graph", action="store_true")
    ap.add_argument("--ultralytics", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of the harness")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--model-iters", type=int, default=60)
    a = ap.parse_args(argv)

    import torch

    from pockit.inference.torch_backend import TorchDetector

    env = {
        "gpu": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or "cpu", "torch": torch.__version__, "cuda": torch.version.cuda,
        "cpus": os.cpu_count(), "python": platform.python_version(), "cv2": cv2.__version__,
    }
    print("env", json.dumps(env), flush=True)
    results = {"env": env, "args": vars(a), "runs": []}

    def save():
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1, default=float))

    dets = {}

    def detector(b):
        if b not in dets:
            d = TorchDetector(a.model, device=a.device, half=True, batch=b, cuda_graph=not a.no_graph, imgsz=a.imgsz)
            d.warmup()
            dets[b] = d
        return dets[b]

    pools = {}
    for size in a.sizes:
        t0 = time.perf_counter()
        pools[size] = load_pool(a.videos, size, a.pool_frames)
        print(f"pool {size}: {[p[0].shape for p in pools[size]]} x {a.pool_frames} frames, {time.perf_counter() - t0:.1f}s", flush=True)
    for mode in a.decode:
        for size in a.sizes:
            live = None
            if mode == "live":
                live = a.live_1080p if size == "1080p" else a.videos
                if not live:
                    continue
            for n in a.streams:
                b = min(n, a.max_batch)
                det = detector(b)
                flat = [f for p in pools[size] for f in p[:8]]
                mo = model_only(det, torch, flat, b, a.model_iters)
                r = run_pipeline(det, torch, n, None if live else pools[size], live, b, a.seconds, a.warmup,
                                 a.decode_workers, a.track_workers, 0.0, size)
                r.update({"decode": mode, "size": size, "streams": n, "batch": b, "model_only_ips": mo,
                          "ratio": r["e2e_fps"] / mo, "streams_at_25fps": r["e2e_fps"] / 25.0})
                r["limiting_stage"] = limiting_stage(r)
                results["runs"].append(r)
                save()
                print(f"{mode:10s} {size:6s} streams={n:3d} batch={b:2d} e2e={r['e2e_fps']:7.0f} fps  model-only={mo:7.0f} img/s  "
                      f"ratio={r['ratio']:.2f}  gpu={r['gpu_util_mean']}%  limit={r['limiting_stage']}  "
                      f"p95={r['latency_ms_p95']}ms busy={json.dumps({k: round(v, 2) for k, v in r['busy'].items()})}", flush=True)
    for pmode in (a.pace_decode if a.pace else []):
        size = "1080p" if "1080p" in a.sizes else a.sizes[0]
        live = (a.live_1080p if size == "1080p" else a.videos) if pmode == "live" else None
        b = min(a.pace_streams, a.max_batch)
        det = detector(b)
        r = run_pipeline(det, torch, a.pace_streams, None if live else pools[size], live, b, a.seconds, a.warmup,
                         a.decode_workers, a.track_workers, a.pace, size)
        r.update({"decode": "live" if live else "predecoded", "size": size, "streams": a.pace_streams, "batch": b,
                  "paced_fps_per_stream": a.pace, "target_fps": a.pace * a.pace_streams})
        r["limiting_stage"] = limiting_stage(r)
        results.setdefault("paced", []).append(r)
        save()
        print(f"paced {a.pace_streams} x {a.pace} fps ({r['decode']}, {size}): delivered {r['e2e_fps']:.0f} of "
              f"{a.pace * a.pace_streams:.0f} fps, dropped {r['frames_dropped_pacing']}, p50={r['latency_ms_p50']}ms "
              f"p95={r['latency_ms_p95']}ms gpu={r['gpu_util_mean']}%", flush=True)
    if a.ultralytics:
        size = "1080p" if "1080p" in a.sizes else a.sizes[0]
        flat = [f for p in pools[size] for f in p]
        b = min(max(a.streams), a.max_batch)
        try:
            results["ultralytics"] = u = ultralytics_compare(a.model, flat, b, 8 * b, 200)
            u.update({"size": size, "batch": b})
            print("ultralytics", json.dumps(u), flush=True)
        except Exception as e:
            results["ultralytics"] = {"error": repr(e)}
            print("ultralytics failed:", repr(e), flush=True)
        save()
    if torch.cuda.is_available():
        print("peak GPU memory (GiB):", round(torch.cuda.max_memory_allocated() / 2**30, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
