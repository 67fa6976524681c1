"""Rule replay: run a config's rules on recorded tracks (a MOTChallenge file) without any detector."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..core import Detections, Event, read_mot
from ..core.mot import seqinfo_for
from .engine import RuleEngine


def replay(config, tracks_path: str | Path, fps: float | None = None, source_id: str | None = None,
           frame_size: tuple[int, int] | None = None, class_names: Mapping[int, str] | None = None,
           progress: bool = False) -> list[Event]:
    """Events of ``config``'s rules on the tracks in ``tracks_path``: :func:`replay_rules` without the engine."""
    return replay_rules(config, tracks_path, fps, source_id, frame_size, class_names, progress)[0]


def replay_rules(config, tracks_path: str | Path, fps: float | None = None, source_id: str | None = None,
                 frame_size: tuple[int, int] | None = None, class_names: Mapping[int, str] | None = None,
                 progress: bool = False) -> tuple[list[Event], RuleEngine]:
    """(events, the rule engine after the last frame: its rules' counters) of ``config``'s rules on the tracks in
    ``tracks_path`` (MOT rows, frame 1-based).

    Frame f becomes index f-1 at time (f-1)/fps. fps: the argument, else seqinfo.ini (beside the file or
    its gt/ folder), else the config's source fps. source_id: the argument, else the first source of
    the config. frame_size (for normalized geometry): the argument, else seqinfo.ini imWidth/imHeight,
    else the source's resize. Files under a ``gt/`` folder are read with ground-truth conventions.
    """
    from ..config import load_config

    cfg = load_config(config)
    tracks_path = Path(tracks_path)
    info = seqinfo_for(tracks_path)
    src = None
    if source_id is not None:
        src = next((s for s in cfg.sources if s.id == source_id), None)
    elif cfg.sources:
        src = cfg.sources[0]
        source_id = src.id
    if fps is None and "framerate" in info:
        fps = float(info["framerate"])
    if fps is None and src is not None and src.fps:
        fps = float(src.fps)
    if not fps or fps <= 0:
        raise ValueError(f"{tracks_path}: frame rate unknown: pass --fps, put a seqinfo.ini (frameRate=) beside "
                         "the file or its gt/ folder, or set the source's fps in the config")
    if frame_size is None and "imwidth" in info and "imheight" in info:
        frame_size = (int(info["imwidth"]), int(info["imheight"]))
    if frame_size is None and src is not None and src.resize:
        frame_size = tuple(src.resize)
    names = dict(class_names or (cfg.model.class_names or {0: "person"}))
    tracks = read_mot(tracks_path, class_names=names, gt=tracks_path.parent.name == "gt")
    engine = RuleEngine(cfg.rules, source_id=source_id or "0", frame_size=frame_size, class_names=names)
    if not tracks:
        return [], engine
    last = max(max(tracks), int(info.get("seqlength", 0) or 0))
    empty = Detections.empty(names)
    events: list[Event] = []
    frames = range(1, last + 1)
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, desc=f"replay {tracks_path.name}", unit="frame")
    for f in frames:
        events.extend(engine.update(None, tracks.get(f, empty), (f - 1) / fps, f - 1))
    events.extend(engine.finish((last - 1) / fps, last - 1))
    return events, engine
