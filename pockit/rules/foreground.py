"""Image-based helpers for rules that need pixels: static foreground (dual background) and appearance change.

Static foreground is the classic left-luggage method: two OpenCV MOG2 background models fed the same
frames with different learning rates. The long-term model keeps an object that was put down as
foreground for a long time; the short-term model absorbs it within seconds. Pixels that are foreground
for the long-term model but background for the short-term one are *static foreground*; a pixel that
stays static for ``min_duration`` seconds belongs to a stationary object candidate.
"""
from __future__ import annotations

import cv2
import numpy as np


class StaticForeground:
    """Dual-background static-object detector working on a downscaled grey copy of each frame.

    ``update(image, t)`` returns (blobs, moving): blobs is a list of (xyxy in original pixels, area px^2)
    of regions static for at least ``min_duration`` seconds; moving is the short-term foreground mask
    (work resolution, uint8 0/1) with ``scale`` (work px per original px) to map boxes.
    """

    def __init__(self, min_duration: float, min_area: float = 200.0, work_width: int = 320,
                 long_seconds: float = 300.0, short_seconds: float = 1.5, var_threshold: float = 25.0) -> None:
        self.min_duration = float(min_duration)
        self.min_area = float(min_area)
        self.work_width = int(work_width)
        self.long_seconds = float(long_seconds)
        self.short_seconds = float(short_seconds)
        self.long = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold, detectShadows=False)
        self.short = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold, detectShadows=False)
        self.acc: np.ndarray | None = None
        self.scale = 1.0
        self.n = 0
        self.last_t: float | None = None
        self.dt = 1 / 25.0
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.moving: np.ndarray | None = None

    def _prep(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self.scale = min(1.0, self.work_width / w)
        small = cv2.resize(image, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA) \
            if self.scale < 1 else image
        return cv2.GaussianBlur(small, (5, 5), 0)

    def update(self, image: np.ndarray, t: float) -> list[tuple[np.ndarray, float]]:
        img = self._prep(image)
        if self.last_t is not None and t > self.last_t:
            self.dt = 0.9 * self.dt + 0.1 * (t - self.last_t) if self.n > 2 else t - self.last_t
        self.last_t = t
        fps = 1.0 / max(self.dt, 1e-3)
        self.n += 1
        # warm-up: learn fast for the first frames so the models start from the real scene
        lr_long = max(1.0 / (self.long_seconds * fps), 1.0 / self.n if self.n <= 10 else 0.0)
        lr_short = max(1.0 / (self.short_seconds * fps), 1.0 / self.n if self.n <= 10 else 0.0)
        fg_long = self.long.apply(img, learningRate=lr_long) > 0
        fg_short = self.short.apply(img, learningRate=lr_short) > 0
        self.moving = fg_short.astype(np.uint8)
        static = fg_long & ~fg_short
        if self.acc is None:
            self.acc = np.zeros(static.shape, np.float32)
        # evidence in seconds: grows while static, decays twice as fast otherwise
        self.acc = np.where(static, self.acc + self.dt, np.maximum(self.acc - 2 * self.dt, 0)).astype(np.float32)
        if self.n <= 10:
            self.acc[:] = 0
        mask = (self.acc >= max(self.min_duration, self.dt)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel)
        n, _lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        out = []
        s2 = self.scale * self.scale
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area / s2 < self.min_area:
                continue
            box = np.array([x, y, x + w, y + h], np.float64) / self.scale
            out.append((box, float(area / s2)))
        return out

    def moving_fraction(self, box: np.ndarray, exclude: np.ndarray | None = None) -> float:
        """Fraction of short-term (moving) foreground pixels inside ``box`` (original pixels), minus ``exclude``."""
        if self.moving is None:
            return 0.0
        H, W = self.moving.shape
        x1, y1, x2, y2 = (np.asarray(box) * self.scale).round().astype(int)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
        if x2 <= x1 or y2 <= y1:
            return 0.0
        region = self.moving[y1:y2, x1:x2].astype(np.float32)
        total = region.size
        if exclude is not None:
            ex1, ey1, ex2, ey2 = (np.asarray(exclude) * self.scale).round().astype(int)
            ex1, ey1, ex2, ey2 = max(ex1 - x1, 0), max(ey1 - y1, 0), min(ex2 - x1, x2 - x1), min(ey2 - y1, y2 - y1)
            if ex2 > ex1 and ey2 > ey1:
                region[ey1:ey2, ex1:ex2] = 0
                total -= (ex2 - ex1) * (ey2 - ey1)
        return float(region.sum() / max(total, 1))


def patch(image: np.ndarray, box, size: int = 48) -> np.ndarray | None:
    """Grey, blurred, mean-removed patch of ``box`` resized to at most size x size (None if empty)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = [int(round(v)) for v in box]
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = image[y1:y2, x1:x2]
    if crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    crop = cv2.GaussianBlur(crop, (3, 3), 0)
    return crop - crop.mean()


def appearance_change(ref: np.ndarray, cur: np.ndarray, pixel_threshold: float = 25.0) -> float:
    """Fraction (0..1) of pixels whose brightness differs by more than ``pixel_threshold`` (mean-removed)."""
    return float(np.mean(np.abs(ref - cur) > pixel_threshold))
