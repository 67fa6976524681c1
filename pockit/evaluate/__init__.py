"""pockit.evaluate: detection, tracking and event-level accuracy against ground truth."""
from .detection import DetectionReport, EvaluationError, evaluate_detections
from .events import EventReport, evaluate_events, fold_episodes, gt_events_from_tracks, match_events
from .tracking import TrackingReport, evaluate_tracks

__all__ = ["DetectionReport", "EvaluationError", "EventReport", "TrackingReport", "evaluate_detections",
           "evaluate_events", "evaluate_tracks", "fold_episodes", "gt_events_from_tracks", "match_events"]
