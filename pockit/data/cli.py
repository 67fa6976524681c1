"""``pockit data``: capture frames, pre-label, check, convert, inspect and export label sets."""
from __future__ import annotations

from pathlib import Path

import click

FMT = click.Choice(["auto", "voc", "coco", "yolo", "mot"])


def _load(path, fmt, on_outside="clip"):
    from .io import load_dataset

    try:
        return load_dataset(path, fmt, on_outside=on_outside)
    except (OSError, ValueError) as e:  # LabelError (a ValueError) names file, line or JSON path, field and value
        raise click.ClickException(str(e)) from None


def _parse_maps(maps):
    from .classes import parse_class_map

    try:
        return parse_class_map(maps)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--map") from None


@click.group("data")
def data_group():
    """Capture frames, convert and validate label sets, dataset health."""


@data_group.command("capture")
@click.argument("source")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--every", "every_s", type=float, default=None, help="seconds between sample points")
@click.option("--motion", type=float, default=None, help="min fraction of changed pixels vs the previous sample point (e.g. 0.005)")
@click.option("--dedup", "dedup_hamming", type=int, default=4, show_default=True, help="perceptual-hash bits; -1 keeps duplicates")
@click.option("--unsure", default=None, metavar="LO,HI", help="keep frames where the model has a score in [LO, HI)")
@click.option("--model", default="person-yolov8s", show_default=True, help="detector for --unsure")
@click.option("--max-frames", type=int, default=None)
@click.option("--max-kept", type=int, default=None)
@click.option("--id", "source_id", default=None, help="source id used in file names")
def capture_cmd(source, out, every_s, motion, dedup_hamming, unsure, model, max_frames, max_kept, source_id):
    """Sample frames worth labelling from SOURCE (file, folder, rtsp://, camera) into OUT with a manifest."""
    from .capture import capture

    det, band = None, None
    if unsure:
        try:
            lo, hi = (float(v) for v in unsure.split(","))
        except ValueError:
            raise click.BadParameter(f"{unsure!r}: expected LO,HI such as 0.25,0.6", param_hint="--unsure") from None
        from ..inference import load_detector

        det, band = load_detector(model, conf=lo), (lo, hi)
    rep = capture(source if not str(source).isdigit() else int(source), out, every_s=every_s, motion=motion,
                  dedup_hamming=None if dedup_hamming < 0 else dedup_hamming, unsure=band, detector=det,
                  max_frames=max_frames, max_kept=max_kept, source_id=source_id)
    click.echo(rep.text())


