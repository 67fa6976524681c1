"""A PoC bigger than one box: assign the site's cameras to N boxes and write one bundle per box.

``plan_site(config, bench)`` reads the site config (every camera as a source) and a ``pockit bench`` record
(bench.json: per-frame stage costs measured on some machine) and returns the plan: for each box its cameras
and the use of each resource, the limiting resource, and the smallest number of boxes that keeps every
resource under ``headroom``. ``write_plan(plan, out)`` writes ``plan.json``, one config per box
(``configs/<box>.yaml``: its cameras, the rules that concern them, ``outputs.box_id``) and, through
:func:`pockit.deploy.bundle.make_bundle`, one bundle per box.

Model of a box (explicit, so a customer can check it; the per-stage costs are those of
:mod:`pockit.bench.sizing`):

* cpu: decode, preprocess (both scaled by camera pixels), postprocess, tracking and rules, one core per
  frame, ``cores x 1000`` ms of core time per second; inference too when it was measured on the CPU (its wall
  time times the cores it kept busy).
* accelerator: inference ms per frame at the batch the box can fill (the largest measured batch not above
  its camera count), 1000 ms per second. For a ``target`` device it is the measured figure scaled by the
  datasheet ratios of :func:`pockit.bench.sizing.estimate_for_device` (an ESTIMATE, labelled so).
* nvdec: where the target decodes in hardware, the published 1080p30 stream count in pixels per second
  (and decode leaves the CPU).
* memory: per camera the slope of the measured process memory over the bench's stream counts (scaled by
  pixels), or, with a single stream count measured, frame slots + decoder frames (``5 x w x h x 3`` +
  ``16 x w x h x 1.5`` bytes, an assumption said so); a fixed part = the measured memory at the fewest
  streams; capacity = the target's memory (Jetson: shared with the GPU) or the measuring host's.

Each resource may be used up to ``headroom`` (default 0.8). Cameras are placed largest first on the box
where the highest resource use stays lowest (balanced); the number of boxes grows until every box fits.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ..bench.sizing import (
    CPU_STAGES,
    PIXEL_SCALED,
    SizingError,
    StageCosts,
    device_spec,
    estimate_for_device,
)
from ..config import PocConfig, load_config
from ..resolve import is_stream

DECODER_FRAMES = 16      # reference frames an H.264/H.265 decoder may hold (assumption when memory is not measured)
FRAME_SLOTS = 5          # frame-pool slots per camera (pipeline default for live cameras: batch x 4 + streams)
NVDEC_REF = 1920 * 1080 * 30.0


class PlanError(ValueError):
    """The plan cannot be made; the message names the file, camera or resource and what to do."""


@dataclass
class Camera:
    id: str
    uri: str
    width: int
    height: int
    fps: float
    known_from: str  # "config resize", "probed", "--res", "--default-res"

    @property
    def pixels(self) -> int:
        return self.width * self.height


# ------------------------------------------------------------------------------------------ inputs
def _wh(text: str, what: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise PlanError(f"{what}: expected WIDTHxHEIGHT like 1920x1080, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def site_cameras(cfg: PocConfig, res: dict[str, str] | None = None, default_res: str | None = None,
                 default_fps: float | None = None, probe: bool = True) -> list[Camera]:
    """Every source of the site config with its resolution and analysed fps: ``res[id]`` (WxH), the source's
    ``resize``, the file itself (local videos and folders are probed), else ``default_res``; fps = the
    source's ``fps``, else the probed native rate, else ``default_fps``. Unknown values fail naming the cameras."""
    res = dict(res or {})
    unknown = sorted(set(res) - {s.id for s in cfg.sources})
    if unknown:
        raise PlanError(f"--res names camera(s) not in the config: {unknown}; known: {[s.id for s in cfg.sources]}")
    out, missing = [], []
    for s in cfg.sources:
        wh, fps, how = None, s.fps, ""
        if s.id in res:
            wh, how = _wh(res[s.id], f"--res {s.id}"), "--res"
        elif s.resize:
            wh, how = (int(s.resize[0]), int(s.resize[1])), "config resize"
        if probe and (wh is None or fps is None):
            info = _probe_local(cfg, s)
            if info:
                if wh is None:
                    wh, how = info[0], "probed"
                if fps is None and info[1]:
                    fps = float(info[1])
        if wh is None and default_res:
            wh, how = _wh(default_res, "--default-res"), "--default-res"
        if fps is None:
            fps = default_fps
        if wh is None or not fps:
            missing.append(f"{s.id} ({s.uri}): " + " and ".join(
                x for x, ok in (("resolution", wh is not None), ("fps", bool(fps))) if not ok))
            continue
        out.append(Camera(s.id, str(s.uri), wh[0], wh[1], float(fps), how))
    if missing:
        raise PlanError("cannot size these cameras (not local files, nothing given): " + "; ".join(missing)
                        + ". Give --res ID=WIDTHxHEIGHT / --default-res, and fps: in the config or --default-fps")
    return out


