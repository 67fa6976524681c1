"""Device sizing: how many streams a machine sustains, from measured per-frame stage costs.

Model (explicit, so a customer can check it):

- CPU stages (decode, preprocess, postprocess, tracking, rules) each run on one core per frame and
  parallelise across streams; decode and preprocess scale with source pixels (target / measured).
  Capacity: ``cores x 1000 ms`` of core time per second, times ``headroom``.
- Inference runs on the accelerator (one shared device; per-frame cost at the batch used) or, when
  measured on the CPU, on the CPU's cores: its wall time times the cores its thread pool kept busy is
  added to the CPU demand.
- Hardware decode (NVDEC), where the target decodes in hardware: a published stream count at 1080p30,
  scaled by pixels x fps.
- Streams = floor(min over resources of capacity / per-stream demand). The limiting resource is the one
  that gives that minimum; the limiting stage is the largest consumer of that resource.
- A batch size b is only usable when at least b streams run (one frame per stream per tick);
  only measured batch sizes are used, never interpolated ones.

:func:`size_streams` gives a measurement-based figure for the measuring machine.
:func:`estimate_for_device` scales a GPU measurement to another device by published datasheet ratios
and is always labelled ``kind: "estimate"`` with its sources.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CPU_STAGES = ("decode", "preprocess", "postprocess", "tracking", "rules")
PIXEL_SCALED = ("decode", "preprocess")
ESTIMATE_LABEL = "ESTIMATE from published datasheet figures, not a measurement"
DEVICES_FILE = Path(__file__).with_name("devices.yaml")


class SizingError(ValueError):
    """Sizing inputs that cannot give an honest figure."""


@dataclass
class StageCosts:
    """Measured mean cost per frame (milliseconds) of each stage, and where it was measured.

    ``inference_ms``: {batch size: ms per frame at that batch}. ``inference_device``: ``"cpu"`` or
    ``"gpu"``. ``inference_threads``: cores an inference call keeps busy when it runs on the CPU.
    ``resolution``: measured source (width, height). ``model``: what was measured (name, imgsz,
    backend, precision), so a figure is never quoted without its model.
    """

    decode: float
    preprocess: float
    postprocess: float
    tracking: float
    rules: float
    inference_ms: dict[int, float]
    resolution: tuple[int, int]
    inference_device: str = "cpu"
    inference_threads: int = 1
    cpu_cores: int = 1
    model: dict[str, Any] = field(default_factory=dict)
    measured_on: str = ""
    gpu_name: str | None = None

    def __post_init__(self) -> None:
        if not self.inference_ms:
            raise SizingError("no inference timing: measure at least one batch size")
        self.inference_ms = {int(b): float(v) for b, v in self.inference_ms.items()}
        for name in CPU_STAGES:
            v = getattr(self, name)
            if v is None or not math.isfinite(v) or v < 0:
                raise SizingError(f"stage {name!r} has no valid measured cost ({v!r})")
        if self.inference_device not in ("cpu", "gpu"):
            raise SizingError(f"inference_device must be 'cpu' or 'gpu', got {self.inference_device!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inference_ms"] = {str(k): v for k, v in self.inference_ms.items()}
        return d


def _pixels(res: tuple[int, int]) -> int:
    w, h = res
    if w <= 0 or h <= 0:
        raise SizingError(f"resolution must be positive (width, height), got {res}")
    return int(w) * int(h)


def _solve(cpu_ms: dict[str, float], cpu_capacity: float, inf_ms: dict[int, float], inf_on_cpu: bool,
           inf_threads: int, acc_capacity: float, fps: float, nvdec_streams: float | None) -> dict[str, Any]:
    """Best batch and stream count for per-frame CPU stage costs and per-batch inference costs."""
    best = None
    for b in sorted(inf_ms):
        per_frame_inf = inf_ms[b]
        cpu_demand = dict(cpu_ms)
        resources: dict[str, dict[str, Any]] = {}
        if inf_on_cpu:
            cpu_demand["inference"] = per_frame_inf * inf_threads
        cpu_per_stream = fps * sum(cpu_demand.values())
        resources["cpu"] = {"capacity_ms_per_s": cpu_capacity, "demand_ms_per_s_per_stream": cpu_per_stream,
                            "streams": cpu_capacity / cpu_per_stream if cpu_per_stream > 0 else math.inf,
                            "stages": {k: fps * v for k, v in cpu_demand.items()}}
        if not inf_on_cpu:
            acc = fps * per_frame_inf
            resources["accelerator"] = {"capacity_ms_per_s": acc_capacity, "demand_ms_per_s_per_stream": acc,
                                        "streams": acc_capacity / acc if acc > 0 else math.inf,
                                        "stages": {"inference": acc}}
        if nvdec_streams is not None:
            resources["nvdec"] = {"streams": nvdec_streams, "stages": {"decode": 1.0}}
        raw = min(r["streams"] for r in resources.values())
        feasible = b == min(inf_ms) or math.floor(raw) >= b
        cand = {"batch": b, "streams_raw": raw, "streams": int(math.floor(raw + 1e-9)), "resources": resources,
                "feasible": feasible}
        if feasible and (best is None or raw > best["streams_raw"]):
            best = cand
    assert best is not None
    lim_res = min(best["resources"], key=lambda k: best["resources"][k]["streams"])
    stages = best["resources"][lim_res]["stages"]
    best["limiting_resource"] = lim_res
    best["limiting_stage"] = max(stages, key=stages.get)
    # each stage alone on its resource: how many streams it would allow
    per_stage = {}
    for rname, r in best["resources"].items():
        for st, d in r["stages"].items():
            if rname == "nvdec":
                per_stage[st] = r["streams"]
            else:
                per_stage[st] = r["capacity_ms_per_s"] / d if d > 0 else None
    best["per_stage_streams"] = per_stage
    return best


def size_streams(costs: StageCosts, target_fps: float, target_resolution: tuple[int, int] | None = None,
                 cpu_cores: int | None = None, headroom: float = 0.8) -> dict[str, Any]:
    """Streams this machine sustains at ``target_fps`` and ``target_resolution`` (a measurement-based figure).

    ``headroom``: fraction of each resource that may be used (0.8 leaves 20 % for bursts and the OS).
    Returns a JSON-ready dict with ``kind: "measurement"``, ``streams``, ``batch``,
    ``limiting_resource``, ``limiting_stage``, per-resource and per-stage figures and the assumptions.
    """
    if target_fps <= 0:
        raise SizingError(f"target fps must be > 0, got {target_fps}")
    if not 0 < headroom <= 1:
        raise SizingError(f"headroom must be in (0, 1], got {headroom}")
    res = tuple(target_resolution) if target_resolution else tuple(costs.resolution)
    scale = _pixels(res) / _pixels(costs.resolution)
    cores = int(cpu_cores or costs.cpu_cores)
    cpu_ms = {s: getattr(costs, s) * (scale if s in PIXEL_SCALED else 1.0) for s in CPU_STAGES}
    sol = _solve(cpu_ms, cores * 1000.0 * headroom, costs.inference_ms, costs.inference_device == "cpu",
                 max(1, costs.inference_threads), 1000.0 * headroom, float(target_fps), None)
    assumptions = [
        f"CPU stages run one core per frame and parallelise across streams over {cores} cores",
        f"decode and preprocess cost scaled by source pixels: x{scale:.3g} "
        f"({costs.resolution[0]}x{costs.resolution[1]} measured -> {res[0]}x{res[1]} target)",
        f"{headroom:.0%} of each resource used (headroom for bursts and the OS)",
        "only measured batch sizes are used; a batch of b needs at least b streams",
    ]
    if costs.inference_device == "cpu":
        assumptions.append(f"inference on the CPU keeps {costs.inference_threads} core(s) busy for its wall time")
    return {
        "kind": "measurement",
        "label": "from costs measured on this machine",
        "measured_on": costs.measured_on,
        "model": costs.model,
        "target_fps": float(target_fps),
        "target_resolution": list(res),
        "cpu_cores": cores,
        "headroom": headroom,
        **_solution_fields(sol, target_fps),
        "resources": sol["resources"],
        "assumptions": assumptions,
    }


# ----------------------------------------------------------------------------------------------
# published device figures
# ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def load_devices(path: str | Path = DEVICES_FILE) -> dict[str, dict[str, Any]]:
    """The device table (devices.yaml): {key: spec}. Every spec has a ``source``."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    devs = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devs, dict) or not devs:
        raise SizingError(f"{path}: expected a 'devices:' mapping")
    for k, d in devs.items():
        for f in ("name", "kind", "int8_tops", "mem_bandwidth_gbs", "source"):
            if d.get(f) in (None, ""):
                raise SizingError(f"{path}: device {k!r} lacks {f!r}")
    return devs


