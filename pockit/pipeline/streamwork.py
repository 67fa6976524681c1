"""Tracking, rules and per-stream outputs of one stream, and the worker loop that runs a shard of streams.

:class:`StreamProcessor` owns everything that belongs to one stream after detection: its tracker, its
rule engine and its files (MOT tracks, annotated video, alarm clips, snapshots, reference frame, stills).
``process(frame, detections)`` returns the events raised on that frame with their snapshot/clip already
written. :func:`worker_loop` runs a set of streams (a shard) from a queue of detected frames, in a
thread of the main process or in a worker process (the same code): frames arrive in each stream's order,
events go back to the main process, which writes events.jsonl and the network sinks.
"""
from __future__ import annotations

import logging
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core import Detections, Frame, mot_rows
from .timing import StageTimer

log = logging.getLogger("pockit.pipeline")

TRACKS_FLUSH_S = 1.0


@dataclass
class StreamSpec:
    """What a worker needs to set a stream up (picklable)."""

    index: int
    id: str
    fps: float
    size: tuple[int, int] | None


class Nv12Frame(Frame):
    """A frame whose pool slot holds NVDEC's NV12 (``pipeline.nv12_streams``): its BGR ``image`` is made when
    first asked for, while the frame is being processed (the reference still, a snapshot, a clip, a rule that
    reads pixels); tracking and geometric rules never ask, so most frames are never converted on the CPU. Like
    a slot view, the image is valid while the frame is processed: whoever keeps it copies it."""

    def __init__(self, nv12: np.ndarray, index: int, timestamp: float, source_id: str) -> None:
        self._nv12, self._bgr = nv12, None
        self.index, self.timestamp, self.source_id, self.meta = index, timestamp, source_id, {}

    @property
    def image(self) -> np.ndarray:
        if self._bgr is None:
            self._bgr = cv2.cvtColor(self._nv12, cv2.COLOR_YUV2BGR_NV12)
        return self._bgr

    @property
    def size(self) -> tuple[int, int]:
        return self._nv12.shape[1], self._nv12.shape[0] * 2 // 3