def _probe_local(cfg: PocConfig, s) -> tuple[tuple[int, int], float | None] | None:
    """(size, native fps) of a local file/folder source (first frame only); None for cameras and streams."""
    from .bundle import BundleError, _local_media

    try:
        p = _local_media(s.uri, cfg.base_dir.resolve(), s.id)
    except BundleError as e:
        raise PlanError(str(e)) from None
    if p is None:
        return None
    from ..sources import open_source

    try:
        with open_source(str(p), source_id=s.id, max_frames=1) as src:
            first = next(iter(src), None)
            native = src.fps
    except Exception as e:  # noqa: BLE001 - any decoder error: say which camera
        raise PlanError(f"camera {s.id}: cannot read {p} to learn its size ({e}); give --res {s.id}=WxH") from None
    if first is None:
        raise PlanError(f"camera {s.id}: {p} has no frame")
    h, w = first.image.shape[:2]
    return (w, h), native


def load_bench(path: str | Path) -> dict[str, Any]:
    """Stage costs and memory figures of a bench.json: ``{"costs": StageCosts, "memory": {...}, "path": ...}``."""
    p = Path(path)
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{p}: bench file not found (make one with `pockit bench CONFIG -o {p}`)") from None
    except (OSError, ValueError) as e:
        raise PlanError(f"{p}: not a bench.json ({e})") from None
    sizing = rec.get("sizing") if isinstance(rec, dict) else None
    if not isinstance(sizing, dict) or "costs" not in sizing:
        why = (sizing or {}).get("error") if isinstance(sizing, dict) else None
        raise PlanError(f"{p}: no per-stage costs in 'sizing.costs'" + (f" (bench said: {why})" if why else "")
                        + "; re-run `pockit bench` with this pockit version")
    c = dict(sizing["costs"])
    try:
        c["resolution"] = tuple(c["resolution"])
        costs = StageCosts(**c)
    except (TypeError, SizingError) as e:
        raise PlanError(f"{p}: sizing.costs is not usable: {e}") from None
    # memory: process RSS max per case; per-stream slope when two or more stream counts were measured
    pts: dict[int, float] = {}
    for case in rec.get("cases") or []:
        m = ((case.get("resources") or {}).get("memory") or {}).get("process_rss_mb_max")
        if m is not None and case.get("streams"):
            pts[int(case["streams"])] = min(pts.get(int(case["streams"]), math.inf), float(m))
    mem: dict[str, Any] = {"host_total_mb": float((rec.get("host") or {}).get("memory_gb") or 0) * 1024 or None}
    if pts:
        n0 = min(pts)
        mem["base_mb"] = pts[n0]
        mem["base_streams"] = n0
        if len(pts) >= 2:
            n1 = max(pts)
            mem["per_stream_mb"] = max(0.0, (pts[n1] - pts[n0]) / (n1 - n0))
            mem["per_stream_from"] = f"measured: process memory {pts[n0]:.0f} MB at {n0} stream(s), {pts[n1]:.0f} MB at {n1}"
    return {"costs": costs, "memory": mem, "path": str(p), "model": costs.model, "measured_on": costs.measured_on}


