"""``pockit eval detections|tracks|events``: print a table, write the full results as JSON."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.mot import seqinfo_for
from .detection import EvaluationError


def _write(obj: dict, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=float), encoding="utf-8")
        click.echo(f"wrote {out}")


def _table(df) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(click.style(f"warning: {w}", fg="yellow"), err=True)


@click.group("eval")
def eval_group() -> None:
    """Evaluate detections, tracks or events against ground truth."""


@eval_group.command("detections")
@click.option("--gt", "gt_path", required=True, type=click.Path(), help="ground truth: MOT gt.txt or COCO JSON")
@click.option("--pred", "pred_path", required=True, type=click.Path(),
              help="predictions: MOT file (a run's tracks/<source>.txt) or COCO results JSON")
@click.option("--conf", default=0.25, show_default=True, help="operating score threshold for P/R/F1")
@click.option("--iou", default=0.5, show_default=True, help="IoU for a match at the operating point")
@click.option("--class-agnostic/--per-class", default=None,
              help="merge all classes (default: merge when the ground truth has a single class)")
@click.option("-o", "--output", default=None, help="write the full results as JSON")
def detections_cmd(gt_path, pred_path, conf, iou, class_agnostic, output):
    """COCO mAP50 / mAP50-95, per-class precision/recall/F1 and confusion matrix."""
    from .detection import evaluate_detections
    from .io import collapse_classes, load_boxes

    try:
        gt, gt_names, cmap = load_boxes(gt_path, gt=True)
        pred, pred_names, _ = load_boxes(pred_path, gt=False, categories=cmap or None)
        notes = []
        if class_agnostic is None:
            class_agnostic = len(gt_names) == 1 and set(pred_names) != set(gt_names)
            if class_agnostic:
                notes.append(f"single-class ground truth: predicted classes {sorted(pred_names.values())} "
                             f"all count as {gt_names[min(gt_names)]!r}")
        if class_agnostic:
            name = gt_names[min(gt_names)] if len(gt_names) == 1 else "object"
            gt, pred = collapse_classes(gt, name), collapse_classes(pred, name)
            names = [name]
        else:
            n = max(gt_names) + 1
            names = [gt_names.get(i, str(i)) for i in range(n)]
        rep = evaluate_detections(gt, pred, names, conf=conf, iou=iou)
    except (EvaluationError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    rep.warnings[:0] = notes
    _warn(rep.warnings)
    click.echo(f"mAP50 {rep.map50:.3f}   mAP50-95 {rep.map50_95:.3f}   ({rep.images} images, "
               f"{rep.gt_boxes} gt boxes, conf {conf:g})")
    click.echo(_table(rep.to_frame()))
    _write({"gt": gt_path, "pred": pred_path, **rep.to_dict()}, output)


def _run_record(path: Path) -> dict | None:
    """The run.json of the run folder holding ``path`` (events.jsonl, or tracks/<source>.txt), if any."""
    for d in (path.parent, path.parent.parent):
        rj = d / "run.json"
        if rj.exists():
            try:
                rec = json.loads(rj.read_text(encoding="utf-8"))
            except ValueError as e:
                raise click.ClickException(f"{rj}: not valid JSON ({e})") from None
            return rec if isinstance(rec, dict) else None
    return None


_WHOLE = click.option("--whole-gt", is_flag=True,
                      help="score against the whole ground truth, not only what the run analysed (run.json)")


@eval_group.command("tracks")
@click.option("--gt", "gt_path", required=True, type=click.Path(), help="MOTChallenge ground truth (gt/gt.txt)")
@click.option("--pred", "pred_path", required=True, type=click.Path(), help="MOT tracks (a run's tracks/<source>.txt)")
@click.option("--frames", type=int, default=None, help="sequence length (default: seqinfo.ini or the last frame)")
@_WHOLE
@click.option("-o", "--output", default=None, help="write the full results as JSON")
def tracks_cmd(gt_path, pred_path, frames, whole_gt, output):
    """HOTA, MOTA, IDF1, ID switches, fragmentations, mostly tracked/lost.

    When --pred lies in a run folder (run.json), only the frames that run analysed are scored."""
    from .events import analysed_spans
    from .tracking import evaluate_tracks

    rng = None
    rec = None if whole_gt else _run_record(Path(pred_path))
    if rec is not None:
        span = analysed_spans(rec).get(Path(pred_path).stem)
        if span is not None and span.frames:
            rng = (span.first_frame, span.last_frame)
            click.echo(f"run.json: scoring {span.label()} only (--whole-gt for all of the ground truth)")
    try:
        rep = evaluate_tracks(gt_path, pred_path, num_frames=frames, frames=rng)
    except (EvaluationError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    _warn(rep.warnings)
    click.echo(f"{rep.frames} frames, gt {rep.gt_ids} ids / {rep.gt_boxes} boxes, "
               f"pred {rep.pred_ids} ids / {rep.pred_boxes} boxes")
    df = rep.to_frame()
    df["value"] = [f"{v:.3f}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"
                   for v in df["value"]]
    click.echo(_table(df))
    _write(rep.to_dict(), output)


def _fps_near(path: Path) -> float | None:
    try:
        return float(seqinfo_for(path)["framerate"])
    except (KeyError, ValueError):
        return None


def _hours_from_run(events_path: Path) -> float | None:
    run = events_path.parent / "run.json"
    if not run.exists():
        return None
    try:
        rec = json.loads(run.read_text(encoding="utf-8"))
        secs = sum(float(s.get("duration_s") or 0) for s in (rec.get("sources") or {}).values())
    except (ValueError, AttributeError, TypeError):
        return None
    return secs / 3600 if secs > 0 else None


@eval_group.command("events")
@click.option("--pred", "pred_path", required=True, type=click.Path(), help="predicted events.jsonl (from a run)")
@click.option("--gt", "gt_path", default=None, type=click.Path(), help="ground-truth events JSONL")
@click.option("--gt-tracks", default=None, type=click.Path(),
              help="derive ground-truth events by replaying --config's rules on these MOT gt tracks")
@click.option("--config", "config_path", default=None, type=click.Path(), help="PoC config (with --gt-tracks)")
@click.option("--fps", type=float, default=None, help="frame rate of --gt-tracks (default: seqinfo.ini)")
@click.option("--source", "source_id", default=None, help="source id of --gt-tracks (default: the first source)")
@click.option("--tolerance", default=1.0, show_default=True, help="seconds between alarm and true event")
@click.option("--hours", type=float, default=None, help="hours of footage (default: run.json beside --pred)")
@click.option("--rule", "rules", multiple=True, help="evaluate only these rules (repeatable)")
@_WHOLE
@click.option("-o", "--output", default=None, help="write the full results as JSON")
def events_cmd(pred_path, gt_path, gt_tracks, config_path, fps, source_id, tolerance, hours, rules, whole_gt,
               output):
    """Per-rule TP/FP/FN, precision, recall, F1, false alarms per hour, latency.

    When --pred lies in a run folder (run.json), ground-truth events outside what the run analysed are
    not scored."""
    from .events import analysed_spans, evaluate_events, gt_events_from_tracks

    spans = None
    rec = None if whole_gt else _run_record(Path(pred_path))
    if rec is not None:
        spans = analysed_spans(rec) or None
        if spans:
            click.echo(f"run.json: scoring {'; '.join(s.label() for s in spans.values())} only "
                       "(--whole-gt for all of the ground truth)")

    if bool(gt_path) == bool(gt_tracks):
        raise click.UsageError("give exactly one of --gt (events JSONL) or --gt-tracks (MOT gt, with --config)")
    try:
        if gt_tracks:
            if not config_path:
                raise click.UsageError("--gt-tracks needs --config (the rules to replay)")
            fps = fps or _fps_near(Path(gt_tracks))
            if not fps:
                raise click.UsageError(f"frame rate of {gt_tracks} unknown: pass --fps")
            from ..config import load_config

            sid = source_id or load_config(config_path).sources[0].id
            gt = gt_events_from_tracks(config_path, gt_tracks, fps, sid, span=(spans or {}).get(sid))
            click.echo(f"{len(gt)} ground-truth events from replaying the rules on {gt_tracks} at {fps:g} fps")
        else:
            gt = gt_path
        hours = hours or (sum(s.seconds for s in spans.values()) / 3600 if spans else None) \
            or _hours_from_run(Path(pred_path))
        rep = evaluate_events(pred_path, gt, tolerance=tolerance, hours=hours, rules=list(rules) or None,
                              spans=spans)
    except (EvaluationError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    _warn(rep.warnings)
    from .events import MIN_RATE_SECONDS, human_duration

    click.echo(f"tolerance {tolerance:g} s, footage {human_duration(hours * 3600) if hours else 'unknown (pass --hours)'}")
    if hours and hours * 3600 < MIN_RATE_SECONDS:
        click.echo(f"false alarms per hour need at least {human_duration(MIN_RATE_SECONDS)} of footage: "
                   "see the fp counts")
    click.echo(_table(rep.to_frame()))
    _write(rep.to_dict(), output)
