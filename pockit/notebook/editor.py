"""The interactive zone / line / fence editor for JupyterLab (ipycanvas + ipywidgets).

``ZoneEditor(frame, config="poc.yaml", source_id="cam1")`` shows the camera frame; click to add
polygon points, drag a vertex to move it, press an edge of the selected zone to insert a vertex,
click the first vertex to close a zone. The mode buttons choose what a click on empty space draws
(zone / line / fence), each rule gets widgets for its parameters (built from the rule schema),
and *Save* writes the rules into the config YAML (*Load* reads them back). All editing logic is
in :class:`pockit.notebook.scene.SceneEditor` (``editor.scene``).
"""
from __future__ import annotations

import html
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import ipywidgets as W
import numpy as np
import yaml
from ipycanvas import MultiCanvas, hold_canvas

from ..config import ConfigError, PocConfig, parse_config
from ..sinks import draw as _draw
from .configio import dump_rules, load_scene, merge_rules, save_scene
from .scene import (
    KINDS,
    MANAGED_FIELDS,
    MODELS,
    RULE_TYPES_BY_KIND,
    EditorError,
    SceneEditor,
)


def _css(bgr: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*bgr[::-1])


# the canvas uses the renderer's colours, so a drawn scene looks the same as its snapshot and the run's outputs
COLORS = {"zone": _css(_draw.ZONE), "line": _css(_draw.LINE), "fence": _css(_draw.FENCE)}
SELECTED = _css(_draw.SELECTED)


# one implementation for the editor, the display helpers and the run's outputs
load_image = _draw.load_image
jpeg_bytes = _draw.jpeg_bytes


def _unwrap_optional(ann):
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return ann, False


def _is_list(ann) -> bool:
    return typing.get_origin(ann) is list


#: units shown after a parameter's name (fields not listed are counts, fractions or names)
UNITS = {"dwell": "s", "seconds": "s", "cooldown": "s", "min_duration": "s", "unattended": "s", "hold": "s",
         "window": "s", "history_seconds": "s", "min_area": "px²", "min_frames": "frames", "keep": "frames",
         "max_entries": "passes", "min_count": "objects", "margin": "box h", "upper": "of box h",
         "max_motion": "box h | px", "owner_distance": "box h | px", "threshold": "cos", "min_score": "0-1",
         "min_quality": "0-1", "aspect_ratio": "w/h"}


def field_label(key: str) -> str:
    """A parameter's label with its unit, e.g. ``dwell (s)``."""
    return f"{key} ({UNITS[key]})" if key in UNITS else key


def label_positions(shapes, pad: float, line_h: float, frame_size) -> list[tuple[float, float]]:
    """Where each shape's name goes: above its first point, stacked one line apart for shapes sharing that
    point (rules on one zone), kept inside the frame."""
    w, h = frame_size
    used: dict[tuple[int, int], int] = {}
    out = []
    for s in shapes:
        if not s.points:
            out.append((pad, line_h))
            continue
        x, y = s.points[0]
        key = (round(x), round(y))
        n = used.get(key, 0)
        used[key] = n + 1
        ly = y - pad - n * line_h
        if ly < line_h:  # no room above: stack downwards from the point
            ly = y + line_h * (n + 1)
        out.append((min(max(x + pad, 0.0), max(w - 8 * pad, 0.0)), min(ly, h - pad)))
    return out


def param_widget(key: str, field, value: Any) -> tuple[W.Widget, Callable[[Any], Any]] | None:
    """A widget for one rule field and a function turning its value into the rule value (None: skip)."""
    ann, optional = _unwrap_optional(field.annotation)
    desc = field.description or ""
    label = field_label(key)
    style = {"description_width": "130px"}
    lay = W.Layout(width="300px")
    if typing.get_origin(ann) is Literal:
        opts = list(typing.get_args(ann))
        w = W.Dropdown(options=opts, value=value if value in opts else field.default, description=label,
                       style=style, layout=lay)
        return w, lambda v: v
    if ann is bool:
        return W.Checkbox(value=bool(value if value is not None else field.default), description=label,
                          indent=False), lambda v: bool(v)
    if ann in (int, float) and not optional:
        cls = W.IntText if ann is int else W.FloatText
        w = cls(value=value if value is not None else field.default, description=label, style=style, layout=lay)
        w.tooltip = desc
        return w, (int if ann is int else float)
    if ann in (int, float, str) and optional:
        w = W.Text(value="" if value is None else str(value), placeholder="none", description=label,
                   style=style, layout=lay)
        w.tooltip = desc
        conv = {int: int, float: float, str: str}[ann]
        return w, (lambda v, c=conv: None if str(v).strip() == "" else c(str(v).strip()))
    if ann is str:
        return W.Text(value=str(value or ""), description=label, style=style, layout=lay), str
    if _is_list(ann):
        cur = value if value is not None else field.default
        w = W.Text(value=", ".join(str(x) for x in cur) if cur else "", placeholder="all" if optional else "",
                   description=label, style=style, layout=lay)
        w.tooltip = (desc + " (comma-separated)").strip()

        def conv(v: str):
            items = [x.strip() for x in str(v).split(",") if x.strip()]
            if not items:
                return None if optional else []
            return [int(x) if x.lstrip("-").isdigit() else x for x in items]

        return w, conv
    return None  # e.g. object_removed region: not edited here


