"""Cost of the rules engine per tracked object per frame, every rule type active.

Usage: python benchmarks/bench_rules.py [--objects 10 50 200] [--frames 500]
Track rules run on synthetic random-walk tracks (frame=None); the two image rules (foreground
abandoned_object, object_removed) cost per frame, not per object, and are timed separately on
1280x720 frames.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pockit.core import Detections, Frame
from pockit.rules import RuleEngine

W, H = 1280, 720
ZONE = [[200, 200], [900, 150], [1000, 600], [300, 650], [150, 400]]
TRACK_RULES = [
    dict(type="zone_enter", name="enter", zone=ZONE, min_frames=2),
    dict(type="zone_exit", name="exit", zone=ZONE, min_frames=2),
    dict(type="loitering", name="loiter", zone=ZONE, dwell=5.0, max_entries=3, window=30),
    dict(type="line_crossing", name="line", line=[[100, 360], [1200, 380]], min_frames=2),
    dict(type="fence_crossing", name="fence", fence=[[640, 0], [600, 300], [700, 500], [640, 720]]),
    dict(type="crowd", name="crowd", zone=ZONE, min_count=5, min_duration=2.0),
    dict(type="presence", name="presence", zone=ZONE, classes=["bag"], min_duration=1.0),
    dict(type="fall", name="fall", min_duration=1.0),
    dict(type="abandoned_object", name="abandoned", mode="detector", classes=["bag"], min_duration=3, unattended=3),
]
IMAGE_RULES = [
    dict(type="abandoned_object", name="abandoned_fg", mode="foreground", min_duration=5, unattended=5),
    dict(type="object_removed", name="removed", region=[500, 300, 600, 400]),
]
NAMES = {0: "person", 1: "bag", 2: "Fall"}


def make_frames(n_obj: int, n_frames: int, seed: int = 0) -> list[Detections]:
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 0], [W, H], (n_obj, 2))
    vel = rng.normal(0, 6, (n_obj, 2))
    size = rng.uniform([20, 50], [60, 160], (n_obj, 2))
    cls = rng.choice([0, 0, 0, 1, 2], n_obj).astype(np.int32)
    out = []
    for _ in range(n_frames):
        vel += rng.normal(0, 1, vel.shape)
        pos = np.clip(pos + vel, 0, [W, H])
        xyxy = np.concatenate([pos - size * [0.5, 1.0], pos + size * [0.5, 0.0]], 1)
        out.append(Detections(xyxy=xyxy, scores=np.full(n_obj, 0.9), class_ids=cls,
                              track_ids=np.arange(n_obj), class_names=NAMES))
    return out


def bench_tracks(n_obj: int, n_frames: int, fps: float = 25.0) -> float:
    frames = make_frames(n_obj, n_frames)
    eng = RuleEngine(TRACK_RULES, "bench", frame_size=(W, H), class_names=NAMES)
    for i, d in enumerate(frames[:20]):  # warm-up
        eng.update(None, d, i / fps, i)
    eng = RuleEngine(TRACK_RULES, "bench", frame_size=(W, H), class_names=NAMES)
    t0 = time.perf_counter()
    for i, d in enumerate(frames):
        eng.update(None, d, i / fps, i)
    dt = time.perf_counter() - t0
    return dt / (n_frames * n_obj) * 1e6


def bench_images(n_frames: int = 100, fps: float = 25.0) -> float:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (H, W, 3), np.uint8)
    eng = RuleEngine(IMAGE_RULES, "bench", frame_size=(W, H), class_names=NAMES)
    d = Detections.empty(NAMES)
    t0 = time.perf_counter()
    for i in range(n_frames):
        img = base.copy()
        img[300:400, 100 + i:200 + i] = 255
        eng.update(Frame(img, i, i / fps), d, i / fps, i)
    return (time.perf_counter() - t0) / n_frames * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--frames", type=int, default=500)
    a = ap.parse_args()
    print(f"{len(TRACK_RULES)} track rules active ({', '.join(r['type'] for r in TRACK_RULES)})")
    for n in a.objects:
        us = bench_tracks(n, a.frames)
        print(f"  {n:4d} objects: {us:6.2f} us per object per frame (all track rules)  "
              f"= {us / len(TRACK_RULES):.2f} us per object per rule")
    print(f"image rules (foreground abandoned_object + object_removed) on {W}x{H}: {bench_images():.2f} ms per frame")


if __name__ == "__main__":
    main()
