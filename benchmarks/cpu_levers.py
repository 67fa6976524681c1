#!/usr/bin/env python
"""Model-only CPU comparison of the detector configurations pockit offers for person-yolov8s.

Same real frame (TUD-Campus, 640x480), each configuration loaded through ``pockit.inference.load_detector``
and warmed up; then rounds in which every configuration runs once in turn (so machine-load drift hits all
alike); prints the median network time (``Detector.last_timings['inference']``) and the speed-up over ONNX
Runtime FP32 at the square 640x640 input. Not a test; needs the [openvino] extra for the OpenVINO rows.

    python benchmarks/cpu_levers.py [--rounds 8]
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

from pockit.config import ModelConfig
from pockit.inference import load_detector
from pockit.paths import data_dir

CONFIGS = {
    "ONNX Runtime FP32, 640x640": {"backend": "onnx", "precision": "fp32", "rect": False},
    "ONNX Runtime FP32, rect 480x640": {"backend": "onnx", "precision": "fp32"},
    "OpenVINO FP32, rect": {"backend": "openvino", "precision": "fp32"},
    "OpenVINO bf16, rect (CPU default with native bf16)": {"backend": "openvino", "precision": "bf16"},
    "ONNX Runtime INT8, rect (CPU default without bf16)": {"backend": "onnx", "precision": "int8"},
    "OpenVINO INT8, rect": {"backend": "openvino", "precision": "int8"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    frame = cv2.imread(str(data_dir() / "mot" / "TUD-Campus" / "img1" / "000021.jpg"))
    if frame is None:
        sys.exit(f"TUD-Campus frame not found under {data_dir()} (POCKIT_DATA_DIR)")
    dets = {}
    for name, kw in CONFIGS.items():
        try:
            dets[name] = load_detector(ModelConfig(**kw))
        except ImportError as e:
            print(f"skipped {name}: {e}")
            continue
        for _ in range(2):
            dets[name].detect([frame])
    times: dict[str, list[float]] = {k: [] for k in dets}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, d in dets.items():
            d.detect([frame])
            times[name].append(d.last_timings["inference"] * 1000)
    base = np.median(next(iter(times.values())))
    print(f"1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds")
    print("| configuration | input (h, w) | inference ms | speed-up |\n|---|---|---|---|")
    for name, v in times.items():
        print(f"| {name} | {dets[name].input_shapes_used[-1]} | {np.median(v):.1f} | {base / np.median(v):.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
