"""``pockit bench``: run the real pipeline over a grid of batch sizes and stream counts, time every stage,
sample CPU/GPU/Jetson resources meanwhile, and size the machine (and, as labelled estimates, other devices).

Each case runs :class:`pockit.pipeline.Pipeline` itself (no separate benchmark loop), so the figures are
those of ``pockit run``: decode in per-source threads, cross-stream batching, tracking, rules, MOT output.
"""
from __future__ import annotations

import copy
import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence


from ..config import ConfigError, PocConfig, load_config, parse_config
from .monitors import ResourceMonitor
from .sizing import SizingError, StageCosts, estimate_for_device, match_device, size_streams
from .stats import summarize

log = logging.getLogger("pockit.bench")

SCHEMA = "pockit.bench/1"
STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking", "rules")
#: rules added when benchmarking a bare model + source, so the rules stage carries a realistic load
SYNTHETIC_RULES = [
    {"name": "bench_zone", "type": "zone_enter", "zone": [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]},
    {"name": "bench_line", "type": "line_crossing", "line": [[0.0, 0.5], [1.0, 0.5]]},
]


def bench_config(model: str, source: str, *, imgsz: int = 640, device: str = "cpu", conf: float = 0.25,
                 source_fps: float | None = None) -> PocConfig:
    """A PoC config for ``pockit bench --model M --source S``: one source, the model, ByteTrack and two
    synthetic rules (a central zone and a mid-height line) so that every stage does real work."""
    sid = Path(str(source).rstrip("/")).stem.replace(" ", "_") or "source"
    data = {
        "name": "bench",
        "sources": [{"id": sid, "uri": source, **({"fps": source_fps} if source_fps else {})}],
        "model": {"path": model, "imgsz": imgsz, "device": device, "conf": conf},
        "rules": copy.deepcopy(SYNTHETIC_RULES),
    }
    return parse_config(data, "<pockit bench --model/--source>")


#: steal time (percent of all cores' time, steady window) from which a case's figures are said to be the host's
STEAL_NOTE_PCT = 1.0


def steal_note(resources: dict, batch: int, streams: int) -> str | None:
    """A note when the hypervisor took a noticeable share of the host's CPU during a case's steady window (on the
    lent H200: 81 % of model-only at 0.04 % steal, 62-68 % at 4.5-5.3 %, same host, same hour)."""
    cpu = resources.get("cpu") or {}
    steal = (cpu.get("steady") or {}).get("steal_pct_mean")
    if steal is None:
        steal = cpu.get("steal_pct_mean")
    if steal is None or steal < STEAL_NOTE_PCT:
        return None
    cores = steal / 100.0 * (cpu.get("logical_cores") or 1)
    return (f"batch {batch}, {streams} streams: the hypervisor took {steal:.1f} % of the host's CPU time while it "
            f"ran (about {cores:.1f} of {cpu.get('logical_cores')} cores): its figures are lower than this host "
            "gives when no one else is using it; run it again")


def _case_config(cfg: PocConfig, batch: int, streams: int, out_dir: Path) -> PocConfig:
    """The config with ``model.batch = batch`` and the source list repeated cyclically to ``streams`` sources."""
    data = cfg.model_dump(mode="json")
    srcs = data["sources"]
    new = []
    for k in range(streams):
        s = dict(srcs[k % len(srcs)])
        if streams > len(srcs):
            s["id"] = f"{s['id']}-{k}"
        new.append(s)
    data["sources"] = new
    ids = {s["id"] for s in new}
    for r in data.get("rules", []):  # rules bound to sources apply to their copies too
        if r.get("sources"):
            r["sources"] = sorted(i for i in ids if any(i == s or i.startswith(f"{s}-") for s in r["sources"])) or None
    data["model"]["batch"] = batch
    data["outputs"] = {"dir": str(out_dir), "run_name": f"b{batch}-s{streams}", "video": False, "snapshots": False,
                       "clip_seconds": 0.0, "tracks": True, "sinks": [{"type": "jsonl"}]}
    data["acceptance"] = []
    out = parse_config(data, "<bench case>")
    object.__setattr__(out, "_base_dir", str(cfg.base_dir))
    return out


def host_info() -> dict[str, Any]:
    """CPU model, core counts, memory, OS and (where present) GPU / Jetson model names: the machine description
    run.json carries (:func:`pockit.report.environment.machine_info`), plus the platform and Python version."""
    from ..report.environment import machine_info

    info = machine_info()
    info["platform"] = info.get("os")
    info["python"] = sys.version.split()[0]
    return info