# ------------------------------------------------------------------------------------------ model
class BoxModel:
    """Per-camera demand and per-box capacity of each resource, for one device (measured or estimated)."""

    def __init__(self, bench: dict[str, Any], target: str | None = None, reference: str | None = None,
                 precision: str = "fp16", headroom: float = 0.8) -> None:
        if not 0 < headroom <= 1:
            raise PlanError(f"headroom must be in (0, 1], got {headroom}")
        costs: StageCosts = bench["costs"]
        self.costs = costs
        self.headroom = headroom
        self.target = target
        self.assumptions: list[str] = []
        mem = bench["memory"]
        ref_px = costs.resolution[0] * costs.resolution[1]
        if target:
            try:
                spec = device_spec(target)
                est = estimate_for_device(costs, target, 25.0, tuple(costs.resolution), reference=reference,
                                          precision=precision, headroom=headroom)
            except SizingError as e:
                raise PlanError(str(e)) from None
            self.kind, self.label = "estimate", est["label"]
            self.device = spec["name"]
            self.inference_ms = {int(b): v[1] for b, v in est["inference_ms_range"].items()}
            self.inf_on_cpu = False
            self.cores = int(spec.get("cpu_cores") or costs.cpu_cores)
            dec = spec.get("decode_1080p30") or {}
            self.nvdec_px = float(dec["streams"]) * NVDEC_REF if dec.get("streams") else None
            self.memory_mb = float(spec["memory_gb"]) * 1024 if spec.get("memory_gb") else None
            self.assumptions += est["assumptions"]
            self.sources = est["sources"]
        else:
            self.kind, self.label = "measurement", "from costs measured on the benchmarking machine"
            self.device = costs.measured_on or "the benchmarking machine"
            self.inference_ms = dict(costs.inference_ms)
            self.inf_on_cpu = costs.inference_device == "cpu"
            self.cores = int(costs.cpu_cores)
            self.nvdec_px = None
            self.memory_mb = mem.get("host_total_mb")
            self.sources = []
            self.assumptions.append(f"CPU stages run one core per frame over {self.cores} cores")
        self.mem_base = float(mem.get("base_mb") or 0.0)
        if "per_stream_mb" in mem:
            self.mem_per_px = mem["per_stream_mb"] * 2**20 / ref_px
            self.assumptions.append(f"memory per camera scaled by pixels from the {mem['per_stream_from']}")
        else:
            self.mem_per_px = FRAME_SLOTS * 3 + DECODER_FRAMES * 1.5
            self.assumptions.append(f"memory per camera ASSUMED: {FRAME_SLOTS} frame slots (w x h x 3) + "
                                    f"{DECODER_FRAMES} decoder frames (w x h x 1.5): bench measured one stream count")
        if self.mem_base:
            self.assumptions.append(f"fixed memory {self.mem_base:.0f} MB = the process measured at "
                                    f"{mem.get('base_streams')} stream(s) on {costs.measured_on or 'the bench host'}")
        if self.memory_mb is None:
            self.assumptions.append("memory not checked: the device's memory is unknown")
        self.assumptions.append(f"{headroom:.0%} of each resource used (headroom for bursts and the OS)")
        self.ref_px = ref_px

    def capacity(self) -> dict[str, float]:
        cap = {"cpu": self.cores * 1000.0}
        if not self.inf_on_cpu:
            cap["accelerator"] = 1000.0
        if self.nvdec_px:
            cap["nvdec"] = self.nvdec_px
        if self.memory_mb:
            cap["memory"] = self.memory_mb
        return {k: v * self.headroom for k, v in cap.items()}

    def batch_for(self, n_cameras: int) -> int:
        ok = [b for b in self.inference_ms if b <= max(1, n_cameras)]
        return max(ok) if ok else min(self.inference_ms)

    def demand(self, cam: Camera, batch: int) -> dict[str, dict[str, float]]:
        """{resource: {stage: demand}} of one camera (ms/s for cpu/accelerator, px/s for nvdec, MB for memory)."""
        scale = cam.pixels / self.ref_px
        cpu = {s: getattr(self.costs, s) * (scale if s in PIXEL_SCALED else 1.0) * cam.fps for s in CPU_STAGES}
        d: dict[str, dict[str, float]] = {}
        inf = self.inference_ms[batch] * cam.fps
        if self.nvdec_px:
            cpu["decode"] = 0.0
            d["nvdec"] = {"decode": cam.pixels * cam.fps}
        if self.inf_on_cpu:
            cpu["inference"] = inf * max(1, self.costs.inference_threads)
        else:
            d["accelerator"] = {"inference": inf}
        d["cpu"] = cpu
        if self.memory_mb:
            d["memory"] = {"frames": cam.pixels * self.mem_per_px / 2**20}
        return d

    def box_use(self, cams: list[Camera]) -> dict[str, Any]:
        """Use of each resource on a box holding ``cams`` (fractions of the usable capacity; 1.0 = full)."""
        b = self.batch_for(len(cams))
        cap = self.capacity()
        tot: dict[str, dict[str, float]] = {r: {} for r in cap}
        for c in cams:
            for r, stages in self.demand(c, b).items():
                for s, v in stages.items():
                    tot[r][s] = tot[r].get(s, 0.0) + v
        if "memory" in tot and cams:
            tot["memory"]["fixed"] = self.mem_base
        use = {r: (sum(st.values()) / cap[r] if cap[r] else math.inf) for r, st in tot.items()}
        lim = max(use, key=use.get) if use else "cpu"
        stage = max(tot[lim], key=tot[lim].get) if tot.get(lim) else ""
        return {"batch": b, "use": use, "stages": tot, "limiting_resource": lim, "limiting_stage": stage,
                "fits": all(v <= 1.0 + 1e-9 for v in use.values())}