class StreamProcessor:
    """Tracker + rules + outputs of one stream."""

    def __init__(self, cfg, spec: StreamSpec, run_dir: Path, class_names: dict[int, str], timer: StageTimer) -> None:
        from ..rules import RuleEngine
        from ..sinks import ClipRecorder, SnapshotWriter, VideoWriterSink
        from ..tracking import make_tracker

        self.cfg, self.spec, self.run_dir, self.timer = cfg, spec, Path(run_dir), timer
        self.class_names = dict(class_names)
        self.tracker = make_tracker(cfg.tracker, fps=spec.fps)
        rules = [r for r in cfg.rules if r.enabled and (r.sources is None or spec.id in r.sources)]
        self.engine = (RuleEngine(rules, source_id=spec.id, frame_size=spec.size, class_names=self.class_names)
                       if rules else None)
        # face privacy: faces are pixelated on the detector's output, before tracking, so no face reaches any
        # output (reference still, snapshots, clips, video, live view), tracked or not
        self.privacy_rules = [r for r in rules if getattr(r, "privacy", False)]
        out = cfg.outputs
        self.tracks_fh = None
        if out.tracks:
            (self.run_dir / "tracks").mkdir(parents=True, exist_ok=True)
            self.tracks_fh = open(self.run_dir / "tracks" / f"{spec.id}.txt", "w", encoding="utf-8")
        self._tracks_flushed = time.monotonic()
        self.video = VideoWriterSink(self.run_dir / "video" / f"{spec.id}.mp4", fps=spec.fps) if out.video else None
        self.clips = (ClipRecorder(self.run_dir / "clips", seconds=out.clip_seconds, fps=spec.fps, engine=self.engine)
                      if out.clip_seconds > 0 else None)
        self.snapshots = SnapshotWriter(self.run_dir) if out.snapshots else None
        self.live = None
        if out.live is not None:  # the annotated MJPEG view (pockit.sinks.live), drawn only while watched
            from ..sinks.live import LivePublisher

            self.live = LivePublisher(out.live, spec.id, rules, self.class_names)
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None
        self.last_ts = 0.0
        self.last_index = -1
        self.first_frame_saved = False
        self.next_still_t = 0.0
        self.closed = False

    def process(self, frame: Frame, dets: Detections) -> list:
        """One frame: track, apply rules, write outputs; returns the events (snapshot/clip written)."""
        if self.privacy_rules:
            from ..faces.rules import blur_for_rules

            blur_for_rules(frame.image, dets, self.privacy_rules)
        with self.timer.time("tracking"):
            tracked = self.tracker.update(dets, frame.timestamp)
        events = []
        if self.engine is not None:
            with self.timer.time("rules"):
                events = self.engine.update(frame, tracked, frame.timestamp, frame.index)
        with self.timer.time("output"):
            self.frames += 1
            self.last_ts, self.last_index = frame.timestamp, frame.index
            if self.width is None:
                self.width, self.height = frame.size
            if not self.first_frame_saved:
                ref = self.run_dir / "reference" / f"{self.spec.id}.jpg"
                ref.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(ref), frame.image)
                self.first_frame_saved = True
            if self.tracks_fh is not None:
                if len(tracked):
                    self.tracks_fh.write("\n".join(mot_rows(frame.index + 1, tracked)) + "\n")
                now = time.monotonic()
                if now - self._tracks_flushed >= TRACKS_FLUSH_S:  # a killed run keeps its tracks up to here
                    self.tracks_fh.flush()
                    self._tracks_flushed = now
            if self.clips is not None:
                self.clips.push(frame, tracked)
            self._evidence(events, frame, tracked)
            if self.video is not None:
                self.video.write(frame, tracked, self.engine)
            if self.live is not None:
                self.live.publish(frame, tracked, self.engine)
            every = self.cfg.outputs.frames_every
            if every and frame.timestamp >= self.next_still_t:
                from ..sinks import annotate

                still = self.run_dir / "frames" / self.spec.id / f"{frame.index:06d}.jpg"
                still.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(still), annotate(frame.image, tracked, self.engine))
                self.next_still_t = frame.timestamp + every
        return events

    def _evidence(self, events, frame, tracked) -> None:
        box = self.cfg.outputs.box_id
        for ev in events:
            if box:  # several boxes, one PoC: which box raised it, and when (wall clock), before any output
                ev.extra.setdefault("box", box)
                ev.extra.setdefault("raised_at", round(time.time(), 3))
            if self.snapshots is not None and frame is not None:
                try:
                    self.snapshots.save(frame, tracked, ev, self.engine)
                except Exception as e:  # a failed snapshot never loses the event
                    log.warning("snapshot for event %s failed: %s", ev.id, e)
            if self.clips is not None:
                self.clips.trigger(ev)

    def finish(self) -> list:
        """Close the stream: the rules' closing records (open crowd/dwell states) and every file."""
        if self.closed:
            return []
        self.closed = True
        events = []
        try:
            if self.engine is not None:
                events = self.engine.finish(self.last_ts, self.last_index)
                self._evidence(events, None, Detections.empty())
        finally:
            for obj in (self.tracks_fh, self.video, self.clips, self.live):
                if obj is not None:
                    try:
                        obj.close()
                    except Exception as e:
                        log.error("closing an output of %s failed: %s", self.spec.id, e)
        return events

    def summary(self) -> dict[str, Any]:
        return {"frames": self.frames, "width": self.width, "height": self.height, "last_ts": self.last_ts,
                "last_index": self.last_index, "tracks": int(getattr(self.tracker, "total_tracks", 0) or 0)}


def pack_frames(items: list[tuple]) -> tuple:
    """One shard's frames of a batch -> one ``"frames"`` message for its worker.

    ``items``: ``(stream, slot, h, w, index, timestamp, t_capture, xyxy, scores, class_ids, data|None, nv12)`` per
    frame. The message carries the scalars as one list of tuples and the boxes, scores and class ids of all its
    frames as three byte strings: pickling numpy arrays (~7 us each through multiprocessing's pickler) three times
    a frame was the largest single user of the inference process's interpreter lock in a 32-stream GPU profile
    (benchmarks/README.md, fourteenth session). Extra per-box arrays (``data``) are rare and travel per frame, as
    they are."""
    meta = [(it[0], it[1], it[2], it[3], it[4], it[5], it[6], bool(it[11]), len(it[8])) for it in items]
    xyxy = b"".join([_raw(it[7], np.float32) for it in items])
    scores = b"".join([_raw(it[8], np.float32) for it in items])
    cls = b"".join([_raw(it[9], np.int32) for it in items])
    data = [it[10] or None for it in items]
    return ("frames", meta, xyxy, scores, cls, data if any(d is not None for d in data) else None)


def _raw(a, dtype) -> bytes:
    a = np.asarray(a)
    return (a if a.dtype == dtype else a.astype(dtype)).tobytes()


def unpack_frames(msg: tuple):
    """A :func:`pack_frames` message -> the per-frame tuples it was made of, in order (each frame's arrays are views
    of one writable array per field)."""
    _, meta, xyxy, scores, cls, data = msg
    xyxy = np.frombuffer(xyxy, np.float32).reshape(-1, 4).copy()
    scores = np.frombuffer(scores, np.float32).copy()
    cls = np.frombuffer(cls, np.int32).copy()
    off = 0
    for i, (s, slot, h, w, index, ts, tcap, nv12, k) in enumerate(meta):
        yield (s, slot, h, w, index, ts, tcap, xyxy[off:off + k], scores[off:off + k], cls[off:off + k],
               data[i] if data is not None else None, nv12)
        off += k