def _versions() -> dict[str, str]:
    from ..report.environment import software_versions

    return software_versions()


def _inference_device(info: dict[str, Any]) -> str:
    """'gpu' when the first execution provider / the device is CUDA or TensorRT, else 'cpu'."""
    provs = [str(p).lower() for p in info.get("providers") or []]
    if provs:  # ONNX Runtime: the first provider runs it; the torch backend lists [torch-x.y, cuda:0, fp16, ...]
        gpu = "cuda" in provs[0] or "tensorrt" in provs[0] or any(p == "cuda" or p.startswith("cuda:") for p in provs)
        return "gpu" if gpu else "cpu"
    dev = str(info.get("device", "cpu")).lower()
    return "gpu" if dev.startswith(("cuda", "gpu")) or dev.isdigit() else "cpu"


def _parse_list(v: str | Sequence[int], what: str) -> list[int]:
    if isinstance(v, str):
        try:
            vals = [int(x) for x in v.replace(" ", "").split(",") if x]
        except ValueError:
            raise ValueError(f"--{what} must be comma-separated integers like 1,4,8; got {v!r}") from None
    else:
        vals = [int(x) for x in v]
    if not vals or any(x < 1 for x in vals):
        raise ValueError(f"--{what} needs integers >= 1; got {v!r}")
    return sorted(set(vals))


