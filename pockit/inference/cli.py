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
            "description": a.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    w = max(len(r["name"]) for r in rows)
    click.echo(f"{'NAME':<{w}}  {'KIND':<8}  {'STATUS':<7}  {'SIZE':>8}  LICENCE")
    for r in rows:
        click.echo(f"{r['name']:<{w}}  {r['kind']:<8}  {r['status']:<7}  {_size(r['size']):>8}  {r['licence']}")
        click.echo(f"{'':<{w}}  {r['description']}")
        if r["path"]:
            click.echo(f"{'':<{w}}  -> {r['path']}")
    click.echo(f"\ncache: {registry.cache_dir()}   data: {registry.data_dir()}")


@models_cmd.command(name="fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
def fetch_cmd(names: tuple[str, ...], quiet: bool) -> None:
    """Fetch and verify NAMES (see 'pockit models list'); prints each local path."""
    failed = []
    for name in names:
        try:
            path = registry.fetch(name, progress=not quiet)
        except registry.FetchError as e:
            click.echo(f"error: {e}", err=True)
            failed.append(name)
            continue
        click.echo(f"{name}: {path}")
    if failed:
        raise click.ClickException(f"could not fetch: {', '.join(failed)}")