def worker_loop(wid: int, cfg_data: dict, base_dir: str | None, specs: list[StreamSpec], run_dir: str,
                class_names: dict[int, str], pool_name: str | None, slot_bytes: int, inq, outq,
                pool_buf: np.ndarray | None = None, in_process: bool = False) -> None:
    """Run the streams ``specs`` from ``inq`` until ``None``; results go to ``outq``.

    Messages in: ``("frames", ...)`` made by :func:`pack_frames` (read back with :func:`unpack_frames`; ``nv12``: the
    slot holds the frame as NV12, made BGR only when asked, :class:`Nv12Frame`),
    ``("end", stream)``, ``None`` (shut down). Messages out: ``("done", wid, slots, frames_per_stream,
    events, latencies, busy_s)`` with events as ``(stream, event_dict, t_capture)``, ``("final", wid, stream,
    summary)``, ``("error", wid, stream, message)``, ``("bye", wid, timer_export, busy_s)``.
    """
    if not in_process:  # Ctrl-C goes to the main process, which shuts workers down in order
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from .decodeproc import single_threaded_opencv

        single_threaded_opencv()
    from ..config import parse_config

    timer = StageTimer()
    busy_total = 0.0
    procs: dict[int, StreamProcessor] = {}
    failed: set[int] = set()
    attached = None
    try:
        cfg = parse_config(cfg_data, "<pipeline worker>")
        if base_dir is not None:
            object.__setattr__(cfg, "_base_dir", base_dir)
        if pool_buf is None:
            from .framepool import AttachedPool

            attached = AttachedPool(pool_name, slot_bytes)
            pool_buf = attached.buf
        from .framepool import nv12_view, slot_view

        for sp in specs:
            try:
                procs[sp.index] = StreamProcessor(cfg, sp, Path(run_dir), class_names, timer)
            except Exception as e:
                failed.add(sp.index)
                outq.put(("error", wid, sp.index, f"setting up tracking/rules failed: {type(e).__name__}: {e}"))
        while True:
            msg = inq.get()
            if msg is None:
                break
            kind = msg[0]
            if kind == "end":
                s = msg[1]
                p = procs.get(s)
                if p is not None and s not in failed:
                    _finish_stream(wid, s, p, outq, failed)
                continue
            t0 = time.perf_counter()
            slots, counts, events, lats = [], {}, [], []
            for s, slot, h, w, index, ts, tcap, xyxy, scores, cls, data, nv12 in unpack_frames(msg):
                slots.append(slot)
                p = procs.get(s)
                if p is None or s in failed:
                    continue
                try:
                    if nv12:  # NVDEC's frame, left for the model to convert on the GPU
                        frame = Nv12Frame(nv12_view(pool_buf, slot_bytes, slot, h, w), index, ts, p.spec.id)
                    else:
                        frame = Frame(slot_view(pool_buf, slot_bytes, slot, h, w), index, ts, p.spec.id)
                    dets = Detections(xyxy, scores, cls, class_names=class_names, data=data or {})
                    for ev in p.process(frame, dets):
                        events.append((s, ev.to_dict(), tcap))
                    counts[s] = counts.get(s, 0) + 1
                    lats.append(time.monotonic() - tcap)
                except Exception as e:
                    failed.add(s)
                    log.error("stream %s: tracking/rules/outputs failed on frame %d: %s", p.spec.id, index, e)
                    outq.put(("error", wid, s, f"tracking/rules/outputs failed on frame {index}: "
                                               f"{type(e).__name__}: {e}"))
                    try:
                        p.finish()
                    except Exception:
                        pass
                    outq.put(("final", wid, s, p.summary()))
            busy = time.perf_counter() - t0
            busy_total += busy
            outq.put(("done", wid, slots, counts, events, lats, busy))
        for s, p in procs.items():
            if s not in failed and not p.closed:
                _finish_stream(wid, s, p, outq, failed)
    except BaseException as e:  # the worker itself broke: say so, the main process reports the streams
        outq.put(("error", wid, None, f"worker {wid} failed: {type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        if attached is not None:
            attached.close()
        outq.put(("bye", wid, timer.export(), busy_total))


def _finish_stream(wid, s, p, outq, failed) -> None:
    try:
        evs = p.finish()
        if evs:
            outq.put(("done", wid, [], {}, [(s, ev.to_dict(), None) for ev in evs], [], 0.0))
    except Exception as e:
        failed.add(s)
        outq.put(("error", wid, s, f"closing rules/outputs failed: {type(e).__name__}: {e}"))
    outq.put(("final", wid, s, p.summary()))