# ------------------------------------------------------------------------------------------ plan
def _assign(model: BoxModel, cams: list[Camera], n: int) -> list[list[Camera]]:
    """Largest camera first, each on the box where the highest resource use then stays lowest."""
    size = {c.id: max(model.box_use([c])["use"].values()) for c in cams}
    boxes: list[list[Camera]] = [[] for _ in range(n)]
    for c in sorted(cams, key=lambda c: (-size[c.id], c.id)):
        best = min(range(n), key=lambda i: (max(model.box_use(boxes[i] + [c])["use"].values()), len(boxes[i]), i))
        boxes[best].append(c)
    return boxes


def plan_site(config: str | Path, bench: str | Path, *, target: str | None = None, boxes: int | None = None,
              headroom: float = 0.8, res: dict[str, str] | None = None, default_res: str | None = None,
              default_fps: float | None = None, reference: str | None = None, precision: str = "fp16",
              box_prefix: str = "box") -> dict[str, Any]:
    """The plan (JSON-ready): boxes with their cameras and resource use, the limiting resource, assumptions.

    ``boxes``: use exactly that many (PlanError when they cannot hold the cameras, naming the smallest count
    that can); default: the fewest that fit.
    """
    cfg = load_config(config)
    b = load_bench(bench)
    model = BoxModel(b, target=target, reference=reference, precision=precision, headroom=headroom)
    cams = site_cameras(cfg, res, default_res, default_fps)
    for c in cams:
        u = model.box_use([c])
        if not u["fits"]:
            r = u["limiting_resource"]
            raise PlanError(f"camera {c.id} ({c.width}x{c.height} at {c.fps:g} fps) alone needs {u['use'][r]:.0%} of "
                            f"the usable {r} of one box ({model.device}): lower its fps or resolution, or use a "
                            "larger device")
    # a lower bound on the box count: every camera at the cheapest measured batch
    best = min(model.inference_ms, key=model.inference_ms.get)
    cap = model.capacity()
    lower = max(1, math.ceil(max(sum(sum(model.demand(c, best).get(r, {}).values()) for c in cams) / cap[r]
                                 for r in cap) - 1e-9))
    fewest, layout = None, None
    for n in range(lower, len(cams) + 1):
        cand = _assign(model, cams, n)
        if all(model.box_use(bx)["fits"] for bx in cand if bx):
            fewest, layout = n, cand
            break
    assert fewest is not None and layout is not None  # one camera per box always fits (checked above)
    if boxes is not None:
        if boxes < 1:
            raise PlanError(f"--boxes must be >= 1, got {boxes}")
        if boxes > len(cams):
            raise PlanError(f"--boxes {boxes}: more boxes than cameras ({len(cams)})")
        if boxes < fewest:
            over = _assign(model, cams, boxes)
            worst = max((model.box_use(bx) for bx in over), key=lambda u: max(u["use"].values()))
            r = worst["limiting_resource"]
            raise PlanError(f"{len(cams)} cameras do not fit on {boxes} box(es) of {model.device} with "
                            f"{headroom:.0%} headroom: a box would need {worst['use'][r]:.0%} of its usable {r} "
                            f"({worst['limiting_stage']}); the fewest boxes that fit: {fewest}")
        layout = _assign(model, cams, boxes)
    width = max(2, len(str(len(layout))))
    out_boxes = []
    for i, bx in enumerate(layout, 1):
        u = model.box_use(bx)
        out_boxes.append({
            "box": f"{box_prefix}-{i:0{width}d}", "cameras": [asdict(c) for c in sorted(bx, key=lambda c: c.id)],
            "batch": u["batch"], "use": {r: round(v, 4) for r, v in u["use"].items()},
            "limiting_resource": u["limiting_resource"], "limiting_stage": u["limiting_stage"],
            "demand": {r: {s: round(v, 3) for s, v in st.items()} for r, st in u["stages"].items()},
        })
    worst = max(out_boxes, key=lambda x: x["use"][x["limiting_resource"]]) if out_boxes else None
    return {
        "kind": model.kind, "label": model.label, "device": model.device, "target": target,
        "config": str(Path(config)), "bench": b["path"], "model": b["model"], "measured_on": b["measured_on"],
        "headroom": headroom, "cameras": len(cams), "boxes": out_boxes, "fewest_boxes": fewest,
        "capacity_per_box": {r: round(v, 3) for r, v in model.capacity().items()},
        "units": {"cpu": "core-ms per s", "accelerator": "ms per s", "nvdec": "pixels per s", "memory": "MB"},
        "limiting_resource": worst["limiting_resource"] if worst else None,
        "limiting_stage": worst["limiting_stage"] if worst else None,
        "assumptions": model.assumptions, "sources": model.sources,
    }


