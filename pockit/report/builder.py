"""Collect a run directory's numbers and render the customer report (one self-contained HTML file)."""
from __future__ import annotations

import base64
import difflib
import json
import logging
import math
import operator
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Event, load_mot_array, read_events
from ..evaluate.detection import EvaluationError
from .environment import gpu_text, machine_rows
from .i18n import LIMITATIONS, translator

log = logging.getLogger(__name__)

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
TEMPLATES = Path(__file__).parent / "templates"


class ReportError(ValueError):
    """The run directory or ground truth cannot make a report; the message says what to do."""


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class GroundTruth:
    """Ground truth for a run: MOT annotation per source and/or an events JSONL."""

    tracks: dict[str, Path] = field(default_factory=dict)
    events: Path | None = None


def parse_gt(gt: Any, source_ids: Sequence[str]) -> GroundTruth:
    """``gt``: None, a path, ``"SOURCE=PATH"``, a list of those, or {source: path}.

    ``.jsonl`` files are ground-truth events; other files are MOT ground truth (a path without a
    source prefix belongs to the run's only/first source). A folder holding ``gt/gt.txt`` works too.
    """
    out = GroundTruth()
    if gt is None:
        return out
    items: list[tuple[str | None, str]] = []
    if isinstance(gt, Mapping):
        items = [(str(k), str(v)) for k, v in gt.items()]
    else:
        for g in ([gt] if isinstance(gt, (str, Path)) else list(gt)):
            s = str(g)
            if "=" in s and not Path(s).exists():
                k, v = s.split("=", 1)
                items.append((k, v))
            else:
                items.append((None, s))
    for sid, p in items:
        path = Path(p).expanduser()
        if path.is_dir() and (path / "gt" / "gt.txt").exists():
            path = path / "gt" / "gt.txt"
        if not path.exists():
            raise ReportError(f"ground truth not found: {path} (give a MOT gt.txt, a MOTChallenge sequence "
                              "folder, or an events .jsonl)")
        if path.suffix.lower() == ".jsonl":
            out.events = path
            continue
        if sid is None:
            if not source_ids:
                raise ReportError("the run has no sources to attach the ground truth to")
            sid = source_ids[0]
            if len(source_ids) > 1:
                log.warning("ground truth %s attached to the first source %r; use SOURCE=PATH", path, sid)
        if sid not in source_ids:
            raise ReportError(f"ground truth {path} names source {sid!r} but the run has {list(source_ids)}")
        out.tracks[sid] = path
    return out


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: {what} is not valid JSON ({e}); was the run interrupted while writing it?") from None