def device_spec(key: str) -> dict[str, Any]:
    """One device's published figures; a clear error listing the known keys otherwise."""
    devs = load_devices()
    if key not in devs:
        raise SizingError(f"unknown device {key!r}; known: {', '.join(sorted(devs))} (pockit/bench/devices.yaml)")
    return {"key": key, **devs[key]}


def match_device(name: str | None) -> str | None:
    """The devices.yaml key whose ``match`` substrings occur in an NVML/tegra device name, else None.

    The longest matching substring wins, so 'NVIDIA A100-SXM4-80GB' is A100, not A10.
    """
    if not name:
        return None
    low = " " + name.lower().replace("-", " ") + " "
    best, blen = None, 0
    for key, d in load_devices().items():
        for sub in d.get("match") or []:
            s = sub.lower().replace("-", " ")
            if s.strip() and _whole(low, s) and len(s.strip()) > blen:
                best, blen = key, len(s.strip())
    return best


def _whole(text: str, sub: str) -> bool:
    """``sub`` occurs in ``text`` not followed by a letter/digit (so 'a10' does not match 'a100')."""
    i = text.find(sub)
    while i >= 0:
        j = i + len(sub)
        if j >= len(text) or not text[j].isalnum():
            return True
        i = text.find(sub, i + 1)
    return False


