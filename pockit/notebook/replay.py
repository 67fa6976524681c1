"""Replay rules on recorded tracks from a notebook and preview the alarms on the real frames.

:class:`ScenarioReplay` (no widgets) wraps :func:`pockit.rules.replay`; :class:`ReplayPanel` ties it
to a :class:`~pockit.notebook.editor.ZoneEditor` so every edit re-runs the rules at once.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..config import PocConfig, load_config
from ..core import Detections, Event, read_mot, write_events

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
        self._fed: tuple[object, int] | None = None  # (engine, last MOT frame fed) for previews in time order

    def run(self, config: str | Path | dict | PocConfig) -> list[Event]:
        """Replay the config's rules; returns (and keeps) the events."""
        from ..rules import replay

        self.config = load_config(config)
        self._fed = None
        self.events = replay(self.config, self.tracks_path, fps=self.fps, source_id=self.source_id,
                             frame_size=self.frame_size, class_names=self.class_names)
        return self.events

    def _engine(self):
        from ..rules import RuleEngine

        cfg = self.config
        sid = self.source_id or cfg.sources[0].id
        rules = [r for r in cfg.rules if r.enabled and (r.sources is None or sid in r.sources)]
        return RuleEngine(rules, source_id=sid, frame_size=self.frame_size, class_names=self.class_names)

    def replay_fps(self) -> float:
        """The frame rate the replay uses (as :func:`pockit.rules.replay`: argument, seqinfo.ini, source fps)."""
        from ..core.mot import seqinfo_for

        if self.fps:
            return float(self.fps)
        info = seqinfo_for(self.tracks_path)
        if "framerate" in info:
            return float(info["framerate"])
        sid = self.source_id or self.config.sources[0].id
        src = next((s for s in self.config.sources if s.id == sid), None)
        if src is not None and src.fps:
            return float(src.fps)
        raise ValueError(f"{self.tracks_path}: frame rate unknown: give ScenarioReplay(fps=...)")

    def engine_at(self, frame: int):
        """The rule engine after the tracks up to 0-based ``frame`` (its line counters, zone occupancy as the
        replay had them then). Consecutive calls in time order continue the same engine."""
        if self._fed is None or self._fed[1] > frame + 1:
            self._fed = (self._engine(), 0)
        engine, done = self._fed
        fps = self.replay_fps()
        empty = Detections.empty(self.class_names)
        for f in range(done + 1, frame + 2):
            engine.update(None, self.tracks.get(f, empty), (f - 1) / fps, f - 1)
        self._fed = (engine, max(done, frame + 1))
        return engine

    def preview(self, event: Event) -> np.ndarray:
        """The event's frame: tracked boxes, zones and lines (line counters as of that frame), the alarmed
        object(s) in red."""
        from ..sinks import annotate

        if self.frames is None:
            raise ValueError("no frames: give ScenarioReplay(frames=<video or image folder>) to preview alarms")
        if self.config is None:
            raise ValueError("run() the rules first")
        img = self.frames[max(0, event.frame)]
        dets = self.tracks.get(event.frame + 1, Detections.empty(self.class_names))
        ids = event.track_id if isinstance(event.track_id, list) else [event.track_id] if event.track_id is not None else []
        boxes = [event.bbox] if event.bbox is not None and not ids else []
        out = annotate(img, dets, engine=self.engine_at(max(0, event.frame)), alarmed=[int(i) for i in ids], alarm_boxes=boxes)
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
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{width}px", max_width="100%", height="auto",
                                                             display="none"))
        self.empty = W.HTML("<i>no alarms: nothing to preview</i>")
        self.slider.observe(lambda ch: self._show(ch["new"]), "value")
        editor.on_change(lambda _e: self.auto.value and self.replay())
        self.widget = W.VBox([W.HBox([self.button, self.auto]), self.summary, self.table, self.slider, self.image,
                              self.empty])

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
        if not ev or self.scenario.frames is None:  # hidden, not an empty image (a broken-image icon)
            self.image.layout.display = "none"
            self.slider.layout.display = "none"
            self.empty.value = ("<i>no alarms: nothing to preview</i>" if not ev else
                                "<i>no frames to preview (give ScenarioReplay(frames=...))</i>")
            self.empty.layout.display = None
            return
        self.image.value = jpeg_bytes(self.scenario.preview(ev[min(i, len(ev) - 1)]))
        self.image.layout.display = None
        self.slider.layout.display = None
        self.empty.layout.display = "none"


def gt_tracks_beside(source: str | Path | None) -> Path | None:
    """Ground-truth tracks recorded with a source, when there are any: ``<MOT folder>/gt/gt.txt`` for a MOT
    sequence folder (or its ``img1/``), ``<video stem>.gt.txt`` / ``gt/gt.txt`` beside a video; else None
    (a camera URI, or footage nobody annotated)."""
    if source is None:
        return None
    p = Path(str(source)).expanduser()
    if "://" in str(source) or not p.exists():
        return None
    cands = []
    if p.is_dir():
        seq = p.parent if p.name == "img1" else p
        cands.append(seq / "gt" / "gt.txt")
    else:
        cands += [p.with_suffix(".gt.txt"), p.parent / "gt" / "gt.txt"]
    return next((c for c in cands if c.is_file()), None)


