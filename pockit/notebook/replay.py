"""Replay rules on recorded tracks from a notebook and preview the alarms on the real frames.

:class:`ScenarioReplay` (no widgets) wraps :func:`pockit.rules.replay`; :class:`ReplayPanel` ties it
to a :class:`~pockit.notebook.editor.ZoneEditor` so every edit re-runs the rules at once.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from ..config import PocConfig, load_config
from ..core import Detections, Event, read_mot

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class FrameReader:
    """Random access to frames by 0-based decode index, from a video file or an image folder."""

    def __init__(self, uri: str | Path, cache: int = 64) -> None:
        p = Path(uri).expanduser()
        if p.is_dir() and (p / "img1").is_dir():  # a MOT sequence folder
            p = p / "img1"
        self.path = p
        self._cache: dict[int, np.ndarray] = {}
        self._cache_max = cache
        self._cap = None
        if p.is_dir():
            self.files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
            if not self.files:
                raise FileNotFoundError(f"{p}: no images in this folder")
            self.count = len(self.files)
        elif p.is_file():
            self.files = None
            self._cap = cv2.VideoCapture(str(p))
            if not self._cap.isOpened():
                raise FileNotFoundError(f"{p}: OpenCV cannot open this video")
            self.count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self._next = 0
        else:
            raise FileNotFoundError(f"{p}: no such video file or image folder")

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < self.count:
            raise IndexError(f"{self.path}: frame {index} out of range (0..{self.count - 1})")
        if index in self._cache:
            return self._cache[index]
        if self.files is not None:
            img = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
        else:
            if index != self._next:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, img = self._cap.read()
            self._next = index + 1
            if not ok:
                img = None
        if img is None:
            raise OSError(f"{self.path}: cannot decode frame {index}")
        if len(self._cache) >= self._cache_max:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = img
        return img


class ScenarioReplay:
    """Rules of a config replayed on a MOT tracks file, with frames for previews.

    ``frames``: the footage the tracks were made on (video file, image folder or MOT sequence
    folder), for :meth:`preview`; ``fps`` / ``frame_size`` default to seqinfo.ini or the frames.
    """

    def __init__(self, tracks_path: str | Path, frames: str | Path | None = None, fps: float | None = None,
                 source_id: str | None = None, frame_size: tuple[int, int] | None = None,
                 class_names: Mapping[int, str] | None = None) -> None:
        self.tracks_path = Path(tracks_path)
        if not self.tracks_path.exists():
            raise FileNotFoundError(f"{self.tracks_path}: tracks file not found (a run's tracks/<source>.txt "
                                    "or a MOT gt/gt.txt)")
        self.frames = FrameReader(frames) if frames is not None else None
        if frame_size is None and self.frames is not None:
            h, w = self.frames[0].shape[:2]
            frame_size = (w, h)
        self.fps, self.source_id, self.frame_size = fps, source_id, frame_size
        self.class_names = dict(class_names or {0: "person"})
        self.tracks = read_mot(self.tracks_path, class_names=self.class_names,
                               gt=self.tracks_path.parent.name == "gt")
        self.events: list[Event] = []
        self.config: PocConfig | None = None

    def run(self, config: str | Path | dict | PocConfig) -> list[Event]:
        """Replay the config's rules; returns (and keeps) the events."""
        from ..rules import replay

        self.config = load_config(config)
        self.events = replay(self.config, self.tracks_path, fps=self.fps, source_id=self.source_id,
                             frame_size=self.frame_size, class_names=self.class_names)
        return self.events

    def _engine(self):
        from ..rules import RuleEngine

        cfg = self.config
        sid = self.source_id or cfg.sources[0].id
        rules = [r for r in cfg.rules if r.enabled and (r.sources is None or sid in r.sources)]
        return RuleEngine(rules, source_id=sid, frame_size=self.frame_size, class_names=self.class_names)

    def preview(self, event: Event) -> np.ndarray:
        """The event's frame: tracked boxes, zones and lines, the alarmed object(s) in red."""
        from ..sinks import annotate

        if self.frames is None:
            raise ValueError("no frames: give ScenarioReplay(frames=<video or image folder>) to preview alarms")
        if self.config is None:
            raise ValueError("run() the rules first")
        img = self.frames[max(0, event.frame)]
        dets = self.tracks.get(event.frame + 1, Detections.empty(self.class_names))
        ids = event.track_id if isinstance(event.track_id, list) else [event.track_id] if event.track_id is not None else []
        boxes = [event.bbox] if event.bbox is not None and not ids else []
        out = annotate(img, dets, engine=self._engine(), alarmed=[int(i) for i in ids], alarm_boxes=boxes)
        label = f"{event.rule} {event.type} t={event.time:.1f}s"
        cv2.putText(out, label, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2, cv2.LINE_AA)
        return out


class ReplayPanel:
    """Widget: replays the editor's rules on recorded tracks after each edit; table + alarm preview.

    ``ReplayPanel(editor, scenario).widget`` (it displays itself too).
    """

    def __init__(self, editor, scenario: ScenarioReplay, auto: bool = True, width: int = 640) -> None:
        import ipywidgets as W

        from .display import events_per_rule

        self._events_per_rule = events_per_rule
        self.editor, self.scenario = editor, scenario
        self.auto = W.Checkbox(value=auto, description="replay after every edit", indent=False)
        self.button = W.Button(description="Replay", icon="play", button_style="success")
        self.button.on_click(lambda _b: self.replay())
        self.summary = W.HTML()
        self.table = W.Output(layout=W.Layout(max_height="260px", overflow="auto"))
        self.slider = W.IntSlider(description="alarm", min=0, max=0, layout=W.Layout(width=f"{width}px"))
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{width}px", height="auto"))
        self.slider.observe(lambda ch: self._show(ch["new"]), "value")
        editor.on_change(lambda _e: self.auto.value and self.replay())
        self.widget = W.VBox([W.HBox([self.button, self.auto]), self.summary, self.table, self.slider, self.image])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def replay(self) -> list[Event]:
        """Re-run the rules as currently drawn (nothing saved); returns the events."""
        from IPython.display import display

        from .display import events_table
        from .scene import EditorError

        try:
            cfg = self.editor.poc_config()
        except (EditorError, ValueError) as e:
            self.summary.value = f"<span style='color:#c00'>{html.escape(str(e))}</span>"
            return []
        events = self.scenario.run(cfg)
        counts = self._events_per_rule(events, [r.name for r in cfg.rules])
        self.summary.value = ("<b>events per rule:</b> " +
                              ", ".join(f"{html.escape(k)}={v}" for k, v in counts.items()))
        self.table.clear_output()
        with self.table:
            display(events_table(events))
        self.slider.max = max(0, len(events) - 1)
        self.slider.value = 0
        self._show(0)
        return events

    def _show(self, i: int) -> None:
        from .editor import jpeg_bytes

        ev = self.scenario.events
        if not ev or self.scenario.frames is None:
            self.image.value = b""
            return
        self.image.value = jpeg_bytes(self.scenario.preview(ev[min(i, len(ev) - 1)]))
