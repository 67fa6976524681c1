"""Decode + NMS for YOLO-family outputs, shared by every backend.

Identical raw outputs give identical boxes whatever backend produced them. Supported layouts:

- ``v8``   (B, 4+nc[+nm], N): cx, cy, w, h, class scores (Ultralytics YOLOv8/11 export, no NMS)
- ``v8t``  (B, N, 4+nc[+nm]): the same, transposed (some TensorRT/DeepStream exports)
- ``v5``   (B, N, 5+nc[+nm]): cx, cy, w, h, objectness, class scores (YOLOv5/v7 style)
- ``nms``  (B, N, 6): x1, y1, x2, y2, score, class with NMS already applied (end-to-end exports)
- ``nms4`` four tensors ``num_dets`` (B,1), ``det_boxes`` (B,K,4) xyxy, ``det_scores`` (B,K),
  ``det_classes`` (B,K) (TensorRT EfficientNMS plugin)

Semantics follow Ultralytics ``non_max_suppression`` (single label per box: the best class;
``score > conf``; class filter applied to the best class; at most ``max_nms`` candidates by score;
class-aware NMS by offsetting boxes per class; ``iou > threshold`` suppresses).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.detections import Detections
from .preprocess import LetterboxInfo, scale_boxes

LAYOUTS = ("auto", "v8", "v8t", "v5", "nms", "nms4")
NMS4_NAMES = ("num_dets", "det_boxes", "det_scores", "det_classes")
MAX_WH = 7680.0  # class offset for class-aware NMS (larger than any input side)
MAX_NMS = 30000  # candidates kept for NMS per image

RawDets = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (N,4) f32, scores (N,) f32, class ids (N,) i32


class OutputLayoutError(ValueError):
    """The model's output tensors are not a YOLO layout pockit knows."""


def xywh2xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b)
    half_w, half_h = b[..., 2] / 2, b[..., 3] / 2
    out[..., 0] = b[..., 0] - half_w
    out[..., 1] = b[..., 1] - half_h
    out[..., 2] = b[..., 0] + half_w
    out[..., 3] = b[..., 1] + half_h
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS. Returns kept indices by descending score; a box is dropped when its IoU with a
    kept, higher-scoring box is > ``iou_threshold`` (torchvision semantics; ties keep input order)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if not rest.size:
            break
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float, agnostic: bool = False
) -> np.ndarray:
    """Class-aware NMS (boxes of different classes never suppress each other) via a per-class offset."""
    offset = 0.0 if agnostic else np.asarray(class_ids, np.float32)[:, None] * np.float32(MAX_WH)
    return nms(np.asarray(boxes, np.float32) + offset, scores, iou_threshold)


# -- layout detection ------------------------------------------------------------------------

