"""Event-level accuracy: predicted alarms vs ground-truth events (same JSONL schema).

Matching is one-to-one within each (source, rule, type, direction) group: a predicted and a
ground-truth event may pair only when ``|t_pred - t_gt| <= tolerance``. Closing records of an
episode (pockit's crowd end: ``extra.phase == "end"``) are not alarms: :func:`fold_episodes` puts
their ``end`` on the start record and drops them before matching. Among all pairings the
one with the most matches, then the smallest total ``|dt|``, is chosen (Hungarian assignment,
infeasible pairs blocked), so an early alarm never steals the partner another alarm needs.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core import Event, read_events
from .detection import EvaluationError

log = logging.getLogger(__name__)

_BLOCK = 1e9
MIN_RATE_SECONDS = 600.0  # false alarms per hour only from at least 10 minutes of footage


_UNITS = {"en": ("s", "min", "h"), "zh": ("秒", "分", "小时")}


def human_duration(seconds: float | None, lang: str = "en") -> str:
    """``15.3 s``, ``2 min 10 s``, ``1 h 5 min`` (``-`` when unknown)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "-"
    s_, m_, h_ = _UNITS.get(lang, _UNITS["en"])
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} {s_}"
    total = round(seconds)
    if total < 3600:
        m, s = divmod(total, 60)
        return f"{m} {m_} {s} {s_}" if s else f"{m} {m_}"
    h, rest = divmod(total, 3600)
    m = round(rest / 60)
    if m == 60:
        h, m = h + 1, 0
    return f"{h} {h_} {m} {m_}" if m else f"{h} {h_}"


def per_hour(count: float, hours: float | None, min_seconds: float = MIN_RATE_SECONDS) -> float | None:
    """``count`` per hour of footage, or None when ``hours`` is unknown or shorter than ``min_seconds``
    (2 alarms in 15 s are not "480 per hour": show the count and the footage instead)."""
    if not hours or hours * 3600 < min_seconds - 1e-9:
        return None
    return count / hours


def match_events(pred: Sequence[Event], gt: Sequence[Event], tolerance: float = 1.0) -> list[tuple[int, int]]:
    """Optimal one-to-one matching by time: pairs (pred index, gt index) with |dt| <= tolerance.

    Maximises the number of pairs, then minimises the summed |dt|. The caller groups events
    (rule/type/direction) first; this function looks at times only.
    """
    if not pred or not gt:
        return []
    tp = np.array([e.time for e in pred], float)
    tg = np.array([e.time for e in gt], float)
    dt = np.abs(tp[:, None] - tg[None, :])
    feasible = dt <= tolerance + 1e-9
    if not feasible.any():
        return []
    # each feasible pair costs less than 1 (so more pairs always win), ties broken by |dt|
    cost = np.where(feasible, dt / (tolerance + 1e-9) / (len(pred) + len(gt) + 1), _BLOCK)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if feasible[r, c]]


def is_closing(e: Event) -> bool:
    """A record that closes an episode (crowd end), not a new alarm."""
    return isinstance(e.extra, dict) and e.extra.get("phase") == "end"


def fold_episodes(events: Iterable[Event]) -> list[Event]:
    """The alarms only: each closing record's ``end`` goes onto its start record (``extra.of`` = start id,
    copied, the input is not changed) and the closing record is dropped."""
    events = list(events)
    ends = {e.extra.get("of"): e.end if e.end is not None else e.time for e in events if is_closing(e)}
    out = []
    for e in events:
        if is_closing(e):
            continue
        if e.id in ends and e.end is None:
            e = replace(e, end=ends[e.id], extra=dict(e.extra))
        out.append(e)
    return out


@dataclass(frozen=True)
class AnalysedSpan:
    """The part of one source a run analysed: MOT frames ``first_frame..last_frame`` (1-based, inclusive)
    at times ``t0..t1`` seconds (timestamps of the first and last analysed frame)."""

    source: str
    first_frame: int
    last_frame: int
    t0: float
    t1: float
    frames: int  # frames actually analysed (fewer than the range when the run kept every n-th frame)

    @property
    def seconds(self) -> float:
        """Footage covered: first to last analysed frame plus one frame period."""
        if self.frames <= 0:
            return 0.0
        period = (self.t1 - self.t0) / (self.frames - 1) if self.frames > 1 and self.t1 > self.t0 else 0.0
        if period <= 0 and self.last_frame > self.first_frame:
            period = (self.t1 - self.t0) / (self.last_frame - self.first_frame)
        return (self.t1 - self.t0) + period

    def contains(self, t: float) -> bool:
        return self.frames > 0 and self.t0 - 1e-6 <= t <= self.t1 + 1e-6

    def label(self) -> str:
        return f"{self.source}: frames {self.first_frame}-{self.last_frame} ({self.t0:.2f}-{self.t1:.2f} s)"


