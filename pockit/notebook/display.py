"""Display helpers for notebooks: inline frames, event tables, scene drawings, frame browsers."""
from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..sinks.draw import (
    FENCE,
    LINE,
    SELECTED,
    ZONE,
    draw_shapes,
    jpeg_bytes,
    load_image,
    png_bytes,
)
from .scene import SceneEditor

_BGR = {"zone": ZONE, "line": LINE, "fence": FENCE}


def draw_scene(image: np.ndarray, scene: SceneEditor, copy: bool = True) -> np.ndarray:
    """The frame with the editor's shapes drawn by the run's own renderer (:func:`pockit.sinks.draw.draw_shapes`:
    zones filled translucent, an arrow to each line's 'in' side), with vertex dots and the selected shape orange."""
    img = image.copy() if copy else image
    shapes = [{"kind": s.kind, "points": np.asarray(s.points, np.float64).reshape(-1, 2), "name": s.name,
               "color": SELECTED if i == scene.active else _BGR[s.kind],
               "closed": s.kind != "zone" or s.finished}
              for i, s in enumerate(scene.shapes)]
    draw_shapes(img, shapes, vertices=True)
    return img


def to_png(image: np.ndarray) -> bytes:
    return png_bytes(image)


def image_widget(image: np.ndarray | str | Path, width: int | None = None):
    """An ipywidgets.Image of a BGR frame (or an image file), ``width`` CSS pixels wide."""
    import ipywidgets as W

    img = load_image(image)
    w = W.Image(value=jpeg_bytes(img), format="jpeg")
    if width:
        w.layout = W.Layout(width=f"{int(width)}px", height="auto")
    return w


def show(image: np.ndarray | str | Path, width: int | None = None, title: str | None = None) -> None:
    """Display a BGR frame inline (a static PNG output, kept when the notebook is exported)."""
    from IPython.display import HTML, Image, display

    if title:
        display(HTML(f"<b>{html.escape(title)}</b>"))
    display(Image(data=to_png(load_image(image)), format="png", width=width))


def grid(images: Sequence[np.ndarray], cols: int = 3, width: int = 320, captions: Sequence[str] | None = None):
    """A grid widget of BGR frames with optional captions."""
    import ipywidgets as W

    cells = []
    for i, img in enumerate(images):
        parts = [image_widget(img, width)]
        if captions is not None:
            parts.append(W.HTML(f"<small>{html.escape(str(captions[i]))}</small>"))
        cells.append(W.VBox(parts))
    return W.GridBox(cells, layout=W.Layout(grid_template_columns=f"repeat({cols}, {width + 10}px)"))


def frame_browser(frames: Sequence[np.ndarray], captions: Sequence[str] | None = None, width: int = 640):
    """A slider over a list of BGR frames (decoded once, shown as JPEG)."""
    import ipywidgets as W

    if not len(frames):
        return W.HTML("<i>no frames</i>")
    img = image_widget(frames[0], width)
    cap = W.HTML()
    slider = W.IntSlider(value=0, min=0, max=len(frames) - 1, description="frame",
                         layout=W.Layout(width=f"{width}px"))

    def _show(change=None):
        i = slider.value
        img.value = jpeg_bytes(frames[i])
        cap.value = html.escape(str(captions[i])) if captions is not None else f"{i + 1}/{len(frames)}"

    slider.observe(_show, "value")
    _show()
    return W.VBox([slider, img, cap])


