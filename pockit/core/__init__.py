from .detections import ANCHORS, Detections, box_iou
from .events import Event, read_events, write_events
from .frame import Frame

__all__ = ["ANCHORS", "Detections", "Event", "Frame", "box_iou", "read_events", "write_events"]
from .mot import MotFormatError, load_mot_array, mot_rows, read_mot, write_mot  # noqa: E402

__all__ += ["MotFormatError", "load_mot_array", "mot_rows", "read_mot", "write_mot"]
