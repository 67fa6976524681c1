"""Letterbox preprocessing shared by every backend, and the inverse box mapping.

The arithmetic follows Ultralytics' ``LetterBox`` (centred padding, value 114, bilinear resize,
``round(dh -/+ 0.1)`` split of odd padding) so that pockit's ONNX/TensorRT backends see the same
network input as Ultralytics itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxInfo:
    """How one original frame maps into the network input.

    ``ratio``: scale applied to the original; ``pad``: (left, top) pixels added;
    ``orig_shape``: (h, w) of the original; ``input_shape``: (h, w) of the network input.
    """

    ratio: float
    pad: tuple[int, int]
    orig_shape: tuple[int, int]
    input_shape: tuple[int, int]


def _as_hw(imgsz: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(imgsz, (int, np.integer)):
        return int(imgsz), int(imgsz)
    h, w = (int(v) for v in imgsz)
    return h, w


def target_shape(
    shapes: Sequence[tuple[int, int]], imgsz: int | Sequence[int], stride: int = 32, auto: bool = False
) -> tuple[int, int]:
    """Network input (h, w) for a batch of original (h, w) shapes.

    ``auto=False``: exactly ``imgsz`` (square when an int). ``auto=True`` (dynamic-shape models):
    the smallest stride multiple that holds the letterboxed frame; only when all frames share one
    shape, otherwise falls back to ``imgsz``.
    """
    th, tw = _as_hw(imgsz)
    if not auto or len(set(map(tuple, shapes))) != 1:
        return th, tw
    h, w = shapes[0]
    r = min(th / h, tw / w)
    nw, nh = round(w * r), round(h * r)
    return nh + (th - nh) % stride, nw + (tw - nw) % stride


def letterbox(
    image: np.ndarray, new_shape: tuple[int, int], scaleup: bool = True
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize ``image`` (HxWxC) keeping aspect and pad with 114 to ``new_shape`` (h, w), centred."""
    if image is None or not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"letterbox expects an HxWx3 uint8 BGR image, got {type(image).__name__} of shape {shape}")
    h, w = image.shape[:2]
    nh_t, nw_t = new_shape
    r = min(nh_t / h, nw_t / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = (nw_t - new_w) / 2, (nh_t - new_h) / 2
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return image, LetterboxInfo(ratio=r, pad=(left, top), orig_shape=(h, w), input_shape=(nh_t, nw_t))


def preprocess_batch(
    images: Sequence[np.ndarray],
    imgsz: int | Sequence[int] = 640,
    stride: int = 32,
    auto: bool = False,
    dtype: np.dtype | type = np.float32,
) -> tuple[np.ndarray, list[LetterboxInfo]]:
    """BGR uint8 frames -> (B, 3, H, W) RGB array scaled to [0, 1] in ``dtype``, plus per-frame info."""
    if len(images) == 0:
        raise ValueError("preprocess_batch needs at least one image")
    shapes = []
    for i, im in enumerate(images):
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(
                f"image {i}: expected an HxWx3 BGR numpy array, got {type(im).__name__} "
                f"with shape {getattr(im, 'shape', None)}"
            )
        shapes.append(im.shape[:2])
    new_shape = target_shape(shapes, imgsz, stride, auto)
    out = np.empty((len(images), 3, *new_shape), dtype=dtype)
    infos = []
    for i, im in enumerate(images):
        boxed, info = letterbox(im, new_shape)
        if boxed.dtype != np.uint8:
            boxed = np.clip(boxed, 0, 255).astype(np.uint8)
        # BGR -> RGB, HWC -> CHW, /255: one contiguous divide per colour plane straight into the batch (the same
        # values as ``boxed[:, :, ::-1].transpose(2, 0, 1) / 255``, ~4x faster: no strided pass, no temporary)
        planes = cv2.split(boxed)
        for c in range(3):
            np.divide(planes[2 - c], np.float32(255.0), out=out[i, c], dtype=out.dtype)
        infos.append(info)
    return out, infos


def scale_boxes(xyxy: np.ndarray, info: LetterboxInfo, clip: bool = True) -> np.ndarray:
    """Map (N, 4) xyxy boxes from network-input pixels back to original-frame pixels (clipped)."""
    b = np.asarray(xyxy, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] -= info.pad[0]
    b[:, [1, 3]] -= info.pad[1]
    b /= np.float32(info.ratio)
    if clip:
        h, w = info.orig_shape
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b
