from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from ..config import ConfigError, load_config


def demo_config_path() -> Path:
    return Path(str(resources.files("pockit") / "demos" / "quickstart.yaml"))


def _run(config, run_dir, max_frames, progress, quiet, overwrite=False, live=None) -> None:
    from ..sinks.live import serving
    from .runner import run

    try:
        cfg = load_config(config)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        with serving(cfg, live) as server:  # outputs.live (or live=): the annotated MJPEG view while it runs
            if server is not None:
                click.echo(f"live view: {server.url} (one MJPEG stream per source: {server.url}stream/<source>.mjpg)")
            summary = run(cfg, run_dir=run_dir, progress=progress, max_frames=max_frames, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError, OSError) as e:
        raise click.ClickException(f"{type(e).__name__}: {e}") from None
    if not quiet:
        click.echo(summary.table())
        click.echo(f"events: {summary.events_path}")
    if summary.interrupted:
        sys.exit(130)
    for line in summary.delivery.get("problems", []):
        click.echo(f"not delivered: {line}", err=True)
    if summary.errors:
        for e in summary.errors:
            click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if not summary.all_delivered:
        sys.exit(3)


@click.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-o", "--run-dir", type=click.Path(file_okay=False), help="write outputs here instead of outputs.dir/<name>-<time>")
@click.option("--max-frames", type=int, help="stop each source after N frames (quick checks)")
@click.option("--no-progress", is_flag=True, help="no progress bars (logs, CI)")
@click.option("-q", "--quiet", is_flag=True)
@click.option("--overwrite", is_flag=True, help="replace an earlier run in --run-dir")
def run_cmd(config, run_dir, max_frames, no_progress, quiet, overwrite):
    """Run CONFIG.yaml to the end of every source (Ctrl-C stops and flushes)."""
    _run(config, run_dir, max_frames, not no_progress, quiet, overwrite)


@click.command("demo")
@click.option("-o", "--run-dir", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--max-frames", type=int, help="stop after N analysed frames")
@click.option("--no-progress", is_flag=True)
@click.option("--show-config", is_flag=True, help="print the demo config (a template for your own PoC) and exit")
@click.option("--live-port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="port of the live view on 127.0.0.1 (0 = any free port)")
@click.option("--no-live", is_flag=True, help="no live view")
def demo_cmd(run_dir, max_frames, no_progress, show_config, live_port, no_live):
    """Intrusion, loitering and a counting line on real office footage, end to end; the annotated stream
    (zone counts, line in/out, trails) is served at the printed URL while it runs."""
    from ..config import LiveConfig

    path = demo_config_path()
    if show_config:
        click.echo(path.read_text(encoding="utf-8"))
        return
    click.echo(f"demo config: {path}")
    live = None if no_live else LiveConfig(port=live_port, heatmap=True)
    _run(path, run_dir, max_frames, not no_progress, False, overwrite=True, live=live)  # the demo is reproducible
    click.echo(f"next: pockit report {run_dir} -o {run_dir}/report.html")