def box_config(cfg: PocConfig, box: str, camera_ids: list[str]) -> dict[str, Any]:
    """The site config for one box: its cameras, the rules and extra models that concern them, its box id."""
    keep = set(camera_ids)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["sources"] = [s for s in data["sources"] if s["id"] in keep]
    rules = []
    for r in data.get("rules", []):
        if r.get("sources") is not None:
            r["sources"] = [s for s in r["sources"] if s in keep]
            if not r["sources"]:
                continue
        rules.append(r)
    data["rules"] = rules
    extra = []
    for m in data.get("extra_models", []):
        if m.get("sources") is not None:
            m["sources"] = [s for s in m["sources"] if s in keep]
            if not m["sources"]:
                continue
        extra.append(m)
    data["extra_models"] = extra
    data.setdefault("outputs", {})["box_id"] = box
    PocConfig.model_validate(data)
    return data


def write_plan(plan: dict[str, Any], out: str | Path, *, bundles: bool = True, overwrite: bool = False,
               **bundle_kw: Any) -> dict[str, Any]:
    """Write ``out/plan.json``, ``out/configs/<box>.yaml`` and (``bundles``) ``out/<box>/`` bundles."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise PlanError(f"{out} exists and is not empty; choose another -o or pass --overwrite")
    cfg_path = Path(plan["config"])
    cfg = load_config(cfg_path)
    (out / "configs").mkdir(parents=True, exist_ok=True)
    for bx in plan["boxes"]:
        d = box_config(cfg, bx["box"], [c["id"] for c in bx["cameras"]])
        bx["config"] = str(Path("configs") / f"{bx['box']}.yaml")
        # relative files of the site config (media, models) keep resolving from configs/<box>.yaml
        def _abs(v):
            ok = isinstance(v, str) and not is_stream(v) and not v.startswith(("data:", "media:", "/"))
            return str((cfg.base_dir / v).resolve()) if ok and (cfg.base_dir / v).exists() else v

        for s in d["sources"]:
            s["uri"] = _abs(s["uri"])
        for m in [d["model"]] + [x["model"] for x in d.get("extra_models", [])]:
            m["path"] = _abs(m["path"])
        (out / bx["config"]).write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")
        if bundles:
            from .bundle import make_bundle

            make_bundle(out / bx["config"], "jetson", out / bx["box"], overwrite=overwrite, **bundle_kw)
            bx["bundle"] = bx["box"]
    if not any(s.type in ("mqtt", "kafka") for s in cfg.outputs.sinks):
        plan.setdefault("warnings", []).append(
            "the config has no mqtt or kafka sink: each box keeps its events; add one (with snapshots: true) "
            "and run `pockit collect` to gather them in one place")
    (out / "plan.json").write_text(json.dumps(plan, indent=1), encoding="utf-8")
    return plan