def events_table(events: Iterable[Any]):
    """A pandas DataFrame of events (Event objects or dicts), one row each, key columns first."""
    import pandas as pd

    rows = [e.to_dict() if hasattr(e, "to_dict") else dict(e) for e in events]
    cols = ["time", "frame", "rule", "type", "source", "track_id", "class", "zone", "line", "direction",
            "count", "duration"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    first = [c for c in cols if c in df.columns]
    df = df[first + [c for c in df.columns if c not in first and c not in ("extra", "id", "bbox")]]
    # a field no shown event has is left out; one some events lack is blank for them (not NaN)
    df = df.dropna(axis=1, how="all").copy()
    gaps = [c for c in df.columns if df[c].isna().any()]
    df[gaps] = df[gaps].astype(object).where(df[gaps].notna(), "")
    return df


def events_per_rule(events: Iterable[Any], rules: Sequence[str] = ()) -> dict[str, int]:
    """{rule name: number of events}, with zero for configured rules that raised none."""
    out = {r: 0 for r in rules}
    for e in events:
        name = e.rule if hasattr(e, "rule") else e["rule"]
        out[name] = out.get(name, 0) + 1
    return out


# ---------------------------------------------------------------------------------------------- live view
def _live_text(meta: dict) -> str:
    if not meta:
        return "waiting for the first frame"
    parts = [f"frame {meta.get('frame')}  t={meta.get('time')} s  objects now: {meta.get('objects')}"]
    parts += [f"zone {z}: {n} inside" for z, n in (meta.get("zones") or {}).items()]
    parts += [f"line {ln}: in {v.get('in', 0)} / out {v.get('out', 0)}" for ln, v in (meta.get("lines") or {}).items()]
    return "\n".join(parts)


def live_view(server, width: int = 480, interval: float = 0.1):
    """A widget showing the latest annotated frame and live counts of every source of a running live server
    (:class:`pockit.sinks.live.LiveServer`), updated by a background thread until the server stops or
    ``.stop()`` is called. While it is shown, the sources' frames are drawn (it counts as a viewer)."""
    import threading

    import ipywidgets as W

    hub = server.hub
    images, texts, cells = {}, {}, []
    for sid in server.source_ids:
        images[sid] = W.Image(format="jpeg", layout=W.Layout(width=f"{int(width)}px", height="auto"))
        texts[sid] = W.HTML(f"<pre>{html.escape(_live_text({}))}</pre>")
        cells.append(W.VBox([W.HTML(f"<b>{html.escape(sid)}</b>"), images[sid], texts[sid]]))
    state = W.HTML(f'live: <a href="{html.escape(server.url)}" target="_blank">{html.escape(server.url)}</a>')
    box = W.VBox([state, W.HBox(cells, layout=W.Layout(flex_flow="row wrap"))])
    stop = threading.Event()
    box.frames_shown = {sid: 0 for sid in server.source_ids}

    def _loop() -> None:
        seen = {sid: 0 for sid in server.source_ids}
        metas: dict = {}
        for sid in server.source_ids:
            hub.watch(sid, +1)
        try:
            while True:
                last = stop.wait(interval) or hub.closed.is_set()  # one more look after the end: the last frame
                for sid in server.source_ids:
                    n, jpeg, meta = hub.latest(sid)
                    if jpeg is not None and n != seen[sid]:
                        seen[sid] = n
                        images[sid].value = jpeg
                        box.frames_shown[sid] += 1
                    if meta != metas.get(sid):
                        metas[sid] = meta
                        texts[sid].value = f"<pre>{html.escape(_live_text(meta))}</pre>"
                if last:
                    break
        finally:
            if not hub.closed.is_set():
                for sid in server.source_ids:
                    hub.watch(sid, -1)
            state.value = "the run has ended: last frames shown"

    thread = threading.Thread(target=_loop, name="live-view-widget", daemon=True)
    box.stop = lambda: (stop.set(), thread.join(2))
    box.thread = thread
    thread.start()
    return box


def run_live(config, port: int | None = None, width: int = 480, **run_kwargs):
    """:func:`pockit.run` with the live view shown in the notebook (and served at the printed URL) while it runs.

    The live settings are ``outputs.live`` of the config, else the defaults on a free port; ``port`` overrides
    the port. Returns the run's :class:`pockit.pipeline.runner.RunSummary`."""
    from IPython.display import display

    from ..config import LiveConfig, load_config
    from ..pipeline.runner import run
    from ..sinks.live import serving

    cfg = load_config(config)
    live = cfg.outputs.live.model_copy() if cfg.outputs.live is not None else LiveConfig(port=0)
    if port is not None:
        live.port = int(port)
    with serving(cfg, live) as server:
        view = live_view(server, width)
        display(view)
        try:
            return run(cfg, **run_kwargs)
        finally:
            view.stop()
