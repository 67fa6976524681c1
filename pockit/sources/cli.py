"""``pockit probe``: check on site that a file, folder, stream or camera can be read."""
from __future__ import annotations

import json
import time

import click


def _parse_options(items: tuple[str, ...]) -> dict:
    import yaml

    out = {}
    for it in items:
        if "=" not in it:
            raise click.BadParameter(f"expected key=value, got {it!r}", param_hint="-o/--option")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


@click.command("probe")
@click.argument("uri")
@click.option("-n", "--frames", "n_frames", type=int, default=0, show_default=True,
              help="also read this many frames and report the measured rate and counters")
@click.option("--save", type=click.Path(dir_okay=False), default=None, help="write the first frame to this image file")
@click.option("-o", "--option", "options", multiple=True, help="source option key=value (e.g. transport=udp)")
@click.option("--json", "as_json", is_flag=True, help="print JSON only")
def probe_cmd(uri: str, n_frames: int, save: str | None, options: tuple[str, ...], as_json: bool) -> None:
    """Describe URI (video file, image/MOT folder, rtsp://, http://, camera index, GStreamer pipeline,
    data:REL/PATH or media:NAME as in a PoC config)."""
    import cv2

    from . import SourceError, open_source, probe

    opts = _parse_options(options)
    from ..resolve import UriError, resolve_uri

    try:
        uri = str(resolve_uri(uri, field="URI"))
    except UriError as e:
        raise click.ClickException(str(e)) from None
    src_uri: str | int = int(uri) if uri.isdigit() else uri
    try:
        info = probe(src_uri, **opts)
        if n_frames > 0 or save:
            n = max(n_frames, 1)
            with open_source(src_uri, max_frames=n, **opts) as src:
                t0 = time.perf_counter()
                got = 0
                for fr in src:
                    if got == 0 and save:
                        if not cv2.imwrite(save, fr.image):
                            raise click.ClickException(f"cannot write {save} (check the folder and extension)")
                    got += 1
                dt = time.perf_counter() - t0
                info["read_frames"] = got
                info["read_fps"] = round(got / dt, 2) if dt > 0 else None
                info["stats"] = dict(src.stats)
    except SourceError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    for k, v in info.items():
        click.echo(f"{k:>11}: {v}")