class ZoneEditor(W.VBox):
    """Draw rule geometry on a camera frame and edit rule parameters; save/load the PoC config YAML.

    ``frame``: BGR array or image file. ``config``: the PoC YAML path (rules are loaded from it and
    saved into it). ``source_id``: the camera this frame comes from (rules for other cameras are left
    alone). ``display_width``: on-screen width in CSS pixels (coordinates stay in frame pixels).
    ``frames``: optional frames of the same camera (``FrameReader`` or a list of BGR arrays, same size):
    a slider below the frame picks the background (a frame where the floor or the wall top is visible).
    """

    def __init__(self, frame: np.ndarray | str | Path, config: str | Path | None = None,
                 source_id: str | None = None, display_width: int | None = None, normalized: bool = True,
                 mode: str = "zone", frames: Any = None) -> None:
        self.frames = frames  # optional: frames to pick the background from (a FrameReader or a list of images)
        self.image = load_image(frame)
        h, w = self.image.shape[:2]
        self.config_path = Path(config) if config is not None else None
        self.source_id = source_id
        if self.config_path is not None and self.config_path.exists():
            self.scene = load_scene(self.config_path, (w, h), source_id=source_id)
        else:
            self.scene = SceneEditor((w, h), source_id=source_id)
        self.display_width = int(display_width or min(w, 900))
        self.scene.hit_radius = max(self.scene.hit_radius, 9.0 * w / self.display_width)
        self._callbacks: list[Callable[[ZoneEditor], None]] = []
        self._building = False

        # canvas: layer 0 = frame, layer 1 = shapes (receives the mouse)
        self.canvas = MultiCanvas(2, width=w, height=h)
        # never wider than the notebook column (JupyterLab with its file browser open at 1280 px): it shrinks,
        # and mouse positions are scaled by the canvas' on-screen size
        self.canvas.layout = W.Layout(width=f"{self.display_width}px", max_width="100%", height="auto")
        self.canvas.add_class("pockit-zone-canvas")
        self._bg = W.Image(value=jpeg_bytes(self.image), format="jpeg")
        self.canvas.on_client_ready(self._draw_all)
        self.canvas.on_mouse_down(self._on_down)
        self.canvas.on_mouse_move(self._on_move)
        self.canvas.on_mouse_up(self._on_up)
        self.canvas.on_mouse_out(self._on_out)
        self._hover: tuple[float, float] | None = None  # the pointer while a shape is drawn (rubber band)

        # toolbar
        self.mode_buttons = W.ToggleButtons(options=[(k.capitalize(), k) for k in KINDS], value=mode,
                                            tooltips=["click points; double-click or click the first point to close",
                                                      "two clicks: a tripwire",
                                                      "clicks: a polyline (fence, wall top); double-click to finish"])
        self.mode_buttons.add_class("pockit-mode")
        self.mode_buttons.observe(self._on_mode, "value")
        self.scene.mode = mode if not self.scene.shapes else self.scene.mode
        self.mode_buttons.value = self.scene.mode
        btn = lambda d, icon, cb, tip: self._button(d, icon, cb, tip)
        self.b_finish = btn("Finish", "check", self._finish, "finish the selected shape; the next click starts a new one")
        self.b_undo = btn("Undo point", "undo", self._undo, "remove the last point of the selected shape")
        self.b_dup = btn("Duplicate", "copy", self._dup, "same geometry, new rule (e.g. intrusion + loitering)")
        self.b_delete = btn("Delete", "trash", self._delete, "delete the selected rule")
        self.selector = W.Dropdown(description="rule", layout=W.Layout(width="260px"))
        self.selector.observe(self._on_select, "value")

        # parameters
        self.params = W.VBox(layout=W.Layout(min_width="320px"))
        self.params.add_class("pockit-params")

        # save / load
        self.path_text = W.Text(value=str(self.config_path or ""), description="config",
                                placeholder="path/to/poc.yaml", layout=W.Layout(width="340px"))
        self.norm_box = W.Checkbox(value=normalized, description="normalized coordinates (0..1)", indent=False)
        self.b_save = btn("Save", "save", self._save, "write the rules into the config YAML (validated)")
        self.b_save.add_class("pockit-save")
        self.b_save.button_style = "primary"
        self.b_load = btn("Load", "folder-open", self._load, "reload the rules from the config YAML")
        self.status = W.HTML()
        self.status.add_class("pockit-status")
        self.yaml_view = W.HTML()

        # rows wrap instead of overflowing: Save / Load stay above the frame, the parameter panel goes
        # below the frame when the column is narrower than both
        wrap = W.Layout(flex_flow="row wrap", align_items="center", gap="4px 8px")
        self.background = self._background_slider(frames)
        super().__init__([
            W.HBox([self.mode_buttons, self.selector], layout=wrap),
            W.HBox([self.b_finish, self.b_undo, self.b_dup, self.b_delete], layout=wrap),
            W.HBox([self.path_text, self.norm_box, self.b_save, self.b_load], layout=wrap),
            W.HBox([W.VBox([self.canvas] + ([self.background] if self.background is not None else []),
                           layout=W.Layout(max_width="100%")), self.params],
                   layout=W.Layout(flex_flow="row wrap", align_items="flex-start", gap="8px")),
            self.status,  # below the frame: a message never moves the canvas under the pointer
            W.Accordion(children=[self.yaml_view], titles=("rules YAML",)),
        ])
        self._refresh(full=True)

    # -- public --------------------------------------------------------------------------------
    def on_change(self, callback: Callable[[ZoneEditor], None]) -> None:
        """Call ``callback(editor)`` after every completed edit (release, parameter, delete ...)."""
        self._callbacks.append(callback)

    def rules(self) -> list[Any]:
        """The drawn rules as validated rule models (EditorError lists what is incomplete)."""
        return self.scene.to_rules(normalized=self.norm_box.value)

    def poc_config(self) -> PocConfig:
        """The config file's PocConfig with the drawn rules in place (nothing written)."""
        if self.config_path is None or not self.config_path.exists():
            raise ConfigError("no config file: give ZoneEditor(config=...) or type a path and Save")
        text = self.config_path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        data["rules"] = merge_rules(data.get("rules") or [], self.scene.to_dicts(self.norm_box.value),
                                    self.scene.source_id)
        return parse_config(data, str(self.config_path), base_dir=self.config_path.parent)

    def save(self, path: str | Path | None = None) -> PocConfig:
        """Write the rules into the config YAML (the path box by default); returns the new config."""
        path = Path(path) if path is not None else Path(self.path_text.value.strip())
        if not str(path) or str(path) == ".":
            raise ConfigError("type the config file path in the 'config' box first")
        cfg = save_scene(self.scene, path, normalized=self.norm_box.value)
        self.config_path = path
        self.path_text.value = str(path)
        return cfg

    def load(self, path: str | Path | None = None) -> None:
        """Replace the drawn rules by those in the config YAML."""
        path = Path(path) if path is not None else Path(self.path_text.value.strip())
        scene = load_scene(path, self.scene.frame_size, source_id=self.source_id,
                           hit_radius=self.scene.hit_radius)
        self.scene = scene
        self.config_path = path
        self.mode_buttons.value = scene.mode
        self._refresh(full=True)

    def refresh(self) -> None:
        """Redraw, update the panels and run the on_change callbacks after editing ``self.scene`` from code."""
        self._refresh(full=True)

    def snapshot(self) -> np.ndarray:
        """The frame with the shapes drawn (BGR), e.g. for a report or a static notebook output."""
        from .display import draw_scene

        return draw_scene(self.image, self.scene)

    # -- handlers ------------------------------------------------------------------------------
    def _button(self, desc, icon, cb, tip) -> W.Button:
        b = W.Button(description=desc, icon=icon, tooltip=tip, layout=W.Layout(width="auto"))
        b.on_click(lambda _b: self._guard(cb))
        return b

    def _guard(self, fn, *a) -> None:
        try:
            fn(*a)
        except (EditorError, ConfigError, FileNotFoundError, ValueError) as e:
            self._message(str(e), error=True)

    def _on_down(self, x, y) -> None:
        n = len(self.scene.shapes)
        active = self.scene.active
        action = self.scene.press(x, y, t=time.monotonic())
        if action == "close":
            self._hover = None
        self._draw_shapes()
        if len(self.scene.shapes) != n or self.scene.active != active:
            self._refresh(full=True)
        elif action in ("add", "close"):
            self._refresh()
        self._message(f"{action} at ({x:.0f}, {y:.0f})")

    def _on_move(self, x, y) -> None:
        if self.scene.move(x, y):
            self._draw_shapes()
            return
        cur = self.scene.current
        drawing = cur is not None and not cur.finished and bool(cur.points) and cur.kind == self.scene.mode
        if drawing or self._hover is not None:
            self._hover = (x, y) if drawing else None
            self._draw_shapes()

    def _on_out(self, x, y) -> None:
        self._hover = None
        self._on_up(x, y)
        self._draw_shapes()

    def _on_up(self, x, y) -> None:
        if self.scene.release(x, y):
            self._refresh()

    def _on_mode(self, change) -> None:
        if self._building:
            return
        self.scene.mode = change["new"]
        cur = self.scene.current
        if cur is not None and cur.kind != change["new"] and cur.complete():
            cur.finished = True

    def _on_select(self, change) -> None:
        if self._building or change["new"] is None:
            return
        self.scene.select(change["new"])
        self._building = True
        self.mode_buttons.value = self.scene.mode
        self._building = False
        self._refresh(full=True)

    def _finish(self) -> None:
        self.scene.finish()
        self._hover = None
        self._refresh()

    def _undo(self) -> None:
        self.scene.undo_point()
        self._refresh()

    def _dup(self) -> None:
        self.scene.duplicate()
        self._refresh(full=True)

    def _delete(self) -> None:
        self.scene.delete()
        self._refresh(full=True)

    def _save(self) -> None:
        cfg = self.save()
        self._message(f"saved {len(self.scene.shapes)} drawn rule(s) into {self.config_path} "
                      f"({len(cfg.rules)} rules in the file)")

    def _load(self) -> None:
        self.load()
        self._message(f"loaded {len(self.scene.shapes)} rule(s) from {self.config_path}")

    # -- drawing -------------------------------------------------------------------------------
    def _draw_all(self, *_) -> None:
        self.canvas[0].draw_image(self._bg, 0, 0)
        self._draw_shapes()

    def _draw_shapes(self) -> None:
        c = self.canvas[1]
        k = self.scene.frame_size[0] / self.display_width  # frame px per screen px
        with hold_canvas():
            c.clear()
            c.line_width = 2 * k
            c.font = f"{int(14 * k)}px sans-serif"
            for i, s in enumerate(self.scene.shapes):
                col = SELECTED if i == self.scene.active else COLORS[s.kind]
                pts = [tuple(p) for p in s.points]
                c.stroke_style = col
                c.fill_style = col
                if s.kind == "zone" and len(pts) >= 3:
                    c.global_alpha = 0.18
                    c.fill_polygon(pts)
                    c.global_alpha = 1.0
                    if s.finished:
                        c.stroke_polygon(pts)
                    else:
                        c.stroke_lines(pts)
                elif len(pts) >= 2:
                    c.stroke_lines(pts)
                    if s.kind == "line":
                        self._arrow(c, pts[0], pts[1], k)
                for p in pts:
                    c.fill_circle(p[0], p[1], 4 * k)
                if i == self.scene.active and self._hover is not None and pts and not s.finished:
                    c.set_line_dash([6 * k, 4 * k])  # rubber band: where the next click puts the edge
                    c.stroke_line(pts[-1][0], pts[-1][1], *self._hover)
                    if s.kind == "zone" and len(pts) >= 2:
                        c.stroke_line(self._hover[0], self._hover[1], pts[0][0], pts[0][1])
                    c.set_line_dash([])
            labels = label_positions(self.scene.shapes, 6 * k, 17 * k, self.scene.frame_size)
            for i, (s, (x, y)) in enumerate(zip(self.scene.shapes, labels)):
                c.fill_style = SELECTED if i == self.scene.active else COLORS[s.kind]
                c.fill_text(f"{s.name} ({s.type})", x, y)

    @staticmethod
    def _arrow(c, a, b, k) -> None:
        """An arrow from the line's middle to its 'in' side (cross(b - a, p - a) > 0, as the rules count),
        as long as a quarter of the line (at least 28 screen px), with a filled head and an 'in' label."""
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        nx, ny = -dy / n, dx / n
        ln = max(28 * k, 0.25 * n)
        tx, ty = mx + nx * ln, my + ny * ln
        lw = c.line_width
        c.line_width = 3 * k
        c.stroke_line(mx, my, tx, ty)
        c.line_width = lw
        hw, hl = 7 * k, 12 * k  # head half-width and length
        bx, by = tx - nx * hl, ty - ny * hl
        c.fill_polygon([(tx, ty), (bx + dx / n * hw, by + dy / n * hw), (bx - dx / n * hw, by - dy / n * hw)])
        c.fill_text("in", tx + nx * 6 * k + dx / n * 8 * k, ty + ny * 6 * k + dy / n * 8 * k)

    def _background_slider(self, frames) -> W.IntSlider | None:
        if frames is None or len(frames) < 2:
            return None
        sl = W.IntSlider(value=0, min=0, max=len(frames) - 1, description="background", continuous_update=False,
                         style={"description_width": "80px"}, layout=W.Layout(width=f"{self.display_width}px",
                                                                              max_width="100%"))
        sl.observe(lambda ch: self._guard(self.set_background, ch["new"]), "value")
        return sl

    def set_background(self, index: int) -> None:
        """Show frame ``index`` of ``frames`` behind the shapes (the shapes stay in frame pixels)."""
        img = load_image(self.frames[int(index)])
        if img.shape[:2] != self.image.shape[:2]:
            raise EditorError(f"frame {index} is {img.shape[1]}x{img.shape[0]}, the editor's frame "
                              f"{self.image.shape[1]}x{self.image.shape[0]}: frames must come from the same camera")
        self.image = img
        self._bg.value = jpeg_bytes(img)
        self._draw_all()
        self._message(f"background: frame {index}")

    # -- panels --------------------------------------------------------------------------------
    def _refresh(self, full: bool = False) -> None:
        if full:
            self._building = True
            names = [s.name for s in self.scene.shapes]
            self.selector.options = names
            self.selector.value = self.scene.current.name if self.scene.current else None
            self._building = False
            self._build_params()
        self._draw_shapes()
        self._update_yaml()
        for cb in self._callbacks:
            try:
                cb(self)
            except Exception as e:  # noqa: BLE001 - a broken callback must not break the editor
                self._message(f"on_change callback failed: {type(e).__name__}: {e}", error=True)

    def _build_params(self) -> None:
        s = self.scene.current
        if s is None:
            self.params.children = [W.HTML("<i>click on the frame to draw a rule</i>")]
            return
        rows: list[W.Widget] = [W.HTML(f"<b>{html.escape(s.kind)} rule</b>")]
        name = W.Text(value=s.name, description="name", style={"description_width": "110px"},
                      layout=W.Layout(width="300px"))
        name.observe(lambda ch: self._guard(self._set, "name", ch["new"]), "value")
        typ = W.Dropdown(options=RULE_TYPES_BY_KIND[s.kind], value=s.type, description="type",
                         style={"description_width": "110px"}, layout=W.Layout(width="300px"))
        typ.observe(lambda ch: self._guard(self._set_type, ch["new"]), "value")
        rows += [name, typ]
        for key, field in MODELS[s.type].model_fields.items():
            if key in MANAGED_FIELDS or key == "name":
                continue
            made = param_widget(key, field, s.rule.get(key))
            if made is None:
                continue
            w, conv = made
            w.observe(lambda ch, k=key, cv=conv: self._guard(self._set, k, cv(ch["new"])), "value")
            rows.append(w)
        self.params.children = rows

    def _set(self, key: str, value: Any) -> None:
        self.scene.set_param(key, value)
        if key == "name":
            self._refresh(full=True)
        else:
            self._refresh()
        self._message("")

    def _set_type(self, rule_type: str) -> None:
        self.scene.set_rule_type(rule_type)
        self._refresh(full=True)

    def _update_yaml(self) -> None:
        probs = self.scene.problems()
        if probs:
            self.yaml_view.value = "<pre>" + html.escape("incomplete:\n" + "\n".join(probs)) + "</pre>"
            return
        text = dump_rules(self.scene.to_dicts(self.norm_box.value))
        self.yaml_view.value = "<pre>" + html.escape(text) + "</pre>"

    def _message(self, text: str, error: bool = False) -> None:
        color = "#c00" if error else "#555"
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>" if text else ""