def analysed_spans(run: dict[str, Any]) -> dict[str, AnalysedSpan]:
    """Per source, the span a run analysed, from its run.json record (``sources.<id>``: frames, fps,
    native_fps (frame numbers count these), duration_s = timestamp of the last analysed frame; the config's
    ``start`` for the first)."""
    starts = {}
    for s in ((run.get("config") or {}).get("sources") or []):
        if isinstance(s, dict) and s.get("id") is not None:
            starts[str(s["id"])] = float(s.get("start") or 0.0)
    out: dict[str, AnalysedSpan] = {}
    for sid, info in (run.get("sources") or {}).items():
        if not isinstance(info, dict) or "frames" not in info:  # span unknown: nothing to restrict to
            continue
        n = int(info.get("frames") or 0)
        fps = float(info.get("fps") or 0) or None
        t0 = starts.get(str(sid), 0.0)
        if fps:  # the first frame at or after start (the sources seek this way)
            t0 = max(0, math.ceil(t0 * fps - 1e-6)) / fps
        t1 = float(info.get("duration_s") or 0.0)
        if n and t1 < t0:  # a record without the last timestamp: the first n frames from the start
            t1 = t0 + ((n - 1) / fps if fps else 0.0)
        # frame numbers (MOT tracks, event frames) count the source's own frames, which differ from the
        # analysed ones when a source is analysed at a lower rate (sources[].fps)
        ffps = float(info.get("native_fps") or 0) or fps
        first = round(t0 * ffps) + 1 if ffps else 1
        last = round(t1 * ffps) + 1 if ffps else n
        out[str(sid)] = AnalysedSpan(str(sid), first, max(first, last) if n else first - 1, t0, t1 if n else t0, n)
    return out


def restrict_to_spans(events: Iterable[Event], spans: dict[str, AnalysedSpan]) -> tuple[list[Event], list[Event]]:
    """``(inside, outside)``: the events whose source was analysed at their time, and the rest."""
    inside, outside = [], []
    for e in events:
        sp = spans.get(str(e.source))
        (inside if sp is not None and sp.contains(float(e.time)) else outside).append(e)
    return inside, outside


def _key(e: Event) -> tuple:
    return (str(e.source), e.rule, e.type, e.direction or "")


