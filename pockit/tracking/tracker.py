from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..config import TrackerConfig
from ..core import Detections


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
    """

    def __init__(self, cfg: TrackerConfig | None = None, fps: float = 25.0) -> None:
        self.cfg = cfg or TrackerConfig()
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._impl = self._make_impl()
        self.tracks: dict[int, TrackState] = {}
        self._last_t: float | None = None

    def _make_impl(self):
        c = self.cfg
        if c.type == "none":
            return None
        import trackers

        buffer = max(0, int(round(c.lost_track_seconds * 30)))  # the library counts 30-fps frames
        common = dict(lost_track_buffer=buffer, frame_rate=self.fps,
                      minimum_consecutive_frames=c.minimum_consecutive_frames,
                      minimum_iou_threshold=c.minimum_iou_threshold)
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
        self._last_t = None

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
        tid = tid + 1  # the library counts from 0; MOTChallenge ids (and pockit's) start at 1
        res = Detections(
            xyxy=out.xyxy[keep],
            scores=(out.confidence[keep] if out.confidence is not None else np.ones(int(keep.sum()))),
            class_ids=(out.class_id[keep] if out.class_id is not None else np.zeros(int(keep.sum()))),
            track_ids=tid[keep],
            class_names=dets.class_names,
            # per-box attributes (extra models, embeddings) follow the detection each track was matched to
            data={k: np.asarray(v)[keep] for k, v in (getattr(out, "data", None) or {}).items() if k in dets.data},
        )
        self._book(res, timestamp)
        return res

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
        for tid, st in self.tracks.items():
            if tid in seen or st.state == "removed":
                continue
            st.state = "lost" if t - st.last_seen <= horizon else "removed"

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
        return len(self.tracks)


def make_tracker(cfg: TrackerConfig | None = None, fps: float = 25.0) -> Tracker:
    return Tracker(cfg, fps)
