"""Display helpers for notebooks: inline frames, event tables, scene drawings, frame browsers."""
from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .scene import SceneEditor

_BGR = {"zone": (255, 200, 0), "line": (0, 208, 255), "fence": (216, 79, 255)}
_SELECTED = (0, 122, 255)


def draw_scene(image: np.ndarray, scene: SceneEditor, copy: bool = True) -> np.ndarray:
    """The frame with the editor's shapes drawn (zones filled translucent, selected one orange)."""
    img = image.copy() if copy else image
    s_ = max(1.0, img.shape[1] / 800)
    th = max(1, round(2 * s_))
    overlay = img.copy()
    for i, s in enumerate(scene.shapes):
        col = _SELECTED if i == scene.active else _BGR[s.kind]
        pts = np.round(np.asarray(s.points, np.float64).reshape(-1, 2)).astype(np.int32)
        if s.kind == "zone" and len(pts) >= 3:
            cv2.fillPoly(overlay, [pts], col)
    cv2.addWeighted(overlay, 0.2, img, 0.8, 0, dst=img)
    for i, s in enumerate(scene.shapes):
        col = _SELECTED if i == scene.active else _BGR[s.kind]
        pts = np.round(np.asarray(s.points, np.float64).reshape(-1, 2)).astype(np.int32)
        if len(pts) >= 2:
            cv2.polylines(img, [pts], s.kind == "zone" and s.finished, col, th, cv2.LINE_AA)
        if s.kind == "line" and len(pts) == 2:  # arrow to the 'in' side: cross(b - a, p - a) > 0
            (ax, ay), (bx, by) = pts.astype(float)
            n = max(float(np.hypot(bx - ax, by - ay)), 1e-6)
            m = ((ax + bx) / 2, (ay + by) / 2)
            tip = (m[0] - (by - ay) / n * 25 * s_, m[1] + (bx - ax) / n * 25 * s_)
            cv2.arrowedLine(img, (int(m[0]), int(m[1])), (int(tip[0]), int(tip[1])), col, th, cv2.LINE_AA,
                            tipLength=0.4)
            cv2.putText(img, "in", (int(tip[0]) + 4, int(tip[1]) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * s_, col, th,
                        cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, (int(p[0]), int(p[1])), round(4 * s_), col, -1, cv2.LINE_AA)
        if len(pts):
            cv2.putText(img, s.name, (int(pts[0][0]) + 6, int(pts[0][1]) - 6), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5 * s_, col, th, cv2.LINE_AA)
    return img


def to_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def image_widget(image: np.ndarray | str | Path, width: int | None = None):
    """An ipywidgets.Image of a BGR frame (or an image file), ``width`` CSS pixels wide."""
    import ipywidgets as W

    from .editor import jpeg_bytes, load_image

    img = load_image(image)
    w = W.Image(value=jpeg_bytes(img), format="jpeg")
    if width:
        w.layout = W.Layout(width=f"{int(width)}px", height="auto")
    return w


def show(image: np.ndarray | str | Path, width: int | None = None, title: str | None = None) -> None:
    """Display a BGR frame inline (a static PNG output, kept when the notebook is exported)."""
    from IPython.display import HTML, Image, display

    from .editor import load_image

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

    from .editor import jpeg_bytes

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
    return df[first + [c for c in df.columns if c not in first and c not in ("extra", "id", "bbox")]]


def events_per_rule(events: Iterable[Any], rules: Sequence[str] = ()) -> dict[str, int]:
    """{rule name: number of events}, with zero for configured rules that raised none."""
    out = {r: 0 for r in rules}
    for e in events:
        name = e.rule if hasattr(e, "rule") else e["rule"]
        out[name] = out.get(name, 0) + 1
    return out
