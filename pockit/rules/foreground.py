"""Image-based helpers for rules that need pixels: static foreground (dual background) and appearance change.

Static foreground is the classic left-luggage method: two OpenCV MOG2 background models fed the same
frames with different learning rates. The long-term model keeps an object that was put down as
foreground for minutes; the short-term model absorbs it within ``short_seconds``. Pixels that are
foreground for the long-term model but background for the short-term one are *static foreground*.

What this module adds to the textbook method, so that it holds on footage it was not tuned on:

* **Evidence that forgets at once.** A pixel's static evidence (seconds) grows while it is static,
  is kept while something moves over it (long- and short-term foreground: occlusion), is capped at
  ``min_duration + 1`` s, and drops to zero the moment the long-term model sees background again. A
  person who stood for a minute and left therefore leaves no blob behind (no "empty floor" ghost).
* **Illumination robustness.** Each frame is scaled by one global gain so that its median brightness
  matches the long-term background (a global brightness ramp never becomes foreground); when static
  foreground still covers more than ``light_fraction`` of the frame (a lighting change over a large
  area), the evidence is cleared and the long-term model relearns the scene for ``short_seconds``.
* **Per-blob tests** (:meth:`StaticForeground.blob_tests`): *onset* (when the long-term model first saw
  the blob's pixels change: the moment the object arrived, for owner association), *photometric
  residual* (current vs long-term background after a gain/offset fitted on a ring around the blob: a
  local lighting change is explained by the fit, an object is not), *edge ratio* (gradient energy on
  the blob's outline now vs in the background: an object adds an outline, a ghost, i.e. the place a
  person or thing left, has its outline only in the background), *motion* (short-term foreground
  inside the blob) and *border* contact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CHANGE_LEVEL = 12  # grey levels between consecutive frames that count as a change (noise stays below)
CHANGE_SECONDS = 2.0  # a pixel that changed within this many seconds counts as moving


@dataclass
class Blob:
    """One static-foreground region. Boxes are in original-frame pixels."""

    box: np.ndarray
    area: float
    label: int
    onset: float  # median time the long-term model first saw these pixels as foreground
    border: bool  # touches the frame border
    scores: dict = field(default_factory=dict)


class StaticForeground:
    """Dual-background static-object detector working on a downscaled copy of each frame.

    ``update(image, t)`` returns the :class:`Blob` list of regions static for at least ``min_duration``
    seconds; ``moving`` is the short-term foreground mask (work resolution, uint8 0/1) and ``scale``
    (work px per original px) maps boxes. ``min_area`` is in original pixels^2.
    """

    def __init__(self, min_duration: float, min_area: float = 200.0, work_width: int = 320,
                 long_seconds: float = 1800.0, short_seconds: float = 1.5, var_threshold: float = 25.0,
                 light_fraction: float = 0.3) -> None:
        self.min_duration = float(min_duration)
        self.min_area = float(min_area)
        self.work_width = int(work_width)
        self.long_seconds = float(long_seconds)
        self.short_seconds = float(short_seconds)
        self.light_fraction = float(light_fraction)
        self.long = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold, detectShadows=False)
        self.short = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold, detectShadows=False)
        self.acc: np.ndarray | None = None
        self.onset: np.ndarray | None = None
        self.prev_long: np.ndarray | None = None
        self.scale = 1.0
        self.n = 0
        self.last_t: float | None = None
        self.dt = 1 / 25.0
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.moving: np.ndarray | None = None
        self.grey: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.gain = 1.0
        self.ref_level: float | None = None
        self.relearn_until = -1.0
        self.light_resets = 0
        self._bg_grey: np.ndarray | None = None
        self.changed: np.ndarray | None = None  # per pixel: last time it changed from one frame to the next

    # -- per frame ---------------------------------------------------------------------------------
    def _prep(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self.scale = min(1.0, self.work_width / w)
        small = cv2.resize(image, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA) \
            if self.scale < 1 else image
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def update(self, image: np.ndarray, t: float) -> list[Blob]:
        img = self._prep(image)
        if self.last_t is not None and t > self.last_t:
            self.dt = 0.9 * self.dt + 0.1 * (t - self.last_t) if self.n > 2 else t - self.last_t
        self.last_t = t
        fps = 1.0 / max(self.dt, 1e-3)
        self.n += 1
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        level = float(np.median(grey))
        # global gain: this frame's median brightness brought to the long-term background's
        if self.ref_level is not None and level > 1:
            self.gain = float(np.clip(self.ref_level / level, 0.25, 4.0))
            if abs(self.gain - 1) > 0.01:
                img = cv2.convertScaleAbs(img, alpha=self.gain)
                grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if self.grey is not None and self.grey.shape == grey.shape:
            if self.changed is None:
                self.changed = np.full(grey.shape, -1e9, np.float32)
            self.changed[cv2.absdiff(grey, self.grey) > CHANGE_LEVEL] = t
        self.grey = grey
        warm = self.n <= 10
        lr_long = max(1.0 / (self.long_seconds * fps), 1.0 / self.n if warm else 0.0)
        if t < self.relearn_until:
            lr_long = max(lr_long, 1.0 / (self.short_seconds * fps))
        lr_short = max(1.0 / (self.short_seconds * fps), 1.0 / self.n if warm else 0.0)
        fg_long = self.long.apply(img, learningRate=lr_long) > 0
        fg_short = self.short.apply(img, learningRate=lr_short) > 0
        self._bg_grey = None
        if self.n % 10 == 1 or self.ref_level is None:
            self.ref_level = float(np.median(self.bg_grey()))
        self.moving = fg_short.astype(np.uint8)
        static = fg_long & ~fg_short
        if self.acc is None:
            self.acc = np.zeros(static.shape, np.float32)
            self.onset = np.full(static.shape, t, np.float32)
            self.prev_long = fg_long
        # onset: when each pixel last turned long-term foreground
        self.onset[fg_long & ~self.prev_long] = t
        self.prev_long = fg_long
        cap = self.min_duration + 1.0
        self.acc[static] = np.minimum(self.acc[static] + self.dt, cap)
        self.acc[~fg_long] = 0.0  # background again: the evidence goes at once (no ghost of a person who left)
        if warm:
            self.acc[:] = 0
        if static.mean() > self.light_fraction and not warm:
            # a lighting change over a large area, not objects: forget and relearn the scene
            self.acc[:] = 0
            self.relearn_until = t + self.short_seconds
            self.light_resets += 1
        mask = (self.acc >= max(self.min_duration, self.dt)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        self.labels = lab
        H, W = mask.shape
        out = []
        s2 = self.scale * self.scale
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area / s2 < self.min_area:
                continue
            box = np.array([x, y, x + w, y + h], np.float64) / self.scale
            sel = lab[y:y + h, x:x + w] == k
            onset = float(np.median(self.onset[y:y + h, x:x + w][sel]))
            border = x <= 1 or y <= 1 or x + w >= W - 1 or y + h >= H - 1
            out.append(Blob(box, float(area / s2), k, onset, bool(border)))
        return out

    # -- per-blob tests ----------------------------------------------------------------------------
    def bg_grey(self) -> np.ndarray:
        """The long-term background image (grey, work resolution)."""
        if self._bg_grey is None:
            bg = self.long.getBackgroundImage()
            self._bg_grey = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY) if bg.ndim == 3 else bg
        return self._bg_grey

    def blob_tests(self, blob: Blob) -> dict:
        """Photometric residual, edge ratio and motion of ``blob`` in the last frame (see module doc).

        residual: mean |current - (a*background + b)| inside the blob in grey levels, a and b fitted on a
        ring around it (a local lighting change leaves ~0). edge: gradient energy on the blob outline
        now / (now + background): > 0.5 where an object added an outline, < 0.5 on a ghost.
        motion: fraction of the blob and its outline that changed from one frame to the next (by more than
        CHANGE_LEVEL grey levels) within the last CHANGE_SECONDS.
        """
        lab, cur, bg = self.labels, self.grey.astype(np.float32), self.bg_grey().astype(np.float32)
        H, W = lab.shape
        x1, y1, x2, y2 = (blob.box * self.scale).round().astype(int)
        pw, ph = max(3, (x2 - x1) // 2), max(3, (y2 - y1) // 2)
        X1, Y1, X2, Y2 = max(x1 - pw, 0), max(y1 - ph, 0), min(x2 + pw, W), min(y2 + ph, H)
        inside = lab[Y1:Y2, X1:X2] == blob.label
        c, b = cur[Y1:Y2, X1:X2], bg[Y1:Y2, X1:X2]
        grown = cv2.dilate(inside.astype(np.uint8), self.kernel, iterations=1).astype(bool)
        ring = ~grown & (self.moving[Y1:Y2, X1:X2] == 0)
        if ring.sum() >= 10:
            bv, cv = b[ring], c[ring]
            var = float(bv.var())
            if var > 4.0:
                a = float(np.cov(bv, cv, bias=True)[0, 1] / var)
                a = float(np.clip(a, 0.5, 2.0))
            else:
                a = float(cv.mean() / max(bv.mean(), 1.0))
            off = float(cv.mean() - a * bv.mean())
            ring_res = float(np.mean(np.abs(cv - (a * bv + off))))
        else:
            a, off, ring_res = 1.0, 0.0, 0.0
        res = float(np.mean(np.abs(c[inside] - (a * b[inside] + off)))) if inside.any() else 0.0
        outline = grown & ~cv2.erode(inside.astype(np.uint8), self.kernel, iterations=1).astype(bool)

        def energy(img):
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
            return float(np.sqrt(gx * gx + gy * gy)[outline].mean()) if outline.any() else 0.0

        ec, eb = energy(c), energy(b)
        edge = ec / (ec + eb) if ec + eb > 1e-6 else 0.5
        # motion on the blob and its outline: a person the detector missed sways, fidgets, breathes
        if self.changed is not None and grown.any():
            motion = float(np.mean(self.last_t - self.changed[Y1:Y2, X1:X2][grown] <= CHANGE_SECONDS))
        else:
            motion = 0.0
        return {"residual": res, "ring_residual": ring_res, "edge": edge, "motion": motion}

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
    x1, y1, x2, y2 = [int(np.floor(float(v) + 0.5)) for v in box]
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
