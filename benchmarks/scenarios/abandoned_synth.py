"""Adversarial and positive abandoned-object clips composed from real footage.

Background: frame 0 of ``video/one-by-one-person-detection.mp4`` (an empty room, wooden floor), at half
size (384x216), 10 fps. People: real person silhouettes cut from frames 300 and 600 of the same clip
(pixels differing from frame 0). Bag: the real bag of ``video/ABODA_video4.avi`` (frame 1100, box
451,367,52,48, pixels differing from frame 100). Each clip yields ``(image, t, people)`` where people
is a list of (track id, xyxy box) of the pasted persons *that a detector could see* (a person the
scenario says the detector missed is pasted but not listed).

Clips (``CLIPS``):

* ``ghost``: a person stands in the room from the first frame for 8 s (learned into the background
  at start-up) and walks out; another walks in, stands still 20 s, walks out. Nothing is left.
* ``lighting``: a person walks through; the whole frame dims to 60 % over 5 s; a bright patch of
  light (a sun spot, 15 % of the frame) switches on on the floor just as a second person passes it.
* ``crouch``: an undetected person crouches, half outside the right border, fidgeting for 25 s, and
  another crouches in the middle of the room swaying for 22 s; a detected person walks past both
  as they appear. Nobody leaves anything.
* ``left_bag``: a person walks in carrying a bag, puts it down, stands 4 s, walks out of view; the bag
  stays 30 s. Exactly one alarm is expected, on the bag, with that person as the owner.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

FPS = 10.0
W, H = 384, 216
FLOOR_Y = 200  # feet line of a standing person


def data_dir() -> Path:
    return Path(os.environ.get("POCKIT_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")


def _frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot read {path} (set POCKIT_DATA_DIR to the shared data folder)")
    out, i = {}, 0
    while len(out) < len(wanted):
        ok, img = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = img
        i += 1
    cap.release()
    missing = wanted - set(out)
    if missing:
        raise ValueError(f"{path}: frames {sorted(missing)} not found")
    return out


def _cutout(img: np.ndarray, ref: np.ndarray, box, thr: int = 35) -> tuple[np.ndarray, np.ndarray]:
    """(BGR crop, float alpha 0..1) of the largest region of ``img`` that differs from ``ref`` in box."""
    x, y, w, h = box
    c, r = img[y:y + h, x:x + w], ref[y:y + h, x:x + w]
    m = (cv2.absdiff(c, r).max(2) > thr).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    _n, lab, st, _ = cv2.connectedComponentsWithStats(m)
    k = 1 + int(np.argmax(st[1:, 4]))
    m = (lab == k).astype(np.uint8)
    # fill holes (dark clothes close to the background in places)
    filled = m.copy()
    cnts, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, cnts, -1, 1, -1)
    ys, xs = np.nonzero(filled)
    y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = cv2.GaussianBlur(filled[y1:y2, x1:x2].astype(np.float32), (3, 3), 0)
    return c[y1:y2, x1:x2].copy(), alpha


@lru_cache(maxsize=1)
def assets() -> dict:
    d = data_dir()
    obo = _frames(d / "video" / "one-by-one-person-detection.mp4", {0, 300, 600})
    ab = _frames(d / "video" / "ABODA_video4.avi", {100, 1100})
    bg = cv2.resize(obo[0], (W, H), interpolation=cv2.INTER_AREA)
    people = [_cutout(obo[300], obo[0], (370, 0, 185, 400)), _cutout(obo[600], obo[0], (400, 0, 175, 400))]
    bag = _cutout(ab[1100], ab[100], (441, 357, 72, 68), thr=25)
    return {"bg": bg, "people": people, "bag": bag}


def _scaled(sprite, height: float, squash: float = 1.0):
    img, alpha = sprite
    f = height / img.shape[0]
    size = (max(2, round(img.shape[1] * f)), max(2, round(img.shape[0] * f * squash)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)


def paste(canvas: np.ndarray, sprite, cx: float, bottom: float) -> np.ndarray | None:
    """Alpha-paste ``sprite`` (img, alpha) centred at x=cx with its bottom at y=bottom; returns the visible box."""
    img, alpha = sprite
    h, w = alpha.shape
    x1, y1 = round(cx - w / 2), round(bottom - h)
    X1, Y1, X2, Y2 = max(x1, 0), max(y1, 0), min(x1 + w, canvas.shape[1]), min(y1 + h, canvas.shape[0])
    if X2 <= X1 or Y2 <= Y1:
        return None
    a = alpha[Y1 - y1:Y2 - y1, X1 - x1:X2 - x1, None]
    src = img[Y1 - y1:Y2 - y1, X1 - x1:X2 - x1].astype(np.float32)
    dst = canvas[Y1:Y2, X1:X2].astype(np.float32)
    canvas[Y1:Y2, X1:X2] = (a * src + (1 - a) * dst).round().astype(np.uint8)
    return np.array([X1, Y1, X2, Y2], np.float64)


def _lerp(t, t0, t1, a, b):
    u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    return a + (b - a) * u


def _noise(img: np.ndarray, rng) -> np.ndarray:
    """Camera noise (sensor grain), so that background models see a real-looking signal."""
    return np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape, dtype=np.int16), 0, 255).astype(np.uint8)


def clip(name: str):
    """Yield (image BGR uint8 HxW, t seconds, [(track id, xyxy)]) for clip ``name`` at 10 fps."""
    A = assets()
    p0, p1 = (_scaled(s, 110) for s in A["people"])
    bag = _scaled(A["bag"], 24)
    rng = np.random.default_rng(0)
    n = round(CLIPS[name] * FPS)
    for i in range(n):
        t = i / FPS
        img = A["bg"].copy()
        people = []

        def person(tid, sprite, cx, bottom=FLOOR_Y, seen=True, img=img, people=people):
            b = paste(img, sprite, cx, bottom)
            if b is not None and seen:
                people.append((tid, b))
            return b

        if name == "ghost":
            if t < 8:
                person(1, p1, 260)
            elif t < 12:
                person(1, p1, _lerp(t, 8, 12, 260, 440))
            if 12 <= t < 15:
                person(2, p0, _lerp(t, 12, 15, -60, 120))
            elif 15 <= t < 35:
                person(2, p0, 120 + (1 if int(t * 2) % 2 else 0))  # stands still (breathing: 1 px)
            elif 35 <= t < 39:
                person(2, p0, _lerp(t, 35, 39, 120, -60))
        elif name == "lighting":
            if 2 <= t < 10:
                person(1, p0, _lerp(t, 2, 10, -60, 440))
            if 20 <= t < 26:
                person(2, p1, _lerp(t, 20, 26, -60, 440))
            gain = _lerp(t, 12, 17, 1.0, 0.6)
            img = cv2.convertScaleAbs(img, alpha=gain)
            if t >= 22:
                spot = np.zeros((H, W), np.float32)
                cv2.ellipse(spot, (150, 185), (90, 28), 0, 0, 360, 1.0, -1)
                spot = cv2.GaussianBlur(spot, (31, 31), 0)
                img = np.clip(img.astype(np.float32) * (1 + 0.5 * spot[..., None]), 0, 255).astype(np.uint8)
        elif name == "crouch":
            c0 = _scaled(A["people"][0], 110, squash=0.6)
            c1 = _scaled(A["people"][1], 110, squash=0.55)
            if 5 <= t < 30:
                k = int(t)  # fidgets once a second
                person(9, c0, W + [-2, 3, 0, -4, 2][k % 5], FLOOR_Y + [0, 1, -1, 0][k % 4], seen=False)
            if 8 <= t < 30:
                k = int(t * 2)  # sways twice a second
                person(8, c1, 200 + [0, 4, 7, 3, -2, -5][k % 6], FLOOR_Y + [0, -2, 1][k % 3], seen=False)
            if 3 <= t < 12:
                person(1, p0, _lerp(t, 3, 12, -60, 440), bottom=FLOOR_Y + 8)
        elif name == "left_bag":
            if t < 9:
                x = _lerp(t, 3, 9, -60, 150)
                if t >= 3:
                    person(1, p0, x)
                    paste(img, bag, x + 30, FLOOR_Y - 30 + 3 * (int(t * 4) % 2))  # carried, swinging
            elif t < 10:
                person(1, p0, 150)
                paste(img, bag, 180, _lerp(t, 9, 10, FLOOR_Y - 30, FLOOR_Y))  # lowered to the floor
            else:
                paste(img, bag, 180, FLOOR_Y)
                if t < 14:
                    person(1, p0, 150 + (1 if int(t * 2) % 2 else 0))
                elif t < 20:
                    person(1, p0, _lerp(t, 14, 20, 150, 460))
        yield _noise(img, rng), t, people


CLIPS = {"ghost": 45.0, "lighting": 40.0, "crouch": 40.0, "left_bag": 50.0}
EXPECTED = {"ghost": 0, "lighting": 0, "crouch": 0, "left_bag": 1}


def bag_box() -> np.ndarray:
    """xyxy of the bag once it rests on the floor in ``left_bag``."""
    h, w = _scaled(assets()["bag"], 24)[1].shape
    return np.array([180 - w / 2, FLOOR_Y - h, 180 + w / 2, FLOOR_Y], np.float64)