@dataclass
class EventReport:
    """Results of :func:`evaluate_events`."""

    per_rule: list[dict[str, Any]]  # rule, tp, fp, fn, precision, recall, f1, fa_per_hour, latency_*
    per_group: list[dict[str, Any]]  # the same per source/rule/type/direction
    matches: list[tuple[Event, Event]]  # (pred, gt)
    false_alarms: list[Event]
    missed: list[Event]
    tolerance: float
    hours: float | None
    warnings: list[str] = field(default_factory=list)
    spans: dict[str, AnalysedSpan] | None = None  # the analysed spans the ground truth was restricted to
    gt_outside: list[Event] = field(default_factory=list)  # ground-truth events outside them (not scored)

    @property
    def totals(self) -> dict[str, Any]:
        return _stats("all", len(self.matches), len(self.false_alarms), len(self.missed),
                      [p.time - g.time for p, g in self.matches], self.hours)

    def rule(self, name: str) -> dict[str, Any]:
        for r in self.per_rule:
            if r["rule"] == name:
                return r
        raise KeyError(f"no rule {name!r} in the event evaluation; rules: {[r['rule'] for r in self.per_rule]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance_s": self.tolerance, "footage_hours": self.hours, "totals": self.totals,
            "per_rule": self.per_rule, "per_group": self.per_group,
            "matches": [{"pred": p.id, "gt": g.id, "rule": p.rule, "pred_time": p.time, "gt_time": g.time,
                         "latency_s": round(p.time - g.time, 4)} for p, g in self.matches],
            "false_alarms": [e.to_dict() for e in self.false_alarms],
            "missed": [e.to_dict() for e in self.missed],
            "warnings": self.warnings,
            "analysed": None if self.spans is None else {
                k: {"first_frame": v.first_frame, "last_frame": v.last_frame, "t0_s": v.t0, "t1_s": v.t1,
                    "frames": v.frames} for k, v in self.spans.items()},
            "gt_outside_span": len(self.gt_outside),
        }

    def to_frame(self):
        import pandas as pd

        cols = ["rule", "gt", "pred", "tp", "fp", "fn", "precision", "recall", "f1", "fa_per_hour",
                "latency_mean_s", "latency_p50_s", "latency_p95_s"]
        return pd.DataFrame(self.per_rule + [self.totals])[cols]

    def figures(self, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Plotly figures: ``counts`` (TP/FP/FN per rule) and ``latency`` (box plot per rule)."""
        import plotly.graph_objects as go

        t = dict(labels or {})
        rules = [r["rule"] for r in self.per_rule]
        counts = go.Figure()
        for k, color in (("tp", "#2ca02c"), ("fp", "#d62728"), ("fn", "#ff7f0e")):
            counts.add_trace(go.Bar(x=rules, y=[r[k] for r in self.per_rule], name=t.get(k, k.upper()),
                                    marker_color=color))
        counts.update_layout(barmode="group", height=340, title=t.get("counts_title", "Alarms per rule"),
                             margin={"t": 50, "b": 40})
        lat = go.Figure()
        for r in rules:
            d = [p.time - g.time for p, g in self.matches if p.rule == r]
            if d:
                lat.add_trace(go.Box(y=d, name=r, boxpoints="all"))
        lat.update_layout(height=340, yaxis_title=t.get("latency_axis", "alarm latency (s, alarm - truth)"),
                          title=t.get("latency_title", "Alarm latency"), margin={"t": 50, "b": 40}, showlegend=False)
        return {"counts": counts, "latency": lat}


def _stats(name: str, tp: int, fp: int, fn: int, lat: list[float], hours: float | None, **extra) -> dict[str, Any]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    lat_a = np.asarray(lat, float)
    return {
        "rule": name, **extra, "gt": tp + fn, "pred": tp + fp, "tp": tp, "fp": fp, "fn": fn,
        "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "fa_per_hour": per_hour(fp, hours),
        "latency_mean_s": float(lat_a.mean()) if len(lat_a) else None,
        "latency_p50_s": float(np.percentile(lat_a, 50)) if len(lat_a) else None,
        "latency_p95_s": float(np.percentile(lat_a, 95)) if len(lat_a) else None,
    }


def _load(x: str | Path | Iterable[Event], what: str) -> list[Event]:
    if isinstance(x, (str, Path)):
        if not Path(x).exists():
            raise EvaluationError(f"{what} events file not found: {x} (JSONL, one event per line)")
        return read_events(x)
    return list(x)


def evaluate_events(
    pred: str | Path | Iterable[Event],
    gt: str | Path | Iterable[Event],
    tolerance: float = 1.0,
    hours: float | None = None,
    rules: Sequence[str] | None = None,
    spans: dict[str, AnalysedSpan] | None = None,
) -> EventReport:
    """Match predicted alarms to ground-truth events and score them per rule.

    pred / gt: events.jsonl paths or Event lists (closing records are folded into their alarm, see
    :func:`fold_episodes`). tolerance: seconds. hours: hours of footage
    the prediction covers (false alarms per hour need at least :data:`MIN_RATE_SECONDS` of it; shorter
    or None leaves the rate out, the false-alarm count stays). rules: only these.
    spans: what the run analysed per source (:func:`analysed_spans` of its run.json): ground-truth events
    outside them are not scored (``report.gt_outside``) and predictions are kept as they are.
    """
    if tolerance < 0:
        raise EvaluationError(f"tolerance must be >= 0 seconds, got {tolerance}")
    P = fold_episodes(_load(pred, "predicted"))
    G = fold_episodes(_load(gt, "ground-truth"))
    warnings: list[str] = []
    if rules is not None:
        P = [e for e in P if e.rule in rules]
        G = [e for e in G if e.rule in rules]
    outside: list[Event] = []
    if spans is not None:
        G, outside = restrict_to_spans(G, spans)
        if outside:
            warnings.append(f"{len(outside)} ground-truth event(s) lie outside what the run analysed "
                            f"({'; '.join(v.label() for v in spans.values())}): not scored")
        if not G and outside:
            raise EvaluationError(f"no ground-truth event lies in what the run analysed "
                                  f"({'; '.join(v.label() for v in spans.values())}); all {len(outside)} are "
                                  "outside it: run on more of the footage to measure event accuracy")
    if not G:
        raise EvaluationError("the ground truth has no events" + (f" for rules {list(rules)}" if rules else "")
                              + ": precision/recall need at least one true event. Annotate events (JSONL with "
                              "rule, type, time) or derive them from ground-truth tracks (--gt-tracks)")
    if not P:
        warnings.append("the prediction has no events: every ground-truth event counts as missed")
    p_rules, g_rules = {e.rule for e in P}, {e.rule for e in G}
    for r in sorted(p_rules - g_rules):
        warnings.append(f"rule {r!r} raised alarms but the ground truth has no event for it: all count as "
                        "false alarms (if the ground truth does not cover this rule, pass rules=...)")
    for r in sorted(g_rules - p_rules):
        warnings.append(f"rule {r!r} has ground-truth events but no alarm at all: check the rule is enabled")
    groups_p: dict[tuple, list[int]] = defaultdict(list)
    groups_g: dict[tuple, list[int]] = defaultdict(list)
    for i, e in enumerate(P):
        groups_p[_key(e)].append(i)
    for i, e in enumerate(G):
        groups_g[_key(e)].append(i)
    matches: list[tuple[Event, Event]] = []
    mp, mg = set(), set()
    per_group = []
    for key in sorted(set(groups_p) | set(groups_g)):
        ip, ig = groups_p.get(key, []), groups_g.get(key, [])
        pairs = match_events([P[i] for i in ip], [G[i] for i in ig], tolerance)
        for a, b in pairs:
            matches.append((P[ip[a]], G[ig[b]]))
            mp.add(ip[a])
            mg.add(ig[b])
        per_group.append(_stats(key[1], len(pairs), len(ip) - len(pairs), len(ig) - len(pairs),
                                [P[ip[a]].time - G[ig[b]].time for a, b in pairs], hours,
                                source=key[0], type=key[2], direction=key[3] or None))
    fa = [P[i] for i in range(len(P)) if i not in mp]
    missed = [G[i] for i in range(len(G)) if i not in mg]
    per_rule = []
    for r in sorted(p_rules | g_rules):
        m = [(p, g) for p, g in matches if p.rule == r]
        per_rule.append(_stats(r, len(m), sum(e.rule == r for e in fa), sum(e.rule == r for e in missed),
                               [p.time - g.time for p, g in m], hours))
    matches.sort(key=lambda pg: pg[0].time)
    return EventReport(per_rule=per_rule, per_group=per_group, matches=matches, false_alarms=fa, missed=missed,
                       tolerance=tolerance, hours=hours, warnings=warnings, spans=spans, gt_outside=outside)


def gt_events_from_tracks(config: Any, tracks_path: str | Path, fps: float | None, source_id: str | None = None,
                          span: AnalysedSpan | None = None,
                          frame_size: tuple[int, int] | None = None) -> list[Event]:
    """Ground-truth events by replaying the config's rules on ground-truth tracks (a MOT file).

    span: what the run analysed (:func:`analysed_spans`): the rules are replayed on the ground-truth
    tracks of those frames only, so an object already inside a zone when the run started is judged as the
    run saw it (the report, ``pockit eval events`` and the notebooks all derive events this way). With a
    span the result also holds the events a replay of the whole annotation has outside it, so that
    :func:`evaluate_events` (``spans=``) counts them as not scored (``report.gt_outside``).
    """
    try:
        from ..rules import replay
    except ImportError as e:  # pragma: no cover - depends on the rules package being installed
        raise EvaluationError(f"deriving events from tracks needs pockit.rules.replay: {e}") from e
    import tempfile

    from ..config import load_config
    from ..core import load_mot_array
    from ..core.mot import seqinfo_for

    cfg = load_config(config)
    tracks_path = Path(tracks_path)
    if not tracks_path.exists():
        raise EvaluationError(f"ground-truth tracks not found: {tracks_path} (a MOTChallenge gt.txt)")
    sid = source_id or cfg.sources[0].id
    full = list(replay(cfg, tracks_path, fps, sid, frame_size=frame_size))
    if span is None:
        return full
    outside = [e for e in fold_episodes(full) if not span.contains(e.time)]
    if not span.frames:
        return outside
    info = seqinfo_for(tracks_path)
    if frame_size is None and "imwidth" in info and "imheight" in info:
        frame_size = (int(info["imwidth"]), int(info["imheight"]))
    if not fps and "framerate" in info:
        fps = float(info["framerate"])
    G = load_mot_array(tracks_path)
    G = G[(G[:, 0] >= span.first_frame) & (G[:, 0] <= span.last_frame)]
    if not len(G):
        return outside
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / tracks_path.parent.name / tracks_path.name  # keeps gt/ conventions (ignore flags)
        p.parent.mkdir()
        np.savetxt(p, G, delimiter=",", fmt="%.6g")
        inside = list(replay(cfg, p, fps, sid, frame_size=frame_size))
    return [e for e in inside if span.contains(e.time)] + outside
