"""Multi-object tracking: an adapter over Roboflow's maintained ``trackers`` package
(ByteTrack, SORT, OC-SORT: Kalman filter and assignment are theirs), adding what the rules
need: confirmed/lost state per track, per-track trajectory history, timestamps in seconds.
"""
from .tracker import Tracker, TrackState, make_tracker

__all__ = ["TrackState", "Tracker", "make_tracker"]