def _dense_int8(d: dict[str, Any]) -> float:
    return float(d["int8_tops"]) / (2.0 if d.get("int8_sparse") else 1.0)


def compute_ratio(ref: dict[str, Any], tgt: dict[str, Any], precision: str = "fp16") -> tuple[float, str]:
    """How many times slower the target computes than the reference (>1 = slower), and the figure used.

    FP16 dense TFLOPS where both devices publish it and precision is fp16; otherwise dense INT8 TOPS
    (sparse figures halved).
    """
    if precision == "fp16" and ref.get("fp16_tflops") and tgt.get("fp16_tflops"):
        return float(ref["fp16_tflops"]) / float(tgt["fp16_tflops"]), "dense FP16 TFLOPS"
    return _dense_int8(ref) / _dense_int8(tgt), "dense INT8 TOPS (sparse figures halved)"


def estimate_for_device(costs: StageCosts, target: str, target_fps: float,
                        target_resolution: tuple[int, int] = (1920, 1080), reference: str | None = None,
                        precision: str = "fp16", headroom: float = 0.8) -> dict[str, Any]:
    """Estimate streams on ``target`` from a GPU measurement, scaled by published device figures.

    Inference ms per frame is scaled by the slower of two datasheet ratios (compute and memory
    bandwidth), so the estimate errs on the low side; the other ratio gives the optimistic end of
    ``inference_ms_range``. On a target with a published NVDEC stream count, decoding moves to NVDEC.
    CPU stages keep their measured per-core cost (datasheets give no comparable CPU figure), on the
    target module's cores (Jetson) or the measuring host's cores (PCIe/SXM GPUs, whose host is unknown).
    The result has ``kind: "estimate"``, ``label`` and ``sources``; it is never a measurement.
    """
    if costs.inference_device != "gpu":
        raise SizingError(
            "inference was measured on the CPU: there is no datasheet ratio between a CPU and a GPU that "
            "gives an honest estimate. Run `pockit bench` once on a GPU listed in pockit/bench/devices.yaml "
            "(or pass that measurement) and estimate the target from it.")
    ref_key = reference or match_device(costs.gpu_name)
    if not ref_key:
        raise SizingError(
            f"the measuring GPU ({costs.gpu_name or 'unknown'}) is not in pockit/bench/devices.yaml; "
            "pass reference=<device key> naming the device the costs were measured on")
    ref, tgt = device_spec(ref_key), device_spec(target)
    c_ratio, c_basis = compute_ratio(ref, tgt, precision)
    bw_ratio = float(ref["mem_bandwidth_gbs"]) / float(tgt["mem_bandwidth_gbs"])
    slow, fast = max(c_ratio, bw_ratio), min(c_ratio, bw_ratio)
    # The largest measured batch is the most compute-bound figure (small batches on a big GPU are bound by
    # launch overhead, which datasheet ratios do not describe): scale it, and never go below the reference.
    b_max = max(costs.inference_ms)
    inf_est = {b: max(v, costs.inference_ms[b_max] * slow) for b, v in costs.inference_ms.items()}
    scale = _pixels(target_resolution) / _pixels(costs.resolution)
    cpu_ms = {s: getattr(costs, s) * (scale if s in PIXEL_SCALED else 1.0) for s in CPU_STAGES}
    nvdec = None
    assumptions = [
        f"inference ms per frame = the reference's at batch {b_max} (its most compute-bound figure) x{slow:.3g}, "
        f"the slower of compute ({c_basis}: x{c_ratio:.3g}) and memory bandwidth (x{bw_ratio:.3g}) ratios of "
        f"{ref['name']} to {tgt['name']}; never below the reference's own figure at the same batch",
        "CPU stages keep the per-core cost measured on " + (costs.measured_on or "the measuring machine")
        + " (no comparable published CPU figure)",
    ]
    dec = tgt.get("decode_1080p30")
    if dec and dec.get("streams"):
        nvdec = float(dec["streams"]) * (1920 * 1080 * 30.0) / (_pixels(target_resolution) * float(target_fps))
        cpu_ms["decode"] = 0.0
        assumptions.append(f"decode on NVDEC: {dec['streams']} x 1080p30 ({dec.get('codec', '')}) published, "
                           f"scaled by pixels x fps to {nvdec:.3g} streams")
    else:
        assumptions.append("decode stays on the CPU (no published NVDEC stream count for this device)")
    if b_max == 1:
        assumptions.append("only batch 1 was measured: on a large GPU that is launch-overhead bound, so this "
                           "estimate is pessimistic; measure --batch 1,8 for a tighter one")
    if tgt.get("int8_sparse") and tgt.get("kind") == "jetson" and tgt.get("fp16_tflops") is None:
        assumptions.append("Jetson headline TOPS are sparse INT8 and include the DLAs; a GPU-only pipeline gets less")
    cores = int(tgt.get("cpu_cores") or costs.cpu_cores)
    if not tgt.get("cpu_cores"):
        assumptions.append(f"host CPU of the target assumed to match the measuring host ({cores} cores)")
    sol = _solve(cpu_ms, cores * 1000.0 * headroom, inf_est, False, 1, 1000.0 * headroom, float(target_fps), nvdec)
    sources = sorted({ref["source"], tgt["source"]})
    return {
        "kind": "estimate",
        "label": ESTIMATE_LABEL,
        "target": target,
        "target_name": tgt["name"],
        "reference": ref_key,
        "reference_name": ref["name"],
        "model": costs.model,
        "target_fps": float(target_fps),
        "target_resolution": list(target_resolution),
        "precision": precision,
        "ratios": {"compute": c_ratio, "compute_basis": c_basis, "memory_bandwidth": bw_ratio, "applied": slow},
        "inference_ms_range": {str(b): [max(v, costs.inference_ms[b_max] * fast), inf_est[b]]
                               for b, v in costs.inference_ms.items()},
        **_solution_fields(sol, target_fps),
        "assumptions": assumptions,
        "sources": sources,
    }


def _solution_fields(sol: dict, target_fps: float) -> dict:
    """The fields a measured sizing and an estimate share."""
    return {
        "streams": sol["streams"],
        "streams_exact": sol["streams_raw"],
        "max_fps_one_stream": sol["streams_raw"] * float(target_fps),
        "batch": sol["batch"],
        "limiting_resource": sol["limiting_resource"],
        "limiting_stage": sol["limiting_stage"],
        "per_stage_streams": sol["per_stage_streams"],
    }
