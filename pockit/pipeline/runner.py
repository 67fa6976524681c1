"""The pipeline: Source -> Detector -> Tracker -> RuleEngine -> Sinks, for one or many streams.

Each source decodes in its own thread into one shared bounded queue; the main thread takes up to
``model.batch`` frames from whatever streams have frames ready and runs them through the detector
in one call, so a slow stream never stalls the others. Tracking, rules and outputs run in a worker
thread while the next batch is inferred; they keep per-source state and each source's frame order.
Outputs go to a run directory (layout in docs/CONTRACTS.md); events are flushed as raised and
everything is closed cleanly on Ctrl-C or on a source error.
"""
from __future__ import annotations

import json
import logging
import platform
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2

from ..config import PocConfig, load_config, resolve_path
from ..core import Detections, Event, Frame, mot_rows
from .rundir import make_run_dir, resolve_media
from .timing import StageTimer

log = logging.getLogger("pockit.pipeline")
_END = object()


@dataclass
class SourceSummary:
    id: str
    uri: str
    frames: int = 0
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float = 0.0
    tracks: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunSummary:
    name: str
    run_dir: str
    frames: int
    wall_s: float
    fps: float
    sources: dict[str, SourceSummary]
    events_per_rule: dict[str, int]
    timings: dict[str, dict[str, float]]
    model: dict[str, Any]
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def events_path(self) -> Path:
        return Path(self.run_dir) / "events.jsonl"

    def events(self) -> list[Event]:
        from ..core import read_events

        return read_events(self.events_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = {k: asdict(v) for k, v in self.sources.items()}
        return d

    def table(self) -> str:
        lines = [f"run: {self.run_dir}", f"{'source':<16}{'frames':>8}{'fps':>8}{'tracks':>8}  status"]
        for s in self.sources.values():
            status = "ERROR: " + s.error if s.error else "ok"
            fps = s.frames / self.wall_s if self.wall_s else 0.0
            lines.append(f"{s.id:<16}{s.frames:>8}{fps:>8.1f}{s.tracks:>8}  {status}")
        lines.append(f"total: {self.frames} frames in {self.wall_s:.1f} s = {self.fps:.1f} fps"
                     + ("  (interrupted)" if self.interrupted else ""))
        if self.events_per_rule:
            lines.append("events: " + ", ".join(f"{k}={v}" for k, v in sorted(self.events_per_rule.items())))
        else:
            lines.append("events: none")
        stages = "  ".join(f"{k} {v['mean_ms']:.1f}" for k, v in self.timings.items())
        lines.append(f"mean ms/frame: {stages}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # notebooks
        import html

        return "<pre>" + html.escape(self.table()) + "</pre>"


class _Stream:
    """Per-source runtime state."""

    def __init__(self, cfg, source, tracker, engine) -> None:
        self.cfg, self.source, self.tracker, self.engine = cfg, source, tracker, engine
        self.thread: threading.Thread | None = None
        self.summary = SourceSummary(id=cfg.id, uri=str(cfg.uri))
        self.tracks_fh = None
        self.video = None
        self.clips = None
        self.pbar = None
        self.last_ts = 0.0
        self.last_index = -1
        self.first_frame_saved = False
        self.next_still_t = 0.0


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("pockit", "numpy", "cv2", "onnxruntime", "trackers", "supervision", "pydantic"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception:  # pragma: no cover - optional
            pass
    return out


class Pipeline:
    """Run a PoC config. ``Pipeline(cfg).run()`` returns a :class:`RunSummary`.

    ``detector`` may be passed in (an already loaded :class:`pockit.inference.Detector`) to
    reuse a model across runs, e.g. in notebooks.
    """

    def __init__(self, config: str | Path | dict | PocConfig, run_dir: str | Path | None = None,
                 detector=None, progress: bool = True, max_frames: int | None = None,
                 overwrite: bool = False) -> None:
        self.cfg = load_config(config)
        self.run_dir_arg = run_dir
        self.detector = detector
        self.progress = progress
        self.max_frames = max_frames
        self.overwrite = overwrite
        self.timer = StageTimer()
        self._stop = threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=max(4, 2 * self.cfg.model.batch * len(self.cfg.sources)))

    # -- setup ---------------------------------------------------------------------------------
    def _open_sources(self) -> list[_Stream]:
        from ..rules import RuleEngine
        from ..sources import open_source
        from ..tracking import make_tracker

        streams = []
        for sc in self.cfg.sources:
            uri = sc.uri if isinstance(sc.uri, int) else resolve_media(self.cfg, sc.uri)
            max_frames = sc.max_frames
            if self.max_frames is not None:
                max_frames = min(max_frames or self.max_frames, self.max_frames)
            src = open_source(uri, source_id=sc.id, fps=sc.fps, max_frames=max_frames, start=sc.start,
                              loop=sc.loop, resize=sc.resize, **sc.options)
            fps = sc.fps or src.fps or 25.0
            tracker = make_tracker(self.cfg.tracker, fps=fps)
            rules = [r for r in self.cfg.rules if r.enabled and (r.sources is None or sc.id in r.sources)]
            names = self.detector.class_names if self.detector is not None else {}
            engine = RuleEngine(rules, source_id=sc.id, frame_size=src.size, class_names=names) if rules else None
            st = _Stream(sc, src, tracker, engine)
            st.summary.uri = str(uri)
            st.summary.fps = float(fps)
            streams.append(st)
        return streams

    def _load_detector(self):
        if self.detector is None:
            from ..inference import load_detector

            m = self.cfg.model.model_copy()
            m.path = resolve_path(self.cfg, m.path)
            self.detector = load_detector(m)
        return self.detector

    # -- threads -------------------------------------------------------------------------------
    def _reader(self, st: _Stream) -> None:
        it = iter(st.source)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                self.timer.add("decode", time.perf_counter() - t0)
                while not self._stop.is_set():
                    try:
                        self.queue.put((st, frame), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as e:  # a broken source ends that stream, not the run
            st.summary.error = f"{type(e).__name__}: {e}"
            log.error("source %s failed: %s", st.cfg.id, st.summary.error)
        finally:
            while True:
                try:
                    self.queue.put((st, _END), timeout=0.1)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        try:
                            self.queue.get_nowait()
                        except queue.Empty:
                            pass

    def _next_batch(self, batch: int) -> list:
        items = [self.queue.get()]
        deadline = time.perf_counter() + (0.005 if batch > 1 else 0)
        while len(items) < batch:
            try:
                items.append(self.queue.get(timeout=max(0.0, deadline - time.perf_counter())) if batch > 1
                             else self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    # -- per frame -----------------------------------------------------------------------------
    def _process(self, st: _Stream, frame: Frame, dets: Detections, sinks, snapshots) -> None:
        with self.timer.time("tracking"):
            tracked = st.tracker.update(dets, frame.timestamp)
        events: list[Event] = []
        if st.engine is not None:
            with self.timer.time("rules"):
                events = st.engine.update(frame, tracked, frame.timestamp, frame.index)
        with self.timer.time("output"):
            st.summary.frames += 1
            st.last_ts, st.last_index = frame.timestamp, frame.index
            if st.summary.width is None:
                st.summary.width, st.summary.height = frame.size
            if not st.first_frame_saved:
                ref = self.run_dir / "reference" / f"{st.cfg.id}.jpg"
                ref.parent.mkdir(exist_ok=True)
                cv2.imwrite(str(ref), frame.image)
                st.first_frame_saved = True
            if st.tracks_fh is not None and len(tracked):
                st.tracks_fh.write("\n".join(mot_rows(frame.index + 1, tracked)) + "\n")
            if st.clips is not None:
                st.clips.push(frame, tracked)
            self._emit(st, events, frame, tracked, sinks, snapshots)
            if st.video is not None:
                st.video.write(frame, tracked, st.engine)
            every = self.cfg.outputs.frames_every
            if every and frame.timestamp >= st.next_still_t:
                from ..sinks import annotate

                still = self.run_dir / "frames" / st.cfg.id / f"{frame.index:06d}.jpg"
                still.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(still), annotate(frame.image, tracked, st.engine))
                st.next_still_t = frame.timestamp + every
            if st.pbar is not None:
                st.pbar.update(1)

    def _emit(self, st, events, frame, tracked, sinks, snapshots) -> None:
        for ev in events:
            if snapshots is not None and frame is not None:
                try:
                    snapshots.save(frame, tracked, ev, st.engine)
                except Exception as e:  # a failed snapshot never loses the event
                    log.warning("snapshot for event %s failed: %s", ev.id, e)
            if st.clips is not None:
                st.clips.trigger(ev)
            for s in sinks:
                try:
                    s.write(ev)
                except Exception as e:
                    log.error("sink %s failed on event %s: %s", type(s).__name__, ev.id, e)
            if ev.end is None:  # closing records (crowd end) are not new alarms
                self.events_per_rule[ev.rule] += 1

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        from ..sinks import ClipRecorder, SnapshotWriter, VideoWriterSink, make_sinks

        cfg = self.cfg
        detector = self._load_detector()
        streams = self._open_sources()
        self.run_dir = make_run_dir(cfg, self.run_dir_arg, self.overwrite)
        cfg.to_yaml(self.run_dir / "config.yaml")
        self.events_per_rule: Counter = Counter()
        sinks = make_sinks(cfg.outputs, self.run_dir)
        snapshots = SnapshotWriter(self.run_dir) if cfg.outputs.snapshots else None
        (self.run_dir / "tracks").mkdir(exist_ok=True)
        progress = self.progress
        if progress:
            from tqdm.auto import tqdm
        for i, st in enumerate(streams):
            if cfg.outputs.tracks:
                st.tracks_fh = open(self.run_dir / "tracks" / f"{st.cfg.id}.txt", "w", encoding="utf-8")
            if cfg.outputs.video:
                st.video = VideoWriterSink(self.run_dir / "video" / f"{st.cfg.id}.mp4", fps=st.summary.fps)
            if cfg.outputs.clip_seconds > 0:
                st.clips = ClipRecorder(self.run_dir / "clips", seconds=cfg.outputs.clip_seconds,
                                        fps=st.summary.fps, engine=st.engine)
            if progress:
                st.pbar = tqdm(total=st.source.total, desc=st.cfg.id, position=i, unit="frame",
                               leave=True, dynamic_ncols=True)
        interrupted = False
        failure: BaseException | None = None
        t_start = time.perf_counter()
        started = datetime.now().isoformat(timespec="seconds")
        for st in streams:
            st.thread = threading.Thread(target=self._reader, args=(st,), name=f"decode-{st.cfg.id}", daemon=True)
            st.thread.start()
        live = len(streams)
        # tracking, rules and outputs run in one worker thread (one, so each source keeps its frame order)
        # while the next batch is inferred: ONNX Runtime / torch / TensorRT release the GIL while they compute
        post_q: queue.Queue = queue.Queue(maxsize=4)
        post_error: list[BaseException] = []

        def post_worker() -> None:
            while True:
                item = post_q.get()
                if item is None:
                    return
                if post_error:
                    continue  # drain after a failure
                try:
                    for (st, fr), d in zip(*item):
                        self._process(st, fr, d, sinks, snapshots)
                except BaseException as e:  # surfaced by the inference loop
                    post_error.append(e)

        worker = threading.Thread(target=post_worker, name="track-rules-output", daemon=True)
        worker.start()

        def hand_over(item) -> None:
            while True:
                if post_error:
                    raise post_error[0]
                try:
                    post_q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        try:
            while live:
                items = self._next_batch(cfg.model.batch)
                frames = []
                for st, fr in items:
                    if fr is _END:
                        live -= 1
                    else:
                        frames.append((st, fr))
                if not frames:
                    continue
                dets = detector.detect([fr.image for _, fr in frames])
                lt = getattr(detector, "last_timings", {}) or {}
                for stage in ("preprocess", "inference", "postprocess"):
                    if stage in lt:
                        self.timer.add(stage, lt[stage], len(frames))
                hand_over((frames, dets))
            hand_over(None)
            worker.join()
            if post_error:
                raise post_error[0]
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: flushing outputs to %s", self.run_dir)
        except Exception as e:  # the detector or a stage failed: keep what was produced, then re-raise
            failure = e
            log.error("run failed (%s: %s); outputs so far are kept in %s", type(e).__name__, e, self.run_dir)
        finally:
            if worker.is_alive():  # interrupted or failed: finish the frames already inferred, then stop
                while True:
                    try:
                        post_q.put(None, timeout=0.1)
                        break
                    except queue.Full:
                        if not worker.is_alive():
                            break
                worker.join()
            if post_error and failure is None and not interrupted:
                failure = post_error[0]
            self._stop.set()
            for st in streams:
                if st.engine is not None:
                    try:
                        self._emit(st, st.engine.finish(st.last_ts, st.last_index), None, Detections.empty(),
                                   sinks, None)
                    except Exception as e:
                        log.error("closing rules of %s failed: %s", st.cfg.id, e)
                for obj in (st.tracks_fh, st.video, st.clips):
                    if obj is not None:
                        obj.close()
                if st.pbar is not None:
                    st.pbar.close()
                try:
                    st.source.close()
                except Exception:
                    pass
            for s in sinks:
                s.close()
            for st in streams:
                if st.thread is not None:
                    st.thread.join(timeout=2)
        wall = time.perf_counter() - t_start
        for st in streams:
            st.summary.tracks = st.tracker.total_tracks
            st.summary.stats = dict(getattr(st.source, "stats", {}) or {})
            st.summary.duration_s = float(st.last_ts) if st.summary.frames else 0.0
            if st.summary.frames == 0 and st.summary.error is None and not interrupted:
                st.summary.error = "no frames decoded"
        total = sum(st.summary.frames for st in streams)
        summary = RunSummary(
            name=cfg.name, run_dir=str(self.run_dir), frames=total, wall_s=wall,
            fps=total / wall if wall > 0 else 0.0,
            sources={st.cfg.id: st.summary for st in streams},
            events_per_rule={r.name: self.events_per_rule.get(r.name, 0) for r in cfg.rules},
            timings=self.timer.summary(), model=dict(getattr(detector, "info", {}) or {}),
            interrupted=interrupted,
            errors=[f"{st.cfg.id}: {st.summary.error}" for st in streams if st.summary.error]
            + ([f"pipeline: {type(failure).__name__}: {failure}"] if failure is not None else []),
        )
        record = summary.to_dict()
        record.update(config=cfg.model_dump(mode="json"), versions=_versions(), started=started,
                      finished=datetime.now().isoformat(timespec="seconds"),
                      batch=cfg.model.batch, tracks_per_source={k: v.tracks for k, v in summary.sources.items()})
        (self.run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        if failure is not None:
            raise RuntimeError(f"run failed after {total} frames: {type(failure).__name__}: {failure} "
                               f"(events, tracks and run.json so far are in {self.run_dir})") from failure
        return summary


def run(config, run_dir=None, detector=None, progress: bool = True, max_frames: int | None = None,
        overwrite: bool = False) -> RunSummary:
    """Run a PoC config (YAML path, dict or PocConfig) to the end; returns the :class:`RunSummary`.

    run_dir: where outputs go (default ``outputs.dir/<name>-<time>``); an earlier run there is
    refused unless ``overwrite``. detector: an already loaded detector to reuse."""
    return Pipeline(config, run_dir=run_dir, detector=detector, progress=progress, max_frames=max_frames,
                    overwrite=overwrite).run()
