from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..config import TrackerConfig
from ..core import Detections

REID_VELOCITY_WINDOW = 0.5  # seconds of a lost track's last positions that give its velocity


@dataclass
class TrackState:
    track_id: int
    class_id: int
    first_seen: float
    last_seen: float
    hits: int = 0
    state: str = "confirmed"  # confirmed | lost | removed
    history: deque = field(default_factory=deque)  # (timestamp, x1, y1, x2, y2)


class Tracker:
    """One tracker per source. ``update`` returns the confirmed tracks of this frame only.

    A track is *confirmed* once matched ``minimum_consecutive_frames`` frames in a row; it is
    *lost* while unmatched but kept for re-association (``lost_track_seconds``), then *removed*.

    Re-identification (``reid_distance`` > 0): the library re-associates a lost track only when its
    Kalman-predicted box still overlaps a detection (IoU >= ``minimum_iou_threshold``); after an occlusion
    the prediction has often drifted (small or slow people, a second or so unseen), the library starts a new
    track, and the person gets a second id: a loitering dwell restarts, a line is crossed twice. When the
    library confirms a new track, it takes the id of the lost track (lost for at most
    ``lost_track_seconds``, unseen since before the new track began, same class, box height within a factor
    1.5) whose centre, continued at its recent velocity, lies nearest to the new box's centre, within
    ``reid_distance`` box heights. Distances in box heights and times in seconds: the same rule for any
    frame size and frame rate. Ids are pockit's own (1, 2, ... in confirmation order; equal to the library's
    id + 1 when nothing is re-identified).
    """

    def __init__(self, cfg: TrackerConfig | None = None, fps: float = 25.0) -> None:
        self.cfg = cfg or TrackerConfig()
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._impl = self._make_impl()
        self.tracks: dict[int, TrackState] = {}  # confirmed and lost tracks; removed ones are forgotten
        self._removed = 0
        self._last_t: float | None = None
        self._ids: dict[int, int] = {}  # library id -> pockit id
        self._owner: dict[int, int] = {}  # pockit id -> the library id that holds it now
        self._next_id = 1
        self.reidentified = 0  # new library tracks given a lost track's id

    def _make_impl(self):
        c = self.cfg
        if c.type == "none":
            return None
        import trackers

        buffer = max(0, round(c.lost_track_seconds * 30))  # the library counts 30-fps frames
        common = {"lost_track_buffer": buffer, "frame_rate": self.fps,
                  "minimum_consecutive_frames": c.minimum_consecutive_frames,
                  "minimum_iou_threshold": c.minimum_iou_threshold}
        if c.type == "bytetrack":
            return trackers.ByteTrackTracker(track_activation_threshold=c.track_activation_threshold,
                                             high_conf_det_threshold=c.high_conf_det_threshold, **common)
        if c.type == "sort":
            return trackers.SORTTracker(track_activation_threshold=c.track_activation_threshold, **common)
        if c.type == "ocsort":
            return trackers.OCSORTTracker(high_conf_det_threshold=c.high_conf_det_threshold, **common)
        raise ValueError(f"unknown tracker type {c.type!r}")

    def reset(self) -> None:
        self._impl = self._make_impl()
        self.tracks.clear()
        self._removed = 0
        self._last_t = None
        self._ids.clear()
        self._owner.clear()
        self._next_id = 1
        self.reidentified = 0

    def update(self, dets: Detections, timestamp: float | None = None) -> Detections:
        if timestamp is None:
            timestamp = 0.0 if self._last_t is None else self._last_t + 1.0 / self.fps
        if self._impl is None:
            return Detections.empty(dets.class_names)
        if self._last_t is not None and timestamp <= self._last_t:
            # the library skips out-of-order frames with a warning; keep time strictly increasing
            timestamp = self._last_t + 1e-6
        self._last_t = timestamp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self._impl.update(dets.to_supervision(), timestamp=timestamp)
        tid = np.asarray(out.tracker_id if out.tracker_id is not None else np.full(len(out), -1), np.int64)
        keep = tid >= 0
        tid = self._pockit_ids(tid[keep], out.xyxy[keep],
                               out.class_id[keep] if out.class_id is not None else np.zeros(int(keep.sum())),
                               timestamp)
        res = Detections(
            xyxy=out.xyxy[keep],
            scores=(out.confidence[keep] if out.confidence is not None else np.ones(int(keep.sum()))),
            class_ids=(out.class_id[keep] if out.class_id is not None else np.zeros(int(keep.sum()))),
            track_ids=tid,
            class_names=dets.class_names,
            # per-box attributes (extra models, embeddings) follow the detection each track was matched to
            data={k: np.asarray(v)[keep] for k, v in (getattr(out, "data", None) or {}).items() if k in dets.data},
        )
        self._book(res, timestamp)
        return res

    def _pockit_ids(self, lib: np.ndarray, xyxy: np.ndarray, cls: np.ndarray, t: float) -> np.ndarray:
        """pockit ids (from 1) for this frame's confirmed library ids; new ones may re-identify a lost track."""
        out = np.empty(len(lib), np.int64)
        new = []
        for k, li in enumerate(lib.tolist()):
            pid = self._ids.get(li)
            if pid is not None and self._owner.get(pid) != li:
                pid = None  # its id went to a re-identified track meanwhile: this one is someone else
            if pid is None:
                new.append(k)
            out[k] = -1 if pid is None else pid
        if new:
            taken = {int(p) for p in out if p > 0}
            for k, pid in self._reidentify(new, xyxy, cls, t, taken).items():
                out[k] = pid
                self.reidentified += 1
            for k in new:
                if out[k] < 0:
                    out[k] = self._next_id
                    self._next_id += 1
                prev = self._owner.get(int(out[k]))
                if prev is not None:  # re-identified: the old library track no longer speaks for this id
                    self._ids.pop(prev, None)
                self._ids[int(lib[k])] = int(out[k])
                self._owner[int(out[k])] = int(lib[k])
        return out

    def _reidentify(self, new: list[int], xyxy: np.ndarray, cls: np.ndarray, t: float, taken: set) -> dict[int, int]:
        c = self.cfg
        if c.reid_distance <= 0 or not new:
            return {}
        # the new library track began minimum_consecutive_frames - 1 frames ago: a lost track seen since then
        # coexisted with it (another object)
        began = t - (c.minimum_consecutive_frames - 0.5) / self.fps
        cands = [st for st in self.tracks.values() if st.state != "removed" and st.track_id not in taken
                 and st.last_seen < began and t - st.last_seen <= c.lost_track_seconds + 1e-6]
        if not cands:
            return {}
        pairs = []
        for k in new:
            b = xyxy[k]
            cx, cy, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[3] - b[1]
            for st in cands:
                if st.class_id != int(cls[k]):
                    continue
                hist = np.asarray(st.history, np.float64).reshape(-1, 5)
                last = hist[-1]
                lh = last[4] - last[2]
                if h <= 0 or lh <= 0 or not (1 / 1.5 <= h / lh <= 1.5):
                    continue
                lc = np.array([(last[1] + last[3]) / 2, (last[2] + last[4]) / 2])
                recent = hist[hist[:, 0] >= last[0] - REID_VELOCITY_WINDOW]
                v = np.zeros(2)
                if len(recent) >= 2 and recent[-1, 0] > recent[0, 0]:
                    first = np.array([(recent[0, 1] + recent[0, 3]) / 2, (recent[0, 2] + recent[0, 4]) / 2])
                    v = (lc - first) / (recent[-1, 0] - recent[0, 0])
                pred = lc + v * (t - last[0])
                # a person who stopped while hidden is where they were last seen: the nearer of the two
                d = np.hypot(cx - pred[0], cy - pred[1]) / max(h, lh)
                if d <= c.reid_distance:
                    pairs.append((d, k, st.track_id))
        done: dict[int, int] = {}
        used = set()
        for d, k, pid in sorted(pairs):
            if k in done or pid in used:
                continue
            done[k] = pid
            used.add(pid)
        return done

    def _book(self, res: Detections, t: float) -> None:
        seen = set()
        for box, tid, cid in zip(res.xyxy, res.track_ids, res.class_ids):
            tid = int(tid)
            seen.add(tid)
            st = self.tracks.get(tid)
            if st is None:
                st = self.tracks[tid] = TrackState(tid, int(cid), t, t, history=deque(maxlen=self.cfg.history))
            st.last_seen, st.hits, st.state, st.class_id = t, st.hits + 1, "confirmed", int(cid)
            st.history.append((t, *map(float, box)))
        horizon = self.cfg.lost_track_seconds
        gone = []
        for tid, st in self.tracks.items():
            if tid in seen:
                continue
            if t - st.last_seen <= horizon:
                st.state = "lost"
            else:
                gone.append(tid)
        # a removed track (and its history) is forgotten: memory stays flat on a camera that runs for weeks
        for tid in gone:
            del self.tracks[tid]
            li = self._owner.pop(tid, None)
            if li is not None and self._ids.get(li) == tid:
                del self._ids[li]
        self._removed += len(gone)

    # -- queries -------------------------------------------------------------------------------
    def history(self, track_id: int) -> np.ndarray:
        """(K, 5) array of (timestamp, x1, y1, x2, y2) for a track, oldest first."""
        st = self.tracks.get(int(track_id))
        return np.asarray(st.history, np.float64).reshape(-1, 5) if st else np.zeros((0, 5))

    @property
    def active_ids(self) -> list[int]:
        return [t for t, s in self.tracks.items() if s.state == "confirmed"]

    @property
    def lost_ids(self) -> list[int]:
        return [t for t, s in self.tracks.items() if s.state == "lost"]

    @property
    def total_tracks(self) -> int:
        """Tracks confirmed since the start (or the last reset), including removed ones."""
        return len(self.tracks) + self._removed


def make_tracker(cfg: TrackerConfig | None = None, fps: float = 25.0) -> Tracker:
    return Tracker(cfg, fps)