def run_bench(config: str | Path | dict | PocConfig | None = None, *, model: str | None = None,
              source: str | None = None, batches: str | Sequence[int] = (1,), streams: str | Sequence[int] = (1,),
              max_frames: int | None = None, imgsz: int | None = None, device: str | None = None,
              out: str | Path | None = None, interval: float = 0.25, warmup: int = 2,
              target_fps: float | None = None, target_resolution: tuple[int, int] | None = None,
              targets: Sequence[str] = (), reference: str | None = None, precision: str = "fp16",
              headroom: float = 0.8, progress: bool = True, detector=None, half: bool | None = None,
              workers: int | None = None, realtime: bool = False, model_only: bool = True,
              ultralytics: bool = False, backend: str | None = None) -> dict[str, Any]:
    """Benchmark the pipeline for every (batch, streams) pair; write and return the bench.json record.

    Either ``config`` (a PoC config) or ``model`` + ``source``. ``out``: bench.json path, or a folder to
    write bench.json into (default ``runs/bench-<timestamp>/``). ``targets``: devices.yaml keys to estimate.
    """
    from ..pipeline import Pipeline

    batches, streams = _parse_list(batches, "batch"), _parse_list(streams, "streams")
    synthetic_rules = False
    if config is not None:
        cfg = load_config(config)
        if model:
            cfg.model.path = model
    elif model and source:
        cfg = bench_config(model, source)
        synthetic_rules = True
    else:
        raise ConfigError("pockit bench needs a CONFIG.yaml, or both --model and --source")
    if imgsz:
        cfg.model.imgsz = int(imgsz)
    if device:
        cfg.model.device = device
    if half is not None:
        cfg.model.half = bool(half)
    if backend:
        cfg.model.backend = backend
    if realtime:
        for sc in cfg.sources:
            sc.realtime = True
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {max_frames}")

    out_path = Path(out) if out else Path("runs") / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    json_path = out_path if out_path.suffix == ".json" else out_path / "bench.json"
    case_dir = json_path.parent / "cases"
    case_dir.mkdir(parents=True, exist_ok=True)

    from ..pipeline.mps import ensure_mps

    # CUDA MPS for NVDEC decode processes (pipeline.cuda_mps) must be up before this process's first CUDA context
    cuda_mps = ensure_mps(cfg, n_sources=max(streams))
    if detector is None:
        from ..inference import load_detector
        from ..resolve import resolve_path

        m = cfg.model.model_copy()
        m.path = resolve_path(m.path, cfg)
        m.batch = max(batches)
        detector = load_detector(m)
    if warmup:
        detector.warmup(warmup)
    info = dict(getattr(detector, "info", {}) or {})
    chunk = getattr(detector, "chunk_size", None)
    notes: list[str] = []
    if synthetic_rules:
        notes.append("no config given: two synthetic rules (central zone_enter, mid-height line_crossing) "
                     "give the rules stage a realistic load")
    if chunk is not None and max(batches) > 1 and info.get("model_batch") not in (None, "dynamic"):
        notes.append(f"the model has a fixed batch of {info.get('model_batch')}: larger batches run in chunks "
                     f"of {chunk}; export with a dynamic batch to measure batching")
    notes.append("per-frame stage times are wall-clock means; with several streams, decoders share the "
                 "CPU with the other stages, so decode and CPU stages include that contention")

    cases = []
    grid = [(b, n) for n in streams for b in batches]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(grid), desc="bench", unit="case", dynamic_ncols=True)
    try:
        for b, n in grid:
            ccfg = _case_config(cfg, b, n, case_dir)
            if hasattr(detector, "batch") and not hasattr(detector, "launch"):
                detector.batch = b  # the torch backend keeps the batch its CUDA graph was captured at
            pipe = Pipeline(ccfg, run_dir=case_dir / f"b{b}-s{n}", detector=detector, progress=False,
                            max_frames=max_frames, overwrite=True, workers=workers)  # re-measured, not kept
            mon = ResourceMonitor(interval=interval)
            with mon:
                summ = pipe.run()
            samples = pipe.timer.samples
            stages = {s: summarize(samples.get(s, [])) for s in (*STAGES, "output")}
            srcs = list(summ.sources.values())
            calls = pipe.batch_sizes
            mo = None
            if model_only:
                try:
                    mo = model_only_ips(detector, _sample_frames(cfg, b), b)
                except Exception as e:  # measured where it can be; said where not
                    notes.append(f"model-only at batch {b} not measured: {type(e).__name__}: {e}")
            e2e = summ.pipeline.get("steady_fps") or summ.fps
            resources = mon.summary(window=getattr(pipe, "steady_window", None))
            stolen = steal_note(resources, b, n)
            if stolen:
                notes.append(stolen)
            cases.append({
                "batch": b,
                "streams": n,
                "frames": summ.frames,
                "wall_s": summ.wall_s,
                "fps": summ.fps,
                "fps_per_stream": summ.fps / n if n else 0.0,
                "stages": stages,
                "pipeline_ms_per_frame": sum(v["mean_ms"] for k, v in stages.items() if v["mean_ms"] is not None),
                "steady_fps": summ.pipeline.get("steady_fps"),
                "model_only_ips": mo,
                "e2e_over_model_only": (e2e / mo) if mo else None,
                "pipeline": summ.pipeline,
                "dropped": summ.pipeline.get("dropped"),
                "inference_calls": len(calls),
                "frames_per_call_mean": (sum(calls) / len(calls)) if calls else None,
                "model_chunk": chunk,
                "resolution": [srcs[0].width, srcs[0].height] if srcs and srcs[0].width else None,
                "source_fps": srcs[0].fps if srcs else None,
                "resources": resources,
                "memory_timeline": memory_timeline(mon.samples),
                "run_dir": summ.run_dir,
                "errors": summ.errors,
            })
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"b{b} s{n}: {summ.fps:.1f} fps")
    finally:
        if bar is not None:
            bar.close()

    peer = None
    if ultralytics:
        peer = ultralytics_track(cfg, max_frames)
    host = host_info()
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.now().isoformat(timespec="seconds"),
        "config": cfg.name,
        "host": host,
        "versions": _versions(),
        "model": {k: v for k, v in info.items() if k != "class_names"} | {"class_names": info.get("class_names")},
        "sources": [{"id": s.id, "uri": str(s.uri)} for s in cfg.sources],
        "rules": [r.name for r in cfg.rules],
        "synthetic_rules": synthetic_rules,
        "batches": batches,
        "streams": streams,
        "max_frames": max_frames,
        "cuda_mps": cuda_mps,
        "cases": cases,
        "ultralytics_track": peer,
        "targets": list(targets),
        "notes": notes,
    }
    record["sizing"], record["estimates"] = _sizing(record, cases, host, info, target_fps, target_resolution,
                                                    targets, reference, precision, headroom)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    record["path"] = str(json_path)
    return record


def _requests(case: dict[str, Any]) -> int:
    """CPU inference calls the case kept in flight (``model.requests``). Each call's preprocess / inference /
    postprocess time is its own wall time while the others run: r calls in flight complete r frames in that
    time on the same cores, so the per-frame cost sizing charges is the call's time over r."""
    return max(1, int((case.get("pipeline") or {}).get("inference_requests") or 1))


