"""``pockit rules CONFIG.yaml --tracks tracks.txt``: replay rules on recorded tracks."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click


@click.command("rules")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--tracks", "tracks", required=True, type=click.Path(exists=True, dir_okay=False),
              help="MOTChallenge tracks file (frame,id,x,y,w,h,...), e.g. gt/gt.txt or runs/<run>/tracks/<src>.txt")
@click.option("--fps", type=float, default=None, help="frame rate (default: seqinfo.ini, else the config's source fps)")
@click.option("--source", "source_id", default=None, help="source id the rules run as (default: first source)")
@click.option("--size", default=None, help="frame size WxH for normalized geometry (default: seqinfo.ini)")
@click.option("-o", "--output", default="events.jsonl", show_default=True, type=click.Path(dir_okay=False),
              help="events file to write")
def rules_cmd(config, tracks, fps, source_id, size, output):
    """Replay CONFIG's rules on a tracks file (no detector) and write events.jsonl."""
    from ..config import ConfigError
    from ..core import MotFormatError, write_events
    from .replay import replay_rules

    frame_size = None
    if size:
        try:
            w, h = (int(v) for v in size.lower().split("x"))
            frame_size = (w, h)
        except ValueError:
            raise click.BadParameter(f"expected WxH, e.g. 1920x1080, got {size!r}", param_hint="--size") from None
    try:
        events, engine = replay_rules(config, tracks, fps=fps, source_id=source_id, frame_size=frame_size,
                                      progress=True)
    except (ConfigError, MotFormatError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    write_events(events, output)
    per_rule = Counter(e.rule for e in events if e.end is None)
    click.echo(f"{len(events)} event record(s) -> {Path(output)}")
    for r in engine.rules:
        extra = ""
        if "in" in r.counts:
            extra = f"  in={r.counts['in']} out={r.counts['out']}"
        click.echo(f"  {r.name:24s} {r.type:16s} {per_rule.get(r.name, 0):5d} event(s){extra}")
