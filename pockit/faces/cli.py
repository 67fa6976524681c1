"""``pockit faces``: enrol a watch list from photos."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .quality import MIN_SCORE, MIN_SHARPNESS, MIN_SIZE


@click.group(name="faces")
def faces_cmd() -> None:
    """Face watch lists: enrol identities from photos (one folder per person)."""


@faces_cmd.command(name="enrol")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="watch list file to write (.npz)")
@click.option("--min-size", type=float, default=MIN_SIZE, show_default=True,
              help="smallest face accepted: shorter side of the face box, pixels")
@click.option("--min-sharpness", type=float, default=MIN_SHARPNESS, show_default=True,
              help="blur limit: variance of the Laplacian of the aligned face at its own resolution")
@click.option("--min-score", type=float, default=MIN_SCORE, show_default=True, help="smallest face detector score")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
def enrol_cmd(folder: Path, output: Path, min_size: float, min_sharpness: float, min_score: float,
              as_json: bool) -> None:
    """Enrol FOLDER/<identity>/<photos> into a watch list: one face per photo, quality-checked.

    Every refused photo is listed with the reason. The watch list is written with the identities that have at
    least one accepted photo; the exit status is 1 when an identity folder has none (or no identity at all)."""
    from .watchlist import WatchlistError, enrol

    try:
        res = enrol(folder, min_size=min_size, min_sharpness=min_sharpness, min_score=min_score)
    except WatchlistError as e:
        raise click.ClickException(str(e)) from e
    if len(res.watchlist):
        res.watchlist.save(output)
    if as_json:
        click.echo(json.dumps({
            **res.summary(), "output": str(output) if len(res.watchlist) else None,
            "accepted": [{"identity": i, "file": f, **q.as_dict()} for i, f, q in res.accepted],
            "rejected": [{"identity": i, "file": f, "reason": r} for i, f, r in res.rejected],
        }, indent=2))
    else:
        for ident, f, q in res.accepted:
            click.echo(f"ok       {ident}: {f} (face {q.size:.0f} px, sharpness {q.sharpness:.0f}, score {q.score:.2f})")
        for ident, f, reason in res.rejected:
            click.echo(f"refused  {ident + ': ' if ident else ''}{f}: {reason}", err=True)
        if len(res.watchlist):
            click.echo(f"{output}: {len(res.watchlist)} identities, {len(res.accepted)} photos "
                       f"({len(res.rejected)} refused)")
    if not len(res.watchlist):
        raise click.ClickException(f"{folder}: no photo was accepted; nothing written")
    if res.missing:
        click.echo(f"error: no usable photo for {', '.join(res.missing)}: not in the watch list", err=True)
        raise SystemExit(1)