def costs_from_cases(cases: list[dict[str, Any]], host: dict[str, Any], info: dict[str, Any]) -> StageCosts:
    """Per-frame stage costs for sizing: CPU stages from the fewest-streams, smallest-batch case; inference
    per frame for each batch actually reached (mean frames per call, capped by the model's fixed batch),
    the lowest over the cases that reached it."""
    ok = [c for c in cases if c["frames"] > 0 and c["resolution"]]
    if not ok:
        raise SizingError("no case decoded any frame: nothing to size from")
    n_min = min(c["streams"] for c in ok)
    base = min((c for c in ok if c["streams"] == n_min), key=lambda c: c["batch"])
    missing = [s for s in STAGES if base["stages"][s]["mean_ms"] is None and s != "rules"]
    if missing:
        raise SizingError(f"stages without timings in the base case: {missing}")
    inf: dict[int, float] = {}
    dev = _inference_device(info)
    for c in ok:  # per-frame inference depends on the batch reached, not on the stream count: best of all cases
        overlap = bool((c.get("pipeline") or {}).get("launch_finish_overlap"))
        if overlap and dev != "cpu" and c.get("model_only_ips"):
            # with launch/finish overlap the 'inference' stage is the finish's wait for the GPU, not the GPU's
            # time per frame: the model-only measurement of the same case (upload + letterbox + model) is
            b = c["batch"] if not c.get("model_chunk") else min(c["batch"], c["model_chunk"])
            inf[b] = min(inf.get(b, float("inf")), 1000.0 / c["model_only_ips"])
            continue
        if c["stages"]["inference"]["mean_ms"] is None:
            continue
        eff = c["frames_per_call_mean"] or c["batch"]
        if c.get("model_chunk"):
            eff = min(eff, c["model_chunk"])  # a fixed-batch model runs larger calls in chunks
        b = max(1, int(round(eff)))
        inf[b] = min(inf.get(b, float("inf")), c["stages"]["inference"]["mean_ms"] / _requests(c))
    cores = int(host.get("logical_cores") or 1)
    gpus = host.get("gpus") or []
    breq = _requests(base)
    return StageCosts(
        decode=base["stages"]["decode"]["mean_ms"], preprocess=base["stages"]["preprocess"]["mean_ms"] / breq,
        postprocess=base["stages"]["postprocess"]["mean_ms"] / breq, tracking=base["stages"]["tracking"]["mean_ms"],
        rules=base["stages"]["rules"]["mean_ms"] or 0.0, inference_ms=inf, resolution=tuple(base["resolution"]),
        inference_device=dev, inference_threads=int(host.get("physical_cores") or cores) if dev == "cpu" else 1,
        cpu_cores=cores,
        model={k: info.get(k) for k in ("path", "backend", "sha256", "imgsz", "providers", "half")},
        measured_on=(f"{host.get('cpu')} ({cores} logical cores"
                     + (f"; {', '.join(host['cpu_features'])}" if host.get("cpu_features") else "") + ")"
                     + (f", {gpus[0]}" if gpus else "")),
        gpu_name=(gpus[0] if gpus else host.get("jetson_model")),
    )


def _sizing(record, cases, host, info, target_fps, target_resolution, targets, reference, precision, headroom):
    try:
        costs = costs_from_cases(cases, host, info)
    except SizingError as e:
        return {"error": str(e)}, {}
    base = [c for c in cases if c["resolution"]][0]
    fps = float(target_fps or base.get("source_fps") or 25.0)
    res = tuple(target_resolution) if target_resolution else tuple(costs.resolution)
    sizing = size_streams(costs, fps, res, headroom=headroom)
    sizing["costs"] = costs.to_dict()
    estimates: dict[str, Any] = {}
    ref = reference or match_device(costs.gpu_name)
    utils = [d["util_pct_max"] for c in cases if c["resources"].get("gpu", {}).get("available")
             for d in c["resources"]["gpu"]["devices"][:1] if d.get("util_pct_max") is not None]
    for t in targets:
        try:
            estimates[t] = estimate_for_device(costs, t, fps, res, reference=ref, precision=precision,
                                               headroom=headroom)
            if utils and max(utils) < 60:
                estimates[t]["assumptions"].append(
                    f"the reference GPU was at most {max(utils):.0f}% busy (NVML): its time is mostly host/launch "
                    "overhead, so scaling it by datasheet ratios over-states the target's time (estimate errs low)")
        except SizingError as e:
            estimates[t] = {"kind": "estimate", "error": str(e)}
    return sizing, estimates


def _sample_frames(cfg: PocConfig, n: int) -> list:
    """The first ``n`` frames of the config's first source (real frames for the model-only measurement)."""
    from ..resolve import resolve_uri
    from ..sources import open_source

    sc = cfg.sources[0]
    uri = resolve_uri(sc.uri, cfg, field="sources[0].uri")
    out = []
    with open_source(uri, max_frames=max(n, 1), resize=sc.resize) as src:
        for fr in src:
            out.append(fr.image)
    return [out[i % len(out)] for i in range(n)]