def _img_data_uri(path: Path | None = None, image: np.ndarray | None = None, max_w: int = 960) -> str | None:
    import cv2

    if image is None:
        if path is None or not path.exists():
            return None
        image = cv2.imread(str(path))
        if image is None:
            return None
    h, w = image.shape[:2]
    if w > max_w:
        image = cv2.resize(image, (max_w, round(h * max_w / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 82])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None


MAX_CLIP_BYTES = 4 * 1024 * 1024  # an alarm clip larger than this is left out of the self-contained report


def _video_data_uri(path: Path) -> str | None:
    """A clip as a data URI for a ``<video>`` tag (None when missing or over :data:`MAX_CLIP_BYTES`)."""
    from ..sinks.draw import video_mime

    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_CLIP_BYTES:
        log.warning("clip %s is %.1f MB: left out of the report (limit %d MB)", path.name, size / 2**20,
                    MAX_CLIP_BYTES // 2**20)
        return None
    return f"data:{video_mime(path)};base64," + base64.b64encode(path.read_bytes()).decode()


def _frame_stride(frames: np.ndarray) -> int:
    """The step between processed frames (a run at a lower fps than the footage keeps every n-th)."""
    f = np.unique(frames.astype(int))
    if len(f) < 3:
        return 1
    return max(1, int(np.gcd.reduce(np.diff(f))))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 10):
        return f"{int(v)}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


# ------------------------------------------------------------------------------------- public text
# an absolute local path (POSIX, ~ or a Windows drive) of at least two parts: /root/.cache/pockit/models/x.onnx
_LOCAL_PATH = re.compile(r"(?<![\w.:/~\\-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'\"<>()\[\],;`]+[/\\])+"
                         r"([^\s/\\'\"<>()\[\],;`]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute local path replaced by its last part (the file name): the customer's
    document names files, never the engineer's folders (``/root/.cache/...``, ``/home/...``, ``C:\\...``).
    URLs (``rtsp://host/a``), ``data:`` URIs and relative paths are left alone."""
    if not text or text.startswith("data:"):
        return text
    return _LOCAL_PATH.sub(lambda m: m.group(1) or "", text)


def public_uri(uri: Any) -> str:
    """A source URI as the report shows it: URLs without credentials, a local file or folder by its name."""
    from ..config import redact_url

    s = str(uri)
    if "://" in s:
        return redact_url(s)
    if s.startswith(("data:", "media:")) or s.isdigit():
        return s
    return Path(s).name or s


def public_path(path: Any, parts: int = 3) -> str:
    """A local file named by its last ``parts`` path components (``TUD-Campus/gt/gt.txt``)."""
    p = Path(str(path))
    return "/".join(p.parts[-parts:]) if p.parts else str(path)


def clock(seconds: float | None) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` from one hour) for a time in the footage."""
    if seconds is None:
        return "-"
    sec = max(0.0, float(seconds))
    h, rem = divmod(sec, 3600)
    m, sx = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{sx:04.1f}" if h >= 1 else f"{int(m)}:{sx:04.1f}"


# ------------------------------------------------------------------------------------- acceptance
def judge_acceptance(items: Sequence[Any], metrics: Mapping[str, float], t=None) -> list[dict[str, Any]]:
    """Each acceptance item -> {name, category, criterion, measured, status: pass|fail|no_data|manual, note, hint}.

    ``note`` is for the customer (shown in the report); ``hint`` tells the engineer what is missing (a metric
    name typo, no ground truth, no bench run): logged and kept in the metrics JSON, not printed in the report."""
    rows = []
    for it in items:
        it = it if isinstance(it, Mapping) else it.model_dump()
        row = {"name": it["name"], "category": it.get("category", "function"), "criterion": "", "measured": None,
               "status": "manual", "note": "", "hint": ""}
        metric = it.get("metric")
        if metric:
            thr = it.get("threshold")
            row["criterion"] = f"{metric} {it.get('op', '>=')} {thr:g}" if thr is not None else metric
            if thr is None:
                row.update(status="no_data", note=t("no_threshold") if t else "no threshold agreed",
                           hint=f"acceptance item {it['name']!r}: no threshold set in the config")
            elif metric not in metrics:
                near = difflib.get_close_matches(metric, list(metrics), n=3)
                row.update(status="no_data", note=t("not_measured") if t else "not measured in this PoC",
                           hint=(f"acceptance item {it['name']!r}: no measurement {metric!r}"
                                 + (f"; did you mean {', '.join(near)}?" if near else
                                    "; pass ground truth (--gt) or run pockit bench")))
            else:
                val = metrics[metric]
                row["measured"] = val
                row["status"] = "pass" if OPS[it.get("op", ">=")](val, float(thr)) else "fail"
        elif it.get("passed") is not None:
            row["status"] = "pass" if it["passed"] else "fail"
            row["note"] = t("confirmed") if t else "confirmed by the engineer"
        rows.append(row)
    return rows


def acceptance_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Passed / failed / still to confirm (an engineer's check not yet made, or no measurement)."""
    st = [r["status"] for r in rows]
    return {"pass": st.count("pass"), "fail": st.count("fail"),
            "to_confirm": st.count("manual") + st.count("no_data"), "total": len(st)}


# ------------------------------------------------------------------------------------------ run record
def load_run_record(run_dir: str | Path, events: Sequence[Event] | None = None) -> tuple[dict[str, Any], str | None]:
    """``(run.json contents, None)`` for a run that finished; for one that did not (killed: no run.json,
    or run.json still says ``status: running``) a record rebuilt from config.yaml, events.jsonl and
    tracks/*.txt, and a short reason. ReportError when the folder is not a run at all. ``events``: the
    run's events when already read."""
    run_dir = Path(run_dir)
    rj = run_dir / "run.json"
    run: dict[str, Any] = _read_json(rj, "run.json") if rj.exists() else {}
    if rj.exists() and run.get("status") not in ("running", "started"):
        return run, None
    cfg_path = run_dir / "config.yaml"
    if not rj.exists() and not cfg_path.exists():
        raise ReportError(f"{run_dir} is not a pockit run directory: neither run.json nor config.yaml is there. "
                          "Run `pockit run CONFIG` first, or point at the folder it wrote (runs/<name>-<time>/)")
    why = "run.json says it is still running" if rj.exists() else "no run.json: the run was killed or crashed"
    from ..config import load_config, parse_config

    cfg = load_config(cfg_path) if cfg_path.exists() else parse_config(run.get("config") or {}, str(rj))
    if events is None:
        events_path = run_dir / "events.jsonl"
        events = read_events(events_path) if events_path.exists() else []
    per_rule: dict[str, int] = {}
    for e in events:
        if e.end is None:
            per_rule[e.rule] = per_rule.get(e.rule, 0) + 1
    sources: dict[str, Any] = {}
    for s in cfg.sources:
        info = dict((run.get("sources") or {}).get(s.id) or {})
        info.setdefault("uri", str(s.uri))
        frames = [e.frame + 1 for e in events if e.source == s.id and e.frame is not None and e.frame >= 0]
        times = [float(e.time) for e in events if e.source == s.id]
        tp = run_dir / "tracks" / f"{s.id}.txt"
        tracks = 0
        if tp.exists() and tp.stat().st_size:
            try:
                arr = load_mot_array(tp)
            except ValueError:  # a torn last row: read the complete ones
                arr = _complete_mot_rows(tp)
            if len(arr):
                frames.append(int(arr[:, 0].max()))
                tracks = len(np.unique(arr[:, 1]))
        # run.json written at the start of a run holds zeros: what the files show is at least as much
        info["frames"] = max(int(info.get("frames") or 0), max(frames, default=0))
        info["tracks"] = max(int(info.get("tracks") or 0), tracks)
        fps = info.get("fps") or s.fps
        if fps and frames:  # the last frame seen (tracks or an event) dates the analysed span
            times.append((max(frames) - 1) / float(fps))
            info.setdefault("fps", float(fps))
        if times and not info.get("duration_s"):
            info["duration_s"] = max(times)  # at least this much footage was analysed
        info.setdefault("error", None)
        sources[s.id] = info
    rec: dict[str, Any] = {"fps": None, "wall_s": None, "timings": {}, "model": {}, "versions": {}}
    rec.update(run)
    rec.update(status="unfinished", config=rec.get("config") or cfg.redacted_dump(),
               sources=sources, frames=sum(int(v.get("frames") or 0) for v in sources.values()),
               events_per_rule=rec.get("events_per_rule") or per_rule,
               errors=list(rec.get("errors") or []) + [f"run did not finish cleanly: {why}"])
    return rec, why


def _complete_mot_rows(path: Path) -> np.ndarray:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            vals = [float(x) for x in line.split(",")]
        except ValueError:
            continue
        if len(vals) >= 6:
            rows.append((vals + [-1.0] * 10)[:10])
    return np.asarray(rows, float).reshape(-1, 10)


# ------------------------------------------------------------------------------------------ collect
def box_id(run_dir: Path, run: Mapping[str, Any], events: Sequence[Event]) -> str:
    """The edge box a run came from: run.json ``box``, else the ``box`` its events carry (``extra.box``, the
    most frequent), else the run directory's name."""
    if run.get("box"):
        return str(run["box"])
    boxes = Counter(str(e.extra["box"]) for e in events if isinstance(e.extra, Mapping) and e.extra.get("box"))
    if boxes:
        return boxes.most_common(1)[0][0]
    return run_dir.name


def collect(run_dir: str | Path, gt: Any = None, lang: str = "en", *, multi: bool = False) -> dict[str, Any]:
    """Everything the report shows for one run, as plain data plus plotly figures (``ctx['figures']``).

    multi: the run is one of several in a site report (ground-truth events of other runs' sources are
    left out instead of counting as missed)."""
    t = translator(lang)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"run directory not found: {run_dir} (the folder `pockit run` printed)")
    rj = run_dir / "run.json"
    events_path = run_dir / "events.jsonl"
    raw_events = read_events(events_path) if events_path.exists() else []
    run, unfinished = load_run_record(run_dir, raw_events)
    if not run.get("frames"):
        errs = "; ".join(run.get("errors") or []) or "no frames decoded"
        raise ReportError(f"the run in {run_dir} processed no frames ({errs}): nothing to report. "
                          "Check the source URIs and re-run")
    from ..config import load_config, parse_config

    cfg_path = run_dir / "config.yaml"
    cfg = load_config(cfg_path) if cfg_path.exists() else parse_config(run.get("config") or {}, str(rj))
    sources = run.get("sources") or {}
    source_ids = [s.id for s in cfg.sources]
    gtd = parse_gt(gt, source_ids)
    from ..evaluate.events import fold_episodes

    events = fold_episodes(raw_events)  # alarms, not closing records
    ctx: dict[str, Any] = {"t": t, "lang": lang, "run": run, "cfg": cfg, "run_dir": run_dir.name, "fmt": _fmt,
                           "generated": datetime.now().strftime("%Y-%m-%d %H:%M"), "warnings": [], "figures": {},
                           "multi": multi, "engineer_notes": [], "box": box_id(run_dir, run, raw_events)}
    ctx["unfinished"] = unfinished
    if unfinished:
        ctx["warnings"].append(t("unfinished").format(why=unfinished))
    if getattr(raw_events, "skipped", None):
        ctx["warnings"].append(t("torn_events").format(file=events_path.name, n=len(raw_events.skipped)))
    metrics: dict[str, Any] = {}
    labels = {k: t(k) for k in ("recall", "precision", "pr_title", "cm_title", "predicted", "actual", "background",
                                "hota_title", "alpha", "counts_title", "latency_title", "latency_axis", "tp", "fp",
                                "fn")}

    # scope: sources with zones/lines drawn on their reference frame
    ctx["sources"] = []
    for s in cfg.sources:
        info = sources.get(s.id, {})
        ref = run_dir / "reference" / f"{s.id}.jpg"
        uri = None
        if ref.exists():
            import cv2

            img = cv2.imread(str(ref))
            if img is not None:
                uri = _img_data_uri(image=_draw_rules(img, cfg, s.id))
        ctx["sources"].append({"id": s.id, "uri": public_uri(info.get("uri", s.uri)), "frames": info.get("frames"),
                               "fps": info.get("fps"), "size": f"{info.get('width')}x{info.get('height')}"
                               if info.get("width") else "-", "duration": info.get("duration_s"),
                               "tracks": info.get("tracks"), "error": info.get("error"), "image": uri,
                               "stats": info.get("stats") or {}})
    ctx["rules"] = [{"name": r.name, "type": r.type, "params": _rule_params(r),
                     "alarms": (run.get("events_per_rule") or {}).get(r.name, 0)} for r in cfg.rules]
    model = run.get("model") or {}
    ctx["model"] = {"path": public_uri(model.get("path") or cfg.model.path), "backend": model.get("backend"),
                    "imgsz": model.get("imgsz") or cfg.model.imgsz, "providers": model.get("providers"),
                    "sha256": (model.get("sha256") or "")[:16], "conf": cfg.model.conf,
                    "classes": model.get("class_names")}
    ctx["finetune"] = finetune_rows(model.get("path"))
    from ..evaluate.events import analysed_spans

    ctx["spans"] = analysed_spans(run)  # ground truth is scored on these only
    hours = sum(sp.seconds for sp in ctx["spans"].values()) / 3600 or None
    ctx["hours"] = hours
    from ..evaluate.events import MIN_RATE_SECONDS, human_duration

    ctx["footage"] = human_duration(hours * 3600, lang) if hours else None
    ctx["rates_shown"] = bool(hours and hours * 3600 >= MIN_RATE_SECONDS)
    ctx["min_rate"] = human_duration(MIN_RATE_SECONDS, lang)
    ctx["events_total"] = len(events)
    if not events:
        ctx["warnings"].append(t("no_events"))

    # detection + tracking per source with MOT ground truth
    ctx["detection"], ctx["tracking"] = [], []
    for sid, gpath in gtd.tracks.items():
        tpath = run_dir / "tracks" / f"{sid}.txt"
        if not tpath.exists():
            raise ReportError(f"ground truth was given for source {sid!r} but the run has no {tpath}: "
                              "enable outputs.tracks in the config and re-run")
        det, trk = _accuracy_for_source(sid, gpath, tpath, cfg, labels, ctx)
        ctx["detection"].append(det)
        ctx["tracking"].append(trk)
        metrics.setdefault("detection", {})[sid] = det["numbers"]
        metrics.setdefault("tracking", {})[sid] = trk["numbers"]
    if len(ctx["detection"]) == 1:
        metrics["detection"].update(ctx["detection"][0]["numbers"])
        metrics["tracking"].update(ctx["tracking"][0]["numbers"])

    # events
    ctx["event_eval"] = _events_section(events, gtd, cfg, run_dir, run, hours, labels, ctx, metrics)

    # performance
    ctx["perf"] = _perf_section(run, run_dir, t, ctx, metrics)

    # acceptance and limitations
    flat = _flatten(metrics)
    ctx["metrics"] = flat
    ctx["acceptance"] = judge_acceptance(cfg.acceptance, flat, t)
    ctx["acceptance_counts"] = acceptance_counts(ctx["acceptance"])
    ctx["engineer_notes"] += [a["hint"] for a in ctx["acceptance"] if a["hint"]]
    footage = ", ".join(f"{s['id']}: {_fmt(s['duration'], 1)} s" for s in ctx["sources"])
    host = ctx["perf"].get("host") or t("host_unknown")
    ctx["limitations"] = [x.format(footage=footage, host=host) for x in LIMITATIONS[lang]]
    ctx["alarms"] = _alarm_rows(events, run_dir, ctx)
    return ctx


MAX_CLIPS_BYTES = 64 * 1024 * 1024  # all alarm clips of one report together (the rest are named, not embedded)


def _find_clip(e: Event, run_dir: Path) -> Path | None:
    """The clip of an alarm: the event's ``clip`` field, else ``clips/<event id>.mp4`` (or ``.webm``)."""
    cands = [run_dir / e.clip] if e.clip else []
    cands += [run_dir / "clips" / f"{e.id}{ext}" for ext in (".mp4", ".webm")]
    return next((c for c in cands if c.is_file()), None)


def _alarm_rows(events: Sequence[Event], run_dir: Path, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Every alarm of the run, in time order per camera: id, time, rule, camera, box, snapshot thumbnail,
    clip (a data URI within the size limits), verdict ("tp" | "fp" | None without ground truth)."""
    verdicts = ctx["event_eval"].get("verdicts") or {}
    rows = []
    for e in sorted(events, key=lambda e: (str(e.source), float(e.time), e.rule)):
        box = str(e.extra["box"]) if isinstance(e.extra, Mapping) and e.extra.get("box") else ctx["box"]
        clip = _find_clip(e, run_dir)
        rows.append({"id": e.id, "time": float(e.time), "clock": clock(e.time), "rule": e.rule, "type": e.type,
                     "source": str(e.source), "box": box, "track": e.track_id, "class": e.class_name,
                     "direction": e.direction, "verdict": verdicts.get(e.id),
                     "thumb": _img_data_uri(run_dir / e.snapshot, max_w=240) if e.snapshot else None,
                     "clip_path": clip, "clip": None, "clip_note": None})
    return rows


def _draw_rules(img: np.ndarray, cfg, source_id: str) -> np.ndarray:
    try:
        from ..rules import RuleEngine
        from ..sinks import annotate

        h, w = img.shape[:2]
        rules = [r for r in cfg.rules if not r.sources or source_id in r.sources]
        engine = RuleEngine(rules, source_id=source_id, frame_size=(w, h), class_names={})
        return annotate(img, None, engine=engine)
    except Exception as e:  # noqa: BLE001 - drawing is illustrative: keep the plain frame, say why
        log.warning("could not draw the rules on %s's reference frame: %s", source_id, e)
        return img


def _rule_params(r) -> str:
    skip = {"name", "type", "zone", "line", "fence", "enabled", "normalized", "anchor", "region"}
    d = r.model_dump(exclude_none=True)
    parts = [f"{k}={v}" for k, v in d.items() if k not in skip and v not in ([], {}, 0, 0.0)]
    return ", ".join(parts)


def _accuracy_for_source(sid, gpath, tpath, cfg, labels, ctx):
    from ..core import read_mot
    from ..evaluate.detection import evaluate_detections
    from ..evaluate.io import collapse_classes
    from ..evaluate.tracking import evaluate_tracks

    G = load_mot_array(gpath)
    P = load_mot_array(tpath)
    stride = _frame_stride(P[:, 0]) if len(P) else 1
    try:
        if stride > 1:
            keep = lambda a: a[(a[:, 0] - P[0, 0]) % stride == 0]
            G, P = keep(G), keep(P)
            ctx["warnings"].append(f"{sid}: the run analysed every {stride}th frame; ground truth is compared "
                                   "on those frames only")
        span = ctx["spans"].get(sid)
        rng = (span.first_frame, span.last_frame) if span is not None and span.frames else None
        if rng is not None and (G[:, 0].min() < rng[0] or G[:, 0].max() > rng[1]):
            n_out = int(((G[:, 0] < rng[0]) | (G[:, 0] > rng[1])).sum())
            ctx["warnings"].append(ctx["t"]("gt_span_boxes").format(span=span.label(), n=n_out))
        trk = evaluate_tracks(G, P, num_frames=None, frames=rng)
        if rng is not None:
            G = G[(G[:, 0] >= rng[0]) & (G[:, 0] <= rng[1])]
            P = P[(P[:, 0] >= rng[0]) & (P[:, 0] <= rng[1])]
    except EvaluationError as e:
        raise ReportError(f"source {sid!r}: {e} (gt {gpath}, tracks {tpath})") from None
    ctx["warnings"] += [f"{sid}: {w}" for w in trk.warnings if not w.startswith("scored on frames")]
    gt_boxes = read_mot(gpath, gt=True)
    pr_boxes = read_mot(tpath)
    frames = {int(f) for f in G[:, 0]} | {int(f) for f in P[:, 0]}
    gt_boxes = {k: v for k, v in gt_boxes.items() if k in frames}
    det = evaluate_detections(collapse_classes(gt_boxes, "person"), collapse_classes(pr_boxes, "person"),
                              ["person"], conf=cfg.model.conf)
    ctx["warnings"] += [f"{sid}: {w}" for w in det.warnings]
    figs = det.figures(labels)
    ctx["figures"][f"pr-{sid}"] = figs["pr"]
    ctx["figures"][f"cm-{sid}"] = figs["confusion"]
    ctx["figures"][f"hota-{sid}"] = trk.figures(labels)["hota"]
    dnum = {"map50": det.map50, "map50_95": det.map50_95, **{k: v for k, v in det.totals.items()}}
    return ({"source": sid, "gt": public_path(gpath), "numbers": dnum, "rows": det.per_class, "images": det.images,
             "gt_boxes": det.gt_boxes},
            {"source": sid, "gt": public_path(gpath), "numbers": trk.summary, "frames": trk.frames, "gt_ids": trk.gt_ids,
             "pred_ids": trk.pred_ids})


def _events_section(events, gtd, cfg, run_dir, run, hours, labels, ctx, metrics):
    from ..evaluate.events import evaluate_events, fold_episodes, gt_events_from_tracks

    gt_events: list[Event] | None = None
    derived = False
    out: dict[str, Any] = {"gt_outside": 0, "note": None}
    if gtd.events is not None:
        gt_events = read_events(gtd.events)
        if ctx.get("multi"):  # one file for the whole site: this run's cameras only
            ids = {s.id for s in cfg.sources}
            gt_events = [e for e in gt_events if str(e.source) in ids]
    elif gtd.tracks and cfg.rules:
        try:
            gt_events = []
            for sid, gpath in gtd.tracks.items():
                info = (run.get("sources") or {}).get(sid, {})
                fps = info.get("native_fps") or info.get("fps")  # ground-truth frames count the source's own
                size = (info["width"], info["height"]) if info.get("width") else None
                gt_events += gt_events_from_tracks(cfg, gpath, fps, sid, span=ctx["spans"].get(sid), frame_size=size)
            derived = True
        except EvaluationError as e:
            gt_events = None
            ctx["warnings"].append(f"event ground truth not derived from tracks: {e}")
    per_rule_snap = {}
    out.update({"derived": derived, "rows": [], "evaluated": False, "tolerance": 1.0})
    rep = None
    rule_names = [r.name for r in cfg.rules] or None
    out["span"] = "; ".join(sp.label() for sp in ctx["spans"].values())
    if gt_events is not None:
        from ..evaluate.events import restrict_to_spans

        folded = [e for e in fold_episodes(gt_events) if rule_names is None or e.rule in rule_names]
        inside, outside = restrict_to_spans(folded, ctx["spans"])
        out["gt_outside"] += len(outside)
        if out["gt_outside"]:
            out["note"] = ctx["t"]("gt_span_events").format(span=out["span"], inside=len(inside),
                                                            outside=out["gt_outside"])
            ctx["warnings"].append(out["note"])
        if inside:
            rep = evaluate_events(events, gt_events, tolerance=1.0, hours=hours, rules=rule_names,
                                  spans=ctx["spans"])
            ctx["warnings"] += [w for w in rep.warnings if "outside what the run analysed" not in w]
        elif not out["gt_outside"]:
            ctx["warnings"].append("the ground truth holds no event for these rules: event accuracy not measured")
    if rep is not None:
        out.update(evaluated=True, rows=rep.per_rule, totals=rep.totals, tolerance=rep.tolerance,
                   verdicts={**{p.id: "tp" for p, _ in rep.matches}, **{e.id: "fp" for e in rep.false_alarms}},
                   missed_all=list(rep.missed))
        metrics["events"] = {r["rule"]: {k: v for k, v in r.items() if isinstance(v, (int, float))}
                             for r in rep.per_rule}
        metrics["events"]["all"] = {k: v for k, v in rep.totals.items() if isinstance(v, (int, float))}
        figs = rep.figures(labels)
        ctx["figures"]["ev-counts"] = figs["counts"]
        if rep.matches:
            ctx["figures"]["ev-latency"] = figs["latency"]
        for r in cfg.rules:
            tps = [p for p, _ in rep.matches if p.rule == r.name]
            fas = [e for e in rep.false_alarms if e.rule == r.name]
            per_rule_snap[r.name] = {"true": _snaps(tps, run_dir), "false": _snaps(fas, run_dir),
                                     "missed": [e for e in rep.missed if e.rule == r.name][:5]}
    else:
        counts: dict[str, int] = {}
        for e in events:
            counts[e.rule] = counts.get(e.rule, 0) + 1
        from ..evaluate.events import per_hour

        out["rows"] = [{"rule": r.name, "pred": counts.get(r.name, 0),
                        "per_hour": per_hour(counts.get(r.name, 0), hours)} for r in cfg.rules]
        metrics["events"] = {r["rule"]: {"alarms": r["pred"], "alarms_per_hour": r["per_hour"]}
                             for r in out["rows"]}
        for r in cfg.rules:
            per_rule_snap[r.name] = {"examples": _snaps([e for e in events if e.rule == r.name], run_dir)}
    out["snapshots"] = per_rule_snap
    return out


def _snaps(evs: Sequence[Event], run_dir: Path, n: int = 3) -> list[dict[str, Any]]:
    out = []
    for e in evs:
        if len(out) >= n:
            break
        uri = _img_data_uri(run_dir / e.snapshot, max_w=480) if e.snapshot else None
        out.append({"time": e.time, "source": e.source, "track": e.track_id, "image": uri, "id": e.id,
                    "label": f"{e.source} t={e.time:.2f}s" + (f" #{e.track_id}" if e.track_id is not None else "")
                    + (f" {e.class_name}" if e.class_name else "")
                    + (f" {e.direction}" if e.direction else "")})
    return out


def _perf_section(run, run_dir, t, ctx, metrics):
    import plotly.graph_objects as go

    tim = run.get("timings") or {}
    versions = {k: v for k, v in (run.get("versions") or {}).items() if k != "platform"}
    perf = {"fps": run.get("fps"), "frames": run.get("frames"), "wall_s": run.get("wall_s"),
            "stages": [{"stage": k, **v} for k, v in tim.items()],
            "versions": [(k, t("not_recorded") if v in (None, "", "?") else str(v)) for k, v in versions.items()],
            "bench_warnings": []}
    metrics["perf"] = {"fps": run.get("fps"), "frames": run.get("frames"), "wall_s": run.get("wall_s"),
                       **{k: {kk: vv for kk, vv in v.items() if kk.endswith("_ms")} for k, v in tim.items()}}
    if tim:
        fig = go.Figure()
        for q in ("mean_ms", "p50_ms", "p95_ms"):
            fig.add_trace(go.Bar(x=list(tim), y=[v.get(q) for v in tim.values()], name=q.replace("_ms", "")))
        fig.update_layout(barmode="group", height=320, title=t("stage_title"), margin={"t": 50, "b": 40})
        ctx["figures"]["perf-stages"] = fig
    bj = run_dir / "bench.json"
    perf["bench"] = None
    b = _read_json(bj, "bench.json") if bj.exists() else None
    host = (b or {}).get("host") or {}
    rows = machine_rows(run, host or None)
    if rows is None and run.get("versions", {}).get("platform"):
        rows = [("machine_os", str(run["versions"]["platform"]))]
    perf["machine"] = rows or []
    m = run.get("machine") or host
    gpus = gpu_text(m.get("gpus"))
    perf["host"] = " + ".join(x for x in (m.get("cpu") or m.get("name"), gpus) if x) or None
    if b is not None:
        cases = [{"batch": c.get("batch"), "streams": c.get("streams"), "fps": c.get("fps"),
                  "fps_per_stream": c.get("fps_per_stream")} for c in b.get("cases") or []]
        perf["bench_warnings"] = _bench_mismatch(b, ctx, t)
        ctx["warnings"] += perf["bench_warnings"]
        sizing = []
        sz = b.get("sizing") or {}
        if sz and "error" not in sz:
            res = sz.get("target_resolution") or ["?", "?"]
            n = sz.get("streams")
            below = not n or n <= 0
            sizing.append({"device": t("host") + ": " + str(sz.get("measured_on") or perf["host"] or "-"),
                           "kind": t("below_one") if below else t("measured"), "state": "below" if below else "measured",
                           "streams": "< 1" if below else n, "batch": sz.get("batch"),
                           "limiting": f"{sz.get('limiting_stage')} ({sz.get('limiting_resource')})",
                           "conditions": f"{res[0]}x{res[1]} @ {_fmt(sz.get('target_fps'))} fps"
                                         + ("; " + t("below_one_note").format(
                                             fps=_fmt(sz.get("max_fps_one_stream"), 1), target=_fmt(sz.get("target_fps")))
                                            if below else "")})
            metrics["bench"] = {"streams": n or 0, "max_fps_one_stream": sz.get("max_fps_one_stream")}
        elif sz:
            ctx["warnings"].append(f"bench sizing: {sz['error']}")
            sizing.append({"device": t("host") + ": " + str(perf["host"] or ""), "kind": t("not_sized"),
                           "state": "missing", "streams": "-", "batch": "-", "limiting": "-", "conditions": sz["error"]})
        estimates = b.get("estimates") or {}
        for key in b.get("targets") or []:  # devices asked for (--target) that bench.json has no entry for
            if key not in estimates:
                estimates[key] = {"error": t("estimate_absent")}
        for key, e in estimates.items():
            if "error" in e:  # a requested estimate that could not be made stays in the table, with why
                ctx["warnings"].append(f"estimate {key}: {e['error']}")
                sizing.append({"device": e.get("target_name", key), "kind": t("estimate_missing"), "state": "missing",
                               "streams": "-", "batch": "-", "limiting": "-", "conditions": e["error"]})
                continue
            res = e.get("target_resolution") or ["?", "?"]
            sizing.append({"device": e.get("target_name", key), "kind": t("estimate"), "state": "estimate",
                           "streams": e.get("streams"), "batch": e.get("batch"),
                           "limiting": f"{e.get('limiting_stage')} ({e.get('limiting_resource')})",
                           "conditions": f"{res[0]}x{res[1]} @ {_fmt(e.get('target_fps'))} fps; "
                                         + "; ".join(e.get("sources") or [])})
            metrics.setdefault("bench", {}).setdefault("estimates", {})[key] = {"streams": e.get("streams")}
        if cases:
            metrics.setdefault("bench", {})["fps"] = max((c["fps"] or 0) for c in cases)
        perf["bench"] = {"cases": cases, "sizing": sizing, "notes": b.get("notes") or []}
    return perf


def _bench_mismatch(b: Mapping[str, Any], ctx: Mapping[str, Any], t) -> list[str]:
    """Warnings when bench.json was measured with another config or at another resolution than this run."""
    out = []
    cfg_name = getattr(ctx.get("cfg"), "name", None)
    if b.get("config") and cfg_name and b["config"] != cfg_name:
        out.append(t("bench_other_config").format(bench=b["config"], run=cfg_name))
    bench_res = {tuple(c["resolution"]) for c in b.get("cases") or [] if c.get("resolution")}
    run_res = {tuple((s.get("size") or "").split("x")) for s in ctx.get("sources") or [] if s.get("size") != "-"}
    run_res = {(int(w), int(h)) for w, h in run_res if w.isdigit() and h.isdigit()}
    if bench_res and run_res and not (bench_res & run_res):
        bench_txt, run_txt = (", ".join(f"{w}x{h}" for w, h in sorted(rs)) for rs in (bench_res, run_res))
        out.append(t("bench_other_res").format(bench=bench_txt, run=run_txt))
    return out


# ------------------------------------------------------------------------------------------ site
def _is_run_dir(p: Path) -> bool:
    return (p / "run.json").is_file() or (p / "config.yaml").is_file()


def is_collected(p: Path) -> bool:
    """A folder written by ``pockit collect`` (the events of several boxes, without their run directories)."""
    return (p / "events.jsonl").is_file() and ((p / "collect.json").is_file() or (p / "journal.jsonl").is_file())


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """The folders to report on: each path that is a run directory or a ``pockit collect`` folder, or, for a
    folder that is neither (run directories copied from several boxes), the runs directly inside it or one
    level deeper, in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ReportError(f"run directory not found: {p} (the folder `pockit run` printed)")
        if _is_run_dir(p) or is_collected(p):
            out.append(p)
            continue
        found = sorted(d for d in p.iterdir() if d.is_dir() and _is_run_dir(d))
        found += sorted(dd for d in p.iterdir() if d.is_dir() and not _is_run_dir(d)
                        for dd in d.iterdir() if dd.is_dir() and _is_run_dir(dd))
        if not found:
            raise ReportError(f"{p} is not a pockit run directory: neither run.json nor config.yaml is there, nor "
                              "in a folder inside it, and it is not a `pockit collect` folder (events.jsonl with "
                              "collect.json). Run `pockit run CONFIG` first, or point at the folder it wrote "
                              "(runs/<name>-<time>/)")
        out += found
    seen: set[Path] = set()
    uniq = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            uniq.append(p)
    return uniq


def _gt_for_run(gt: Any, box: str, source_ids: Sequence[str], multi: bool) -> Any:
    """The ground truth entries meant for one run of several: ``BOX/SOURCE=PATH`` for that box,
    ``SOURCE=PATH`` for a source it has, every events ``.jsonl`` (filtered to its cameras later)."""
    if not multi or gt is None:
        return gt
    items = [f"{k}={v}" for k, v in gt.items()] if isinstance(gt, Mapping) else \
        [str(g) for g in ([gt] if isinstance(gt, (str, Path)) else gt)]
    out = []
    for s in items:
        if "=" in s and not Path(s).exists():
            k, v = s.split("=", 1)
            if "/" in k:
                b, sid = k.split("/", 1)
                if b == box and sid in source_ids:
                    out.append(f"{sid}={v}")
            elif k in source_ids:
                out.append(s)
        elif Path(s).suffix.lower() == ".jsonl":
            out.append(s)
        else:
            raise ReportError(f"ground truth {s}: with several runs, say which camera it belongs to: "
                              "SOURCE=PATH or BOX/SOURCE=PATH (an events .jsonl applies to every run)")
    return out or None


def _check_gt_used(gt: Any, boxes: Sequence[dict[str, Any]]) -> None:
    items = [f"{k}={v}" for k, v in gt.items()] if isinstance(gt, Mapping) else \
        [str(g) for g in ([gt] if isinstance(gt, (str, Path)) else gt)]
    for s in items:
        if "=" not in s or Path(s).exists():
            continue
        k = s.split("=", 1)[0]
        b, sid = k.split("/", 1) if "/" in k else (None, k)
        if not any((b is None or c["box"] == b) and sid in [x["id"] for x in c["sources"]] for c in boxes):
            cams = sorted({f"{c['box']}/{x['id']}" for c in boxes for x in c["sources"]})
            raise ReportError(f"ground truth {s} names camera {k!r}, which none of the runs has; cameras: {cams}")


def _timeline(alarms: Sequence[dict[str, Any]], missed: Sequence[dict[str, Any]], t) -> Any:
    """Every alarm on one time axis: a row per camera, a colour per rule; false alarms as crosses and
    missed ground-truth events as open circles when ground truth was given."""
    import plotly.graph_objects as go

    cams = sorted({a["camera"] for a in alarms} | {m["camera"] for m in missed})
    longest = max([a["time"] for a in alarms] + [m["time"] for m in missed] + [0.0])
    unit = 60.0 if longest > 600 else 1.0  # minutes for footage longer than 10 min
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    rules = sorted({a["rule"] for a in alarms})
    for i, rule in enumerate(rules):
        rows = [a for a in alarms if a["rule"] == rule]
        fig.add_trace(go.Scatter(
            x=[a["time"] / unit for a in rows], y=[a["camera"] for a in rows], mode="markers", name=rule,
            marker={"size": 11, "color": palette[i % len(palette)], "line": {"width": 1, "color": "#333"},
                    "symbol": ["x" if a["verdict"] == "fp" else "circle" for a in rows]},
            customdata=[[a["id"], a["clock"], t("v_" + a["verdict"]) if a["verdict"] else ""] for a in rows],
            hovertemplate="%{customdata[0]} · " + rule + "<br>%{y} · %{customdata[1]}<br>%{customdata[2]}"
                          "<extra></extra>"))
    if missed:
        fig.add_trace(go.Scatter(
            x=[m["time"] / unit for m in missed], y=[m["camera"] for m in missed], mode="markers", name=t("missed"),
            marker={"size": 11, "symbol": "circle-open", "color": "#d62728", "line": {"width": 2}},
            customdata=[[m["rule"], m["clock"]] for m in missed],
            hovertemplate="%{customdata[0]}<br>%{y} · %{customdata[1]}<extra></extra>"))
    fig.update_layout(height=170 + 36 * len(cams), title={"text": t("timeline_title"), "y": 0.97, "yanchor": "top"},
                      margin={"t": 70, "b": 45, "l": 10, "r": 10},
                      xaxis_title=t("timeline_axis" if unit == 1 else "timeline_axis_min"),
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
                      yaxis={"categoryorder": "array", "categoryarray": cams[::-1], "automargin": True})
    return fig


def _collected_events(folders: Sequence[Path], skip_boxes: set[str]) -> tuple[list[tuple[Path, Event]], list[str]]:
    """The alarms of ``pockit collect`` folders, except those of boxes whose run directory is in the report
    (the run directory has them too, with its frames and tracks): (folder, event) pairs and the boxes."""
    from ..evaluate.events import fold_episodes

    out, boxes, seen = [], [], set()
    for f in folders:
        for e in fold_episodes(read_events(f / "events.jsonl")):
            box = str((e.extra or {}).get("box") or "-")
            if box in skip_boxes or (box, e.id) in seen:
                continue
            seen.add((box, e.id))
            out.append((f, e))
            if box not in boxes:
                boxes.append(box)
    return out, boxes


def _collected_alarm(folder: Path, e: Event) -> dict[str, Any]:
    box = str((e.extra or {}).get("box") or "-")
    raised = (e.extra or {}).get("raised_at")
    when = datetime.fromtimestamp(float(raised)).strftime("%Y-%m-%d %H:%M:%S") \
        if isinstance(raised, (int, float)) else None
    return {"id": e.id, "time": float(e.time), "clock": clock(e.time), "when": when, "rule": e.rule, "type": e.type,
            "source": str(e.source), "box": box, "track": e.track_id, "class": e.class_name, "direction": e.direction,
            "verdict": None, "thumb": _img_data_uri(folder / e.snapshot, max_w=240) if e.snapshot else None,
            "clip_path": None, "clip": None, "clip_note": None}


def collect_site(run_dirs: Sequence[str | Path], gt: Any = None, lang: str = "en",
                 config: str | Path | None = None) -> dict[str, Any]:
    """The report of one or several runs (one per box), folders of copied runs, or ``pockit collect`` folders:
    cover block, executive summary, every alarm on a timeline and in a table, site totals per box and camera,
    and each run's sections. ``config``: a PoC YAML whose ``name``, ``description``, ``poc`` and ``acceptance``
    are used for the cover and the checklist (needed for a collect folder alone, which has no config)."""
    t = translator(lang)
    inputs = find_runs(run_dirs)
    dirs = [d for d in inputs if _is_run_dir(d)]
    pre = []
    for d in dirs:  # the box id is known before collect() only from run.json / events: for the gt selection
        pre_run = _read_json(d / "run.json", "run.json") if (d / "run.json").is_file() else {}
        pre_events = read_events(d / "events.jsonl") if (d / "events.jsonl").exists() else []
        pre.append((d, pre_run, box_id(d, pre_run, pre_events)))
    collected, collected_boxes = _collected_events([d for d in inputs if not _is_run_dir(d)],
                                                   {b for _, _, b in pre})
    multi = len(dirs) + len(collected_boxes) > 1
    boxes: list[dict[str, Any]] = []
    for d, pre_run, box in pre:
        src_ids = [s.get("id") for s in ((pre_run.get("config") or {}).get("sources") or [])] or None
        if src_ids is None and (d / "config.yaml").is_file():
            from ..config import load_config

            src_ids = [s.id for s in load_config(d / "config.yaml").sources]
        boxes.append(collect(d, gt=_gt_for_run(gt, box, src_ids or [], multi), lang=lang, multi=multi))
    if multi and gt is not None:
        _check_gt_used(gt, boxes)
    labels = [c["box"] for c in boxes]
    for c in boxes:  # two runs of one box (two days, say): tell them apart by their run directory
        c["label"] = c["box"] if labels.count(c["box"]) == 1 else f"{c['box']} ({c['run_dir']})"
    figures: dict[str, Any] = {}
    for i, c in enumerate(boxes):
        c["pfx"] = f"b{i + 1}-" if multi else ""
        c["sec"] = (lambda name, c=c: f"{c['pfx']}{name}")
        figures.update({f"{c['pfx']}{k}": v for k, v in c["figures"].items()})
    first = boxes[0] if boxes else None
    from ..config import PocInfo, load_config

    cfg = load_config(config) if config else first["cfg"] if first else None
    site: dict[str, Any] = {"t": t, "lang": lang, "fmt": _fmt, "multi": multi, "boxes": boxes,
                            "title_name": cfg.name if cfg else Path(inputs[0]).name,
                            "generated": datetime.now().strftime("%Y-%m-%d %H:%M"), "figures": figures,
                            "warnings": [], "engineer_notes": []}
    # cover: the given config's `poc` section, else the first run's that has one; differing ones are named
    poc = cfg.poc if config else next((c["cfg"].poc for c in boxes if c["cfg"].poc.model_dump(exclude_defaults=True)),
                                      cfg.poc if cfg else PocInfo())
    for c in boxes:
        if c["cfg"].poc.model_dump(exclude_defaults=True) and c["cfg"].poc != poc:
            site["engineer_notes"].append(f"run {c['run_dir']}: its config's poc section differs from the one on "
                                          "the cover")
    starts = sorted(str(c["run"].get("started"))[:10] for c in boxes if c["run"].get("started"))
    ends = sorted(str(c["run"].get("finished") or c["run"].get("started"))[:10] for c in boxes
                  if c["run"].get("finished") or c["run"].get("started"))
    site["poc"] = {"customer": poc.customer, "site": poc.site, "scope": poc.scope or (cfg.description if cfg else ""),
                   "start": str(poc.start) if poc.start else (starts[0] if starts else ""),
                   "end": str(poc.end) if poc.end else (ends[-1] if ends else ""),
                   "people": [p.model_dump() for p in poc.people]}
    # alarms of every box, clips embedded up to the report's budget
    alarms, missed = [], []
    budget = MAX_CLIPS_BYTES
    for c in boxes:
        for a in c["alarms"]:
            a["camera"] = f"{a['box']} / {a['source']}" if multi else a["source"]
            a["run_label"] = c["label"]
            p = a.pop("clip_path")
            if p is not None:
                size = p.stat().st_size
                if size > MAX_CLIP_BYTES or size > budget:
                    a["clip_note"] = t("clip_left_out")
                    site["engineer_notes"].append(f"clip {p.name} ({size / 2**20:.1f} MB) left out of the report "
                                                  f"(limits: {MAX_CLIP_BYTES // 2**20} MB a clip, "
                                                  f"{MAX_CLIPS_BYTES // 2**20} MB in all)")
                else:
                    a["clip"] = _video_data_uri(p)
                    budget -= size
            alarms.append(a)
        for e in c["event_eval"].get("missed_all") or []:
            missed.append({"rule": e.rule, "time": float(e.time), "clock": clock(e.time), "source": str(e.source),
                           "camera": f"{c['box']} / {e.source}" if multi else str(e.source)})
    coll_alarms = []
    for folder, e in collected:
        a = _collected_alarm(folder, e)
        a.pop("clip_path")
        a["camera"] = f"{a['box']} / {a['source']}" if multi else a["source"]
        a["run_label"] = a["box"]
        coll_alarms.append(a)
    alarms += coll_alarms
    site["alarms"] = alarms
    site["verdicts_shown"] = any(c["event_eval"]["evaluated"] for c in boxes)
    site["clips_shown"] = any(a["clip"] or a["clip_note"] for a in alarms)
    if alarms or missed:
        figures["timeline"] = _timeline(alarms, missed, t)
    # site totals: per box and per camera
    cams = []
    for c in boxes:
        for s in c["sources"]:
            n = sum(1 for a in c["alarms"] if a["source"] == s["id"])
            cams.append({"box": c["label"], "id": s["id"], "frames": s["frames"], "duration": s["duration"],
                         "tracks": s["tracks"], "alarms": n, "error": s["error"]})
    for b in collected_boxes:  # collected alarms only: what the alarms show
        for cam in sorted({a["source"] for a in coll_alarms if a["box"] == b}):
            cams.append({"box": b, "id": cam, "frames": None, "duration": None, "tracks": None,
                         "alarms": sum(a["box"] == b and a["source"] == cam for a in coll_alarms), "error": None})
    site["cameras"] = cams
    rules_all = sorted({a["rule"] for a in alarms})
    site["rules_all"] = rules_all
    site["box_rows"] = [{"box": c["label"], "cameras": len(c["sources"]), "frames": c["run"].get("frames"),
                         "footage": c["footage"], "alarms": len(c["alarms"]),
                         "per_rule": {r: sum(a["rule"] == r for a in c["alarms"]) for r in rules_all},
                         "machine": c["perf"].get("host")} for c in boxes]
    site["box_rows"] += [{"box": b, "cameras": sum(c["box"] == b for c in cams), "frames": None, "footage": None,
                          "alarms": sum(a["box"] == b for a in coll_alarms),
                          "per_rule": {r: sum(a["box"] == b and a["rule"] == r for a in coll_alarms) for r in rules_all},
                          "machine": None} for b in collected_boxes]
    site["n_boxes"] = len(boxes) + len(collected_boxes)
    site["collected_boxes"] = collected_boxes
    seconds = sum(sp.seconds for c in boxes for sp in c["spans"].values())
    from ..evaluate.events import human_duration

    site["footage"] = human_duration(seconds, lang) if seconds else None
    site["frames"] = sum(int(c["run"].get("frames") or 0) for c in boxes) if boxes else None
    # acceptance: every run's items (a Box column when several); a given config's items judged on the site
    acc = []
    for c in boxes:
        acc += [dict(a, box=c["label"]) for a in c["acceptance"]]
    site_metrics = {"site.alarms": len(alarms), "site.boxes": site["n_boxes"], "site.cameras": len(cams),
                    "site.frames": site["frames"],
                    **{f"site.{r}.alarms": sum(a["rule"] == r for a in alarms) for r in rules_all}}
    if config:
        rows = judge_acceptance(cfg.acceptance, site_metrics, t)
        acc += [dict(a, box=t("site")) for a in rows]
        site["engineer_notes"] += [a["hint"] for a in rows if a["hint"]]
    site["acceptance"] = acc
    site["acceptance_counts"] = acceptance_counts(acc)
    # evaluation totals over the boxes that have ground truth
    ev = [c["event_eval"]["totals"] for c in boxes if c["event_eval"]["evaluated"]]
    if ev:
        tp, fp, fn = (sum(int(x[k]) for x in ev) for k in ("tp", "fp", "fn"))
        site["ev_totals"] = {"tp": tp, "fp": fp, "fn": fn, "precision": tp / (tp + fp) if tp + fp else 0.0,
                             "recall": tp / (tp + fn) if tp + fn else 0.0}
    else:
        site["ev_totals"] = None
    site["summary"] = _executive_summary(site, t)
    for c in boxes:
        site["warnings"] += [f"{c['label']}: {w}" if multi else w for w in c["warnings"]]
        site["engineer_notes"] += c["engineer_notes"]
    site["limitations"] = first["limitations"] if first and not multi else [
        x.format(footage=site["footage"] or "-", host="; ".join(sorted({str(c["perf"].get("host") or t("host_unknown"))
                                                                        for c in boxes})))
        for x in LIMITATIONS[lang]]
    # metrics: one run keeps its flat keys; several get per-box keys and site totals
    if multi or not boxes:
        site["metrics"] = dict(site_metrics)
        for c in boxes:
            site["metrics"].update({f"box.{c['label']}.{k}": v for k, v in c["metrics"].items()})
    else:
        site["metrics"] = first["metrics"]
    return site


def _executive_summary(site: Mapping[str, Any], t) -> list[str]:
    """A few plain sentences: what was analysed, what was raised, how accurate, what passed."""
    poc, out = site["poc"], []
    who = " · ".join(x for x in (poc["customer"], poc["site"]) if x)
    one_day = not poc["end"] or poc["end"] == poc["start"]
    when = t("exec_date" if one_day else "exec_dates").format(start=poc["start"], end=poc["end"]) if poc["start"] \
        else ""
    if who and when:
        out.append(who + t("colon") + when)
    elif who or when:
        out.append(who + t("full_stop") if who else when)
    boxes = site["boxes"]
    if boxes:
        out.append(t("exec_analysed").format(footage=site["footage"] or "-",
                                             cameras=sum(len(c["sources"]) for c in boxes), boxes=len(boxes),
                                             frames=site["frames"]))
    if site["collected_boxes"]:
        out.append(t("exec_collected").format(
            n=sum(a["box"] in site["collected_boxes"] for a in site["alarms"]), boxes=len(site["collected_boxes"]),
            cameras=sum(c["box"] in site["collected_boxes"] for c in site["cameras"])))
    n_rules = len({r.name for c in boxes for r in c["cfg"].rules} | {a["rule"] for a in site["alarms"]})
    out.append(t("exec_alarms").format(n=len(site["alarms"]), rules=n_rules))
    ev = site["ev_totals"]
    if ev:
        out.append(t("exec_accuracy").format(p=_fmt(ev["precision"], 2), r=_fmt(ev["recall"], 2), tp=ev["tp"],
                                             fp=ev["fp"], fn=ev["fn"]))
    else:
        out.append(t("exec_no_gt"))
    ac = site["acceptance_counts"]
    if ac["total"]:
        out.append(t("exec_acceptance").format(total=ac["total"], **{"pass": ac["pass"], "fail": ac["fail"],
                                                                     "to_confirm": ac["to_confirm"]}))
    fps = [c["run"].get("fps") for c in boxes if c["run"].get("fps")]
    if len(boxes) == 1 and fps:
        host = boxes[0]["perf"].get("host")
        out.append(t("exec_perf" if host else "exec_perf_nohost").format(fps=_fmt(fps[0], 1), host=host))
    return out


# ------------------------------------------------------------------------------------------ render
def render_html(ctx: dict[str, Any]) -> str:
    """The report as one HTML string with plotly.js and every image inlined. ``ctx``: :func:`collect_site`
    (or a single run's :func:`collect`, wrapped as a site of one)."""
    import jinja2
    import markupsafe
    import plotly.offline

    if "boxes" not in ctx:
        raise ReportError("render_html needs collect_site(...)'s result")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined,
                             finalize=lambda v: v if not isinstance(v, str) or isinstance(v, markupsafe.Markup)
                             else scrub_paths(v))
    plots = {}
    for key, fig in ctx["figures"].items():
        plots[key] = scrub_paths(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{key}",
                                             config={"displaylogo": False, "responsive": True}))
    return env.get_template("report.html.j2").render(**ctx, plots=plots, plotlyjs=plotly.offline.get_plotlyjs())


def build_report(run_dir: str | Path | Sequence[str | Path], gt: Any = None, out: str | Path | None = "report.html",
                 lang: str = "en", pdf: bool | str | Path = False, config: str | Path | None = None) -> Path:
    """Write the PoC report for ``run_dir`` (one run directory, a folder of collected runs, or a list of
    run directories: one report with a section per box): self-contained HTML (and a PDF beside it when ``pdf``).

    gt: ground truth (see :func:`parse_gt`; with several runs ``SOURCE=PATH`` or ``BOX/SOURCE=PATH``).
    config: a PoC YAML for the cover and a site-level checklist (see :func:`collect_site`).
    Returns the HTML path. ``pdf`` may be True (same name, .pdf) or a path. What the engineer should fix
    (an acceptance metric that does not exist, a clip too large to embed) is logged and listed under
    ``engineer_notes`` in the ``.metrics.json`` beside the HTML, not printed in the customer's document."""
    dirs = [run_dir] if isinstance(run_dir, (str, Path)) else list(run_dir)
    if not dirs:
        raise ReportError("no run directory given")
    ctx = collect_site(dirs, gt=gt, lang=lang, config=config)
    html = render_html(ctx)
    out = Path(out) if out else Path(dirs[0]) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    for n in ctx["engineer_notes"]:
        log.warning("%s", n)
    side = {"metrics": ctx["metrics"], "acceptance": ctx["acceptance"],
            "acceptance_counts": ctx["acceptance_counts"], "warnings": ctx["warnings"],
            "engineer_notes": ctx["engineer_notes"],
            "alarms": [{k: a[k] for k in ("id", "time", "rule", "box", "source", "verdict")} | {"clip": bool(a["clip"])}
                       for a in ctx["alarms"]]}
    if ctx["multi"] or not ctx["boxes"]:
        side["boxes"] = {c["label"]: {"run_dir": c["run_dir"], "metrics": c["metrics"], "alarms": len(c["alarms"])}
                         for c in ctx["boxes"]}
        side["boxes"].update({b: {"run_dir": None, "metrics": {}, "alarms": sum(a["box"] == b for a in ctx["alarms"])}
                              for b in ctx["collected_boxes"]})
    out.with_suffix(".metrics.json").write_text(json.dumps(side, indent=2, ensure_ascii=False, default=str),
                                                encoding="utf-8")
    if pdf:
        from .pdf import html_to_pdf

        html_to_pdf(out, out.with_suffix(".pdf") if pdf is True else Path(pdf))
    return out


def finetune_rows(model_path: str | None) -> dict[str, Any] | None:
    """Before/after figures of the fine-tuning that produced the run's model (``finetune.json`` that
    :func:`pockit.train.finetune` writes beside ``weights/``), or None when the model did not come from there.
    Rows per class on the held-out split: AP50, precision, recall of the base model and of the fine-tuned one."""
    if not model_path:
        return None
    mp = Path(str(model_path))
    for cand in (mp.parent / "finetune.json", mp.parent.parent / "finetune.json"):
        try:
            rec = json.loads(cand.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        outs = {Path(str(rec.get(k) or "")).name for k in ("onnx", "best_pt")}
        if mp.name not in outs or not isinstance(rec.get("after"), dict):
            continue
        before, after = rec.get("before") or {}, rec["after"]
        by_b = {c.get("class"): c for c in before.get("per_class") or []}
        rows = []
        for c in after.get("per_class") or []:
            b = by_b.get(c.get("class")) or {}
            rows.append({"class": c.get("class"), "gt": c.get("gt"),
                         "ap50": (b.get("ap50"), c.get("ap50")), "precision": (b.get("precision"), c.get("precision")),
                         "recall": (b.get("recall"), c.get("recall"))})
        added = (rec.get("settings") or {}).get("added_classes") or []
        return {"rows": rows, "images": after.get("images"), "added": list(added),
                "map50": (before.get("map50"), after.get("map50"))}
    return None
