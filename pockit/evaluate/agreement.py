"""How far two runs of one model agree, frame by frame: INT8 vs FP16 TensorRT engines (:func:`compare_precisions`),
on the shared box matcher (:func:`pockit.resolve.match_detections`: greedy one-to-one, same class, IoU >= thr)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..resolve import match_detections


@dataclass
class PrecisionReport:
    """INT8 vs FP16 detections on the same frames."""

    frames: int
    fp16_boxes: int
    int8_boxes: int
    matched: int
    mean_iou: float
    mean_score_drift: float

    @property
    def recall_vs_fp16(self) -> float:
        return 1.0 if self.fp16_boxes == 0 else self.matched / self.fp16_boxes

    @property
    def precision_vs_fp16(self) -> float:
        return 1.0 if self.int8_boxes == 0 else self.matched / self.int8_boxes

    def hints(self, min_recall: float = 0.95) -> list[str]:
        if self.recall_vs_fp16 >= min_recall and self.precision_vs_fp16 >= min_recall and self.mean_iou >= 0.9:
            return []
        return [
            (f"INT8 keeps {self.recall_vs_fp16:.1%} of the FP16 detections (precision {self.precision_vs_fp16:.1%}, "
             f"mean IoU {self.mean_iou:.3f}, score drift {self.mean_score_drift:+.3f}): INT8 loses accuracy here"),
            "calibrate with more frames from the customer's own cameras (>= 500, day and night, busy and empty scenes)",
            "try the other calibrator (--calib-algo minmax often suits detection heads better than entropy)",
            "keep the detection head in FP16: --fp16-layers '/model.22/.*' (Ultralytics YOLOv8 head) or deploy FP16",
            "delete the stale calibration cache after changing images (it is reused otherwise)",
        ]


def compare_precisions(fp16: Sequence, int8: Sequence, iou_thr: float = 0.5) -> PrecisionReport:
    """Match INT8 detections to FP16 ones frame by frame (same class, IoU >= thr); the score drift is the mean of
    (INT8 score - FP16 score) over the matched pairs."""
    if len(fp16) != len(int8):
        raise ValueError(f"{len(fp16)} FP16 frames vs {len(int8)} INT8 frames")
    n16 = n8 = 0
    ious: list[float] = []
    drift: list[float] = []
    for a, b in zip(fp16, int8):
        pairs = match_detections(a, b, iou_thr)
        n16, n8 = n16 + len(a), n8 + len(b)
        ious += [v for _, _, v in pairs]
        drift += [float(b.scores[j]) - float(a.scores[i]) for i, j, _ in pairs]
    return PrecisionReport(len(fp16), n16, n8, len(ious), float(np.mean(ious)) if ious else 1.0,
                           float(np.mean(drift)) if drift else 0.0)