def model_only_ips(detector, frames: list, batch: int, seconds: float = 3.0) -> float:
    """Images per second of the network alone at this batch, on real letterboxed frames, in this run.

    Torch GPU backend: the forward pass (its CUDA graph) timed with CUDA events on a batch prepared once.
    Other backends: the 'inference' share of ``detect`` (pre/post-processing excluded)."""
    if hasattr(detector, "forward_raw") and hasattr(detector, "preprocess_gpu"):
        torch = detector.torch
        with torch.inference_mode():
            x, _ = detector.preprocess_gpu(detector.upload(frames[:batch]))
            for _ in range(5):
                detector.forward_raw(x)
            if not detector.is_cuda:
                t0, n = time.perf_counter(), 0
                while time.perf_counter() - t0 < seconds:
                    detector.forward_raw(x)
                    n += 1
                return batch * n / (time.perf_counter() - t0)
            torch.cuda.synchronize()
            ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            n = 0
            ev0.record()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for _ in range(10):
                    detector.forward_raw(x)
                n += 10
                torch.cuda.synchronize()
            ev1.record()
            torch.cuda.synchronize()
            return batch * n / (ev0.elapsed_time(ev1) / 1e3)
    detector.detect(frames[:batch])
    t0, n, busy = time.perf_counter(), 0, 0.0
    while time.perf_counter() - t0 < seconds:
        detector.detect(frames[:batch])
        busy += float((getattr(detector, "last_timings", {}) or {}).get("inference", 0.0))
        n += batch
    return n / busy if busy > 0 else n / (time.perf_counter() - t0)


def ultralytics_track(cfg: PocConfig, max_frames: int | None) -> dict[str, Any]:
    """Ultralytics ``model.track`` (ByteTrack, persist=True), frame by frame, on the same frames and model."""
    from ..resolve import resolve_path, resolve_uri
    from ..sources import open_source

    path = resolve_path(cfg.model.path, cfg)
    if not path.endswith(".pt"):
        try:
            from ..registry import resolve_model

            path = str(resolve_model(cfg.model.path + "-pt"))
        except Exception:
            return {"error": f"Ultralytics needs the .pt weights; {cfg.model.path} is not a .pt"}
    try:
        import logging as _logging

        from ultralytics import YOLO
        from ultralytics.utils import LOGGER
    except Exception as e:
        return {"error": f"ultralytics not importable ({type(e).__name__}: {e}); pip install -e '.[ml]'"}
    LOGGER.setLevel(_logging.ERROR)
    sc = cfg.sources[0]
    uri = resolve_uri(sc.uri, cfg, field="sources[0].uri")
    frames = []
    with open_source(uri, max_frames=max_frames or 300, resize=sc.resize) as src:
        frames = [fr.image for fr in src]
    dev = cfg.model.device
    kw = dict(imgsz=cfg.model.imgsz, conf=cfg.model.conf, iou=cfg.model.iou, verbose=False,
              device=0 if str(dev).startswith("cuda") else "cpu", half=bool(cfg.model.half))
    try:
        y = YOLO(path)
        y.track(frames[0], persist=True, tracker="bytetrack.yaml", **kw)  # warm-up, first-call set-up
        t0 = time.perf_counter()
        for f in frames[1:]:
            y.track(f, persist=True, tracker="bytetrack.yaml", **kw)
        wall = time.perf_counter() - t0
    except Exception as e:  # e.g. its tracker needs 'lap', which it would try to install at run time
        return {"error": f"Ultralytics model.track failed: {type(e).__name__}: {e}"}
    return {"frames": len(frames) - 1, "fps": (len(frames) - 1) / wall if wall > 0 else None, "model": path,
            "source": str(uri), "note": "frames decoded before timing (decode not counted for Ultralytics)"}


def memory_timeline(samples: list[dict], points: int = 120) -> list[dict]:
    """At most ``points`` evenly spaced samples of the run's memory: t (s), PSS and RSS of pockit's process
    tree (MB), GPU memory used (MB, first GPU): enough to see whether memory is flat after warm-up."""
    if not samples:
        return []
    step = max(1, len(samples) // points)
    out = []
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        g = (s.get("gpus") or [{}])[0] or {}
        out.append({"t": round(s["t"], 2), "tree_pss_mb": s.get("tree_pss_mb"), "tree_rss_mb": s.get("tree_rss_mb"),
                    "gpu_mem_mb": g.get("mem_used_mb")})
    return out
