"""``pockit report RUN_DIR [--gt ...] [--lang en|zh] [--pdf] -o report.html``."""
from __future__ import annotations

import click


@click.command("report")
@click.argument("run_dir", type=click.Path())
@click.option("--gt", "gt", multiple=True,
              help="ground truth: MOT gt.txt (or SOURCE=gt.txt, or a MOTChallenge sequence folder) and/or "
                   "events .jsonl; repeatable")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="report language (default: the config's `language`)")
@click.option("--pdf", is_flag=True, help="also print a PDF beside the HTML (needs Chromium)")
@click.option("-o", "--output", default=None, help="HTML file to write (default RUN_DIR/report.html)")
def report_cmd(run_dir, gt, lang, pdf, output):
    """Write the customer PoC report (self-contained HTML, optional PDF) for a run."""
    from pathlib import Path

    from ..config import ConfigError
    from .builder import ReportError, build_report
    from .pdf import PdfError

    if lang is None:
        lang = "en"
        cfg = Path(run_dir) / "config.yaml"
        if cfg.exists():
            import yaml

            try:
                lang = (yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}).get("language") or "en"
            except yaml.YAMLError:
                pass
    try:
        out = build_report(run_dir, gt=list(gt) or None, out=output, lang=lang, pdf=pdf)
    except (ReportError, ConfigError, PdfError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out}")
    if pdf:
        click.echo(f"wrote {out.with_suffix('.pdf')}")