@data_group.command("prelabel")
@click.argument("images", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--model", default="person-yolov8s", show_default=True)
@click.option("--format", "fmt", default="yolo", type=click.Choice(["yolo", "coco", "voc"]), show_default=True)
@click.option("--conf", default=0.25, show_default=True)
def prelabel_cmd(images, out, model, fmt, conf):
    """Run MODEL on IMAGES (a capture folder or image folder) and write labels for review in CVAT/LabelImg."""
    from ..inference import load_detector
    from .capture import prelabel

    ds = prelabel(images, load_detector(model, conf=conf), out, fmt)
    click.echo(f"pre-labelled {len(ds)} images, {ds.n_boxes} boxes -> {out} ({fmt})")


@data_group.command("check")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", default="auto", type=FMT)
@click.option("--on-outside", default="clip", type=click.Choice(["clip", "drop"]), show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="write every issue to this CSV")
def check_cmd(path, fmt, on_outside, csv_path):
    """Load a label set and report every dropped, clipped or suspicious item (exit 1 if any was dropped)."""
    ds = _load(path, fmt, on_outside)
    click.echo(repr(ds))
    click.echo(ds.report.text(limit=100))
    if csv_path:
        ds.report.to_dataframe().to_csv(csv_path, index=False)
        click.echo(f"issues written to {csv_path}")
    if ds.report.dropped:
        raise SystemExit(1)


@data_group.command("convert")
@click.argument("src", type=click.Path(exists=True))
@click.argument("out", type=click.Path())
@click.option("--from", "fmt", default="auto", type=FMT)
@click.option("--to", "to_fmt", required=True, type=click.Choice(["voc", "coco", "yolo"]))
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW", help="rename/merge (OLD=NEW) or drop (OLD=) classes")
@click.option("--images", default="copy", type=click.Choice(["copy", "link", "none"]), show_default=True)
@click.option("--voc-int", is_flag=True, help="--to voc: round coordinates to integers (default: keep up to 3 decimals)")
def convert_cmd(src, out, fmt, to_fmt, maps, images, voc_int):
    """Convert a label set between VOC, COCO, YOLO (and from MOT), optionally remapping classes.

    Image names that would land outside OUT (absolute, drive letters, '..') stop the conversion
    before anything is written."""
    from .classes import remap_classes
    from .io import save_dataset

    if voc_int and to_fmt != "voc":
        raise click.BadParameter(f"only applies to --to voc, not --to {to_fmt}", param_hint="--voc-int")
    ds = _load(src, fmt)
    if maps:
        ds = remap_classes(ds, _parse_maps(maps))
    try:
        dest = save_dataset(ds, out, to_fmt, images=images, **({"decimals": 0} if voc_int else {}))
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{len(ds)} images, {ds.n_boxes} boxes, classes {ds.class_names} -> {dest}")
    if len(ds.report):
        click.echo(ds.report.text(limit=30))


@data_group.command("stats")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", default="auto", type=FMT)
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, help="write the plotly figures to one self-contained HTML file (works offline)")
def stats_cmd(path, fmt, html):
    """Dataset health: images and boxes per class/source/split, COCO box sizes; optional HTML figures."""
    from .health import health

    ds = _load(path, fmt)
    h = health(ds)
    click.echo(h.text())
    click.echo(h.per_source.to_string(index=False))
    if html:
        figs = h.figures()
        parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs.values())]
        Path(html).write_text("<html><body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
        click.echo(f"figures written to {html}")


@data_group.command("export")
@click.argument("path", type=click.Path(exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="auto", type=FMT)
@click.option("--val", default=0.2, show_default=True, help="held-out fraction (images with no split yet)")
@click.option("--chunk-s", default=60.0, show_default=True, help="seconds of one camera that stay on one side of the split")
@click.option("--chunk-frames", default=300, show_default=True,
              help="the same in frames, for labels without timestamps (YOLO; frame numbers read from the image names)")
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW")
@click.option("--images", default="copy", type=click.Choice(["copy", "link"]), show_default=True)
@click.option("--resplit", is_flag=True, help="ignore the splits the labels came with and split again")
def export_cmd(path, out, fmt, val, chunk_s, chunk_frames, maps, images, resplit):
    """Split (leak-free, stratified) and write an Ultralytics-ready folder with data.yaml.

    The labels' own train/val split is kept when it has both; otherwise (no split, or everything in
    'train' as in a pre-label folder) or with --resplit the images are split again."""
    from .classes import remap_classes
    from .health import health, leakage, split
    from .yolo import export_ultralytics

    ds = _load(path, fmt)
    if maps:
        ds = remap_classes(ds, _parse_maps(maps))
    splits = {im.split for im in ds}
    if resplit or None in splits or not {"train", "val"} <= splits:
        if not resplit and splits != {None}:
            click.echo(f"the labels' splits {sorted(map(str, splits))} lack train or val: splitting again (--val {val})", err=True)
        for im in ds:
            im.split = None
        ds = split(ds, val=val, chunk_s=chunk_s, chunk_frames=chunk_frames)
    leaks = leakage(ds, chunk_s=chunk_s, chunk_frames=chunk_frames)
    if leaks:
        click.echo(f"warning: {len(leaks)} source chunk(s) appear in several splits, e.g. {leaks[:3]}", err=True)
    try:
        y = export_ultralytics(ds, out, images=images)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(health(ds).per_split.to_string(index=False))
    click.echo(f"data.yaml: {y}")