def save_verdicts(events: Sequence[Event], verdicts: Mapping[str, bool], path: str | Path,
                  missed: Sequence[Mapping | Event] = ()) -> list[Event]:
    """Ground-truth events from an engineer's verdicts on alarms, written as JSONL for
    ``pockit eval events --gt PATH`` and ``pockit report RUN --gt PATH``.

    events: the alarms (a run's ``events.jsonl`` or a replay); verdicts: ``{event id: True/False}``
    (True = a real event, kept as ground truth; False = a false alarm, left out). Every alarm needs a
    verdict. missed: real events no alarm was raised for (dicts with at least rule, type, time; source
    defaults to the alarms' source), added as they are. Returns the ground-truth events written (closing
    records of an episode are not ground truth: only the alarm that opened it is judged).
    """
    from ..evaluate.events import is_closing

    alarms = [e for e in events if not is_closing(e)]
    ids = {e.id for e in alarms}
    unknown = sorted(str(k) for k in verdicts if k not in ids)
    if unknown:
        raise ValueError(f"verdicts for unknown alarm id(s) {unknown[:5]}: the alarms are {sorted(ids)[:5]}...")
    bad = {k: v for k, v in verdicts.items() if not isinstance(v, (bool, np.bool_))}
    if bad:
        raise ValueError(f"verdicts must be True (real event) or False (false alarm); got {bad}")
    pending = [e.id for e in alarms if e.id not in verdicts]
    if pending:
        raise ValueError(f"{len(pending)} alarm(s) have no verdict yet: {pending[:5]} (mark each True or False)")
    sources = {str(e.source) for e in alarms}
    gt: list[Event] = []
    for e in alarms:
        if verdicts[e.id]:
            d = e.to_dict()
            d["extra"] = {**(d.get("extra") or {}), "verdict_of": e.id}
            d.pop("snapshot", None)
            d.pop("clip", None)
            gt.append(Event.from_dict(d))
    for i, m in enumerate(missed):
        d = m.to_dict() if isinstance(m, Event) else dict(m)
        if "source" not in d and len(sources) == 1:
            d["source"] = next(iter(sources))
        try:
            gt.append(Event.from_dict(d))
        except (TypeError, ValueError) as err:
            raise ValueError(f"missed[{i}]: {err}") from None
    gt.sort(key=lambda e: (str(e.source), float(e.time)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_events(gt, path)
    return gt


class VerdictPanel:
    """Widget: one row per alarm (its picture and a True / False toggle); :attr:`verdicts` is the
    ``{event id: bool}`` dict :func:`save_verdicts` takes (alarms not marked yet are absent).

    ``image``: a callable giving the picture of an alarm (e.g. ``ScenarioReplay.preview``, or a reader
    of the run's snapshot), or None for a table without pictures.
    """

    def __init__(self, events: Sequence[Event], image=None, width: int = 320,
                 verdicts: Mapping[str, bool] | None = None) -> None:
        import ipywidgets as W

        from ..evaluate.events import is_closing
        from .editor import jpeg_bytes

        self.events = [e for e in events if not is_closing(e)]
        self.verdicts: dict[str, bool] = {k: bool(v) for k, v in (verdicts or {}).items()}
        self.toggles: dict[str, W.ToggleButtons] = {}
        self.count = W.HTML()
        rows = []
        for e in self.events:
            tb = W.ToggleButtons(options=[("real event", True), ("false alarm", False)],
                                 value=self.verdicts.get(e.id), style={"button_width": "110px"})
            tb.observe(lambda ch, eid=e.id: self._mark(eid, ch["new"]), "value")
            self.toggles[e.id] = tb
            label = W.HTML(f"<b>{html.escape(e.rule)}</b> {html.escape(e.type)}<br>t={e.time:.1f} s, "
                           f"track {html.escape(str(e.track_id))}<br><code>{html.escape(e.id)}</code>")
            parts = [label, tb]
            if image is not None:
                img = image(e)
                if img is not None:
                    parts.insert(0, W.Image(value=jpeg_bytes(img), format="jpeg",
                                            layout=W.Layout(width=f"{width}px", height="auto")))
            rows.append(W.HBox(parts, layout=W.Layout(align_items="center", gap="12px")))
        self._update()
        self.widget = W.VBox([self.count, *rows] if rows else [W.HTML("no alarms to judge")])

    def _mark(self, event_id: str, value) -> None:
        if value is None:
            self.verdicts.pop(event_id, None)
        else:
            self.verdicts[event_id] = bool(value)
        self._update()

    def _update(self) -> None:
        n = len(self.events)
        real = sum(self.verdicts.values())
        self.count.value = (f"<b>{len(self.verdicts)}/{n}</b> alarms judged: {real} real, "
                            f"{len(self.verdicts) - real} false")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
