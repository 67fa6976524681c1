"""Run pockit's detector once per sequence at a low threshold and cache the raw candidates (before NMS),
so that detector thresholds, NMS IoU, tracker and rule settings can be swept offline in seconds.

    python benchmarks/scenarios/detcache.py            # -> $POCKIT_SCEN_CACHE (default /tmp/scen_cache)

The detector is the product's (``pockit.inference.load_detector`` with the default ModelConfig), called
with conf=CACHE_CONF and iou=1.0 (nothing suppressed); :func:`detections` applies the real
threshold and class-aware NMS (``pockit.inference.postprocess.batched_nms``) afterwards. Greedy NMS
keeps the same boxes whether the score threshold is applied before or after it.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SEQUENCES, sequence

CACHE_CONF = 0.05


@functools.lru_cache(maxsize=1)
def _detector():
    from pockit.config import ModelConfig
    from pockit.inference import load_detector

    return load_detector(ModelConfig(), conf=CACHE_CONF, iou=1.0, max_det=5000)


def cache_path(name: str, det=None) -> Path:
    """One file per sequence and detector as the product would run it on that footage: the model file, the
    backend/precision it resolved to and the network input size for these frames (a default change, e.g. a
    new precision or input size, gets a new cache instead of silently reusing stale candidates)."""
    import cv2

    det = det or _detector()
    h, w = cv2.imread(str(sequence(name).frames()[0])).shape[:2]
    ih, iw = det.input_size_for([(h, w)])
    prov = "-".join(str(p).split(":")[-1] if ":" in str(p) else str(p).split("-")[0] for p in det.providers[:2])
    tag = "".join(c if c.isalnum() or c in "-." else "_" for c in f"{det.backend}-{prov}")
    return CACHE / f"{name}__{Path(det.path).stem}_{ih}x{iw}_{tag}_c{CACHE_CONF}.npz"


_CACHED: dict[str, Path] = {}


def build(name: str, force: bool = False) -> Path:
    import cv2

    out = _CACHED.get(name)
    if out is not None and out.exists() and not force:
        return out
    det = _detector()
    out = _CACHED[name] = cache_path(name, det)
    if out.exists() and not force:
        return out
    seq = sequence(name)
    frames, boxes, scores, classes = [], [], [], []
    t0 = time.time()
    for i, p in enumerate(seq.frames()):
        d = det.detect([cv2.imread(str(p))])[0]
        frames.append(np.full(len(d), i + 1, np.int32))
        boxes.append(d.xyxy.astype(np.float32))
        scores.append(d.scores.astype(np.float32))
        classes.append(d.class_ids.astype(np.int32))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, frame=np.concatenate(frames), xyxy=np.concatenate(boxes),
                        score=np.concatenate(scores), cls=np.concatenate(classes), n=len(seq.frames()),
                        names=np.array([det.class_names[k] for k in sorted(det.class_names)]))
    print(f"{name}: {len(seq.frames())} frames in {time.time() - t0:.0f} s -> {out}", flush=True)
    return out


def detections(name: str, conf: float, iou: float) -> tuple[list, dict[int, str]]:
    """Per frame (0-based list) Detections at this threshold and NMS IoU, from the cache."""
    from pockit.core import Detections
    from pockit.inference.postprocess import batched_nms

    z = np.load(build(name))
    names = {i: str(n) for i, n in enumerate(z["names"])}
    out = []
    fr, xyxy, sc, cl = z["frame"], z["xyxy"], z["score"], z["cls"]
    bounds = np.searchsorted(fr, np.arange(1, int(z["n"]) + 2))
    for f in range(int(z["n"])):
        a, b = bounds[f], bounds[f + 1]
        m = sc[a:b] >= conf  # the detector keeps scores > conf; the cache holds float32 scores
        x, s, c = xyxy[a:b][m], sc[a:b][m], cl[a:b][m]
        keep = batched_nms(x, s, c, iou)[:300]
        out.append(Detections(xyxy=x[keep], scores=s[keep], class_ids=c[keep], class_names=names))
    return out, names


if __name__ == "__main__":
    for n in sys.argv[1:] or SEQUENCES:
        build(n, force="--force" in sys.argv)