def _arrays(outputs: Any) -> list[np.ndarray] | dict[str, np.ndarray]:
    if isinstance(outputs, Mapping):
        return {k: np.asarray(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def _is_nms4(arrs) -> bool:
    if isinstance(arrs, dict):
        return all(n in arrs for n in NMS4_NAMES)
    if len(arrs) != 4:
        return False
    n, b, s, c = arrs
    return (
        b.ndim == 3 and b.shape[-1] == 4 and s.ndim == 2 and c.ndim == 2 and n.size == b.shape[0]
        and s.shape == b.shape[:2] and c.shape == b.shape[:2]
    )


def _looks_like_nms(a: np.ndarray) -> bool:
    """(B, N, 6) rows that look post-NMS: few rows, integral class column, scores in [0, 1]."""
    if a.shape[1] > 1000:
        return False
    cls, score = a[..., 5], a[..., 4]
    return bool(np.all(cls == np.round(cls)) and np.all((score >= 0) & (score <= 1)))


def detect_layout(outputs: Any, nc: int | None = None) -> str:
    """Guess the layout of raw model outputs (see module doc); ``nc`` disambiguates when known."""
    arrs = _arrays(outputs)
    if _is_nms4(arrs):
        return "nms4"
    if isinstance(arrs, dict):
        arrs = list(arrs.values())
    if not arrs:
        raise OutputLayoutError("the model produced no output tensors")
    a = arrs[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise OutputLayoutError(
            f"unsupported detector output of shape {tuple(a.shape)}: expected (B, 4+nc, N), (B, N, 5+nc), "
            f"(B, N, 6) or the 4 EfficientNMS tensors {NMS4_NAMES}"
        )
    _, d1, d2 = a.shape
    if d2 == 6 and _looks_like_nms(a):
        return "nms"
    if nc is not None:  # exact channel counts first
        exact = [name for name, ok in (("v8", d1 == 4 + nc), ("v5", d2 == 5 + nc), ("v8t", d2 == 4 + nc)) if ok]
        if len(exact) == 1:
            return exact[0]
        if not exact:  # extra channels (mask coefficients, 32 for Ultralytics/YOLOv5 seg)
            if d1 < d2 and d1 > 4 + nc:
                return "v8"
            if d2 - (5 + nc) == 32:
                return "v5"
            if d2 > 4 + nc:
                return "v8t"
            raise OutputLayoutError(f"output of shape {tuple(a.shape)} does not fit a YOLO head with {nc} classes")
    if d1 < d2:
        if d1 < 5:
            raise OutputLayoutError(f"output of shape {tuple(a.shape)} has {d1} channels; a YOLO head needs 4+nc")
        return "v8"
    if d2 < 6:
        raise OutputLayoutError(f"output of shape {tuple(a.shape)} is not a YOLO layout")
    return "v5"


# -- decode ----------------------------------------------------------------------------------

def _select(
    xyxy: np.ndarray, scores: np.ndarray, cls: np.ndarray, iou: float, classes, max_det: int, agnostic: bool,
    run_nms: bool = True,
) -> RawDets:
    if classes is not None:
        m = np.isin(cls, np.asarray(list(classes), np.int64))
        xyxy, scores, cls = xyxy[m], scores[m], cls[m]
    if len(scores) > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        xyxy, scores, cls = xyxy[top], scores[top], cls[top]
    if run_nms:
        keep = batched_nms(xyxy, scores, cls, iou, agnostic)[:max_det]
    else:
        keep = np.argsort(-scores, kind="stable")[:max_det]
    return xyxy[keep].astype(np.float32), scores[keep].astype(np.float32), cls[keep].astype(np.int32)


def decode(
    outputs: Any,
    *,
    conf: float = 0.25,
    iou: float = 0.45,
    classes: Sequence[int] | None = None,
    max_det: int = 300,
    nc: int | None = None,
    agnostic: bool = False,
    layout: str = "auto",
) -> list[RawDets]:
    """Raw outputs -> per image (xyxy, scores, class_ids) in network-input pixels."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown output layout {layout!r}; expected one of {LAYOUTS}")
    if layout == "auto":
        layout = detect_layout(outputs, nc)
    arrs = _arrays(outputs)

    if layout == "nms4":
        if isinstance(arrs, dict):
            num, boxes, scores, cls = (arrs[n] for n in NMS4_NAMES)
        else:
            num, boxes, scores, cls = arrs
        num = num.reshape(-1).astype(np.int64)
        res = []
        for b in range(boxes.shape[0]):
            k = int(min(num[b], boxes.shape[1]))
            xb, sb, cb = boxes[b, :k].astype(np.float32), scores[b, :k].astype(np.float32), cls[b, :k].astype(np.int32)
            m = sb > conf
            res.append(_select(xb[m], sb[m], cb[m], iou, classes, max_det, agnostic, run_nms=False))
        return res

    a = (list(arrs.values()) if isinstance(arrs, dict) else arrs)[0].astype(np.float32, copy=False)
    if a.ndim == 2:
        a = a[None]
    if layout == "v8":
        a = a.transpose(0, 2, 1)  # (B, N, C)
    res = []
    if layout == "nms":
        for b in range(a.shape[0]):
            x = a[b]
            m = x[:, 4] > conf
            x = x[m]
            res.append(_select(x[:, :4], x[:, 4], x[:, 5].astype(np.int32), iou, classes, max_det, agnostic,
                               run_nms=False))
        return res
    if layout in ("v8", "v8t"):
        k = nc if nc is not None else a.shape[2] - 4
        if a.shape[2] < 4 + k:
            raise OutputLayoutError(f"output rows have {a.shape[2]} values; {k} classes need {4 + k}")
        score_mat = a[..., 4:4 + k]
        obj = None
    elif layout == "v5":
        k = nc if nc is not None else a.shape[2] - 5
        if a.shape[2] < 5 + k:
            raise OutputLayoutError(f"output rows have {a.shape[2]} values; {k} classes need {5 + k}")
        obj = a[..., 4]
        score_mat = a[..., 5:5 + k]
    else:  # pragma: no cover - guarded above
        raise ValueError(layout)
    if k < 1:
        raise OutputLayoutError(f"output of shape {tuple(a.shape)} has no class scores")
    for b in range(a.shape[0]):
        x = a[b]
        s = score_mat[b]
        if obj is not None:
            cand = obj[b] > conf
            x, s = x[cand], s[cand] * obj[b][cand][:, None]
        cls = s.argmax(1)
        best = s[np.arange(len(s)), cls] if len(s) else np.zeros(0, np.float32)
        m = best > conf
        res.append(_select(xywh2xyxy(x[m, :4]), best[m], cls[m].astype(np.int32), iou, classes, max_det, agnostic))
    return res


def to_detections(raw: Sequence[RawDets], infos: Sequence[LetterboxInfo], class_names: Mapping[int, str]) -> list[Detections]:
    """Network-pixel raw detections -> :class:`Detections` in original-frame pixels."""
    if len(raw) != len(infos):
        raise ValueError(f"{len(raw)} decoded outputs for {len(infos)} images")
    return [
        Detections(xyxy=scale_boxes(x, info), scores=s, class_ids=c, class_names=dict(class_names))
        for (x, s, c), info in zip(raw, infos)
    ]


def postprocess(
    outputs: Any,
    infos: Sequence[LetterboxInfo],
    class_names: Mapping[int, str],
    **kw,
) -> list[Detections]:
    """decode + scale back to each original frame; ``kw`` as :func:`decode`."""
    if "nc" not in kw and class_names:
        kw["nc"] = max(class_names) + 1
    return to_detections(decode(outputs, **kw), infos, class_names)
