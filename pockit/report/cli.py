"""``pockit report RUN_DIR [RUN_DIR ...] [--gt ...] [--lang en|zh] [--pdf] -o report.html``."""
from __future__ import annotations

import click


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--gt", "gt", multiple=True,
              help="ground truth: MOT gt.txt (or SOURCE=gt.txt, BOX/SOURCE=gt.txt with several runs, or a "
                   "MOTChallenge sequence folder) and/or events .jsonl; repeatable")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="report language (default: the first run's config `language`)")
@click.option("--pdf", is_flag=True, help="also print a PDF beside the HTML (needs Chromium)")
@click.option("-o", "--output", default=None, help="HTML file to write (default FIRST_RUN_DIR/report.html)")
@click.option("--config", "config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="PoC YAML for the cover (poc section) and a site checklist; needed for a `pockit collect` "
                   "folder alone")
def report_cmd(run_dirs, gt, lang, pdf, output, config):
    """Write the customer PoC report (self-contained HTML, optional PDF) for one run, several runs (one per
    edge box), a folder of copied runs or a `pockit collect` folder: one report with a section per box and
    site totals."""
    from ..config import ConfigError
    from .builder import ReportError, build_report, find_runs
    from .pdf import PdfError

    try:
        runs = find_runs(run_dirs)
        if lang is None:
            lang = _config_language(config or runs[0])
        out = build_report(runs if len(runs) > 1 else runs[0], gt=list(gt) or None, out=output, lang=lang, pdf=pdf,
                           config=config)
    except (ReportError, ConfigError, PdfError) as e:
        raise click.ClickException(str(e)) from None
    import json

    notes = json.loads(out.with_suffix(".metrics.json").read_text(encoding="utf-8")).get("engineer_notes") or []
    for n in notes:  # for the engineer, not in the customer's document
        click.echo(f"note: {n}", err=True)
    click.echo(f"wrote {out}" + (f" ({len(runs)} runs)" if len(runs) > 1 else ""))
    if pdf:
        click.echo(f"wrote {out.with_suffix('.pdf')}")


def _config_language(path) -> str:
    """The ``language`` of a PoC YAML, or of a run directory's config.yaml; "en" without one."""
    from pathlib import Path

    import yaml

    cfg = Path(path) if Path(path).is_file() else Path(path) / "config.yaml"
    if cfg.exists():
        try:
            return (yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}).get("language") or "en"
        except yaml.YAMLError:
            pass
    return "en"
