"""Face recognition measured on the shared face clips: enrol each identity from one frame, recognise the others.

``python -m pockit.faces.bench [--enrol-frame 0] [--sweep] [--json] [--write-watchlist W.npz [--leave-out NAME]]``

Clips (``POCKIT_DATA_DIR/video``): ``face-demographics-walking-and-pause.gif`` (41 frames, three people walk toward
the camera and pause) and ``head-pose-face-detection-female-and-male.gif`` (56 frames, two people turn their heads).
Ground truth: nobody changes places in either clip (checked frame by frame), so a face's identity is given by the
band its box centre lies in (480x270 frames): walking clip x < 150 ``dark_hair_woman``, 150-300 ``bald_man``,
>= 300 ``blonde_woman``; head-pose clip x < 240 ``dark_hair_woman``, >= 240 ``blue_shirt_man``. The woman on the left
of both clips is the same person (judged by eye: same face, hair and sleeveless top; her cross-clip similarity,
mean 0.46, is far above any other pair of people, mean <= 0.25), so there are four identities.
:func:`ground_truth` refuses a frame whose faces do not fall one per band, so a wrong assumption cannot pass
unnoticed.

Protocol: the face backend (YuNet + SFace) on every frame; faces tracked with pockit's tracker (ByteTrack,
defaults); the watch list holds the four identities, each enrolled from its face in ONE frame (``--enrol-frame``)
of the first clip it appears in (so the woman is enrolled from the walking clip and recognised in the head-pose
clip: another day, light and pose). Every track is then recognised from its faces in the other frames
(:class:`~pockit.faces.matcher.TrackFaces`: threshold, margin, min_frames) and its final decision compared with
its ground-truth identity (the majority over its faces). Precision = correct identities / tracks given an
identity; recall = correct identities / tracks. Open set: each identity in turn left out of the watch list; its
tracks must come out unknown (false accepts counted). Per face: the same decision on each single face.
``--sweep`` repeats everything for every enrolment frame.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..core.detections import Detections, box_iou
from .matcher import MARGIN, THRESHOLD, Matcher, TrackFaces
from .watchlist import Watchlist

CLIPS = {
    "walk": ("video/face-demographics-walking-and-pause.gif", [(0, 150, "dark_hair_woman"), (150, 300, "bald_man"),
                                                              (300, 10_000, "blonde_woman")]),
    "head": ("video/head-pose-face-detection-female-and-male.gif", [(0, 240, "dark_hair_woman"),
                                                                    (240, 10_000, "blue_shirt_man")]),
}


def ground_truth(clip: str, dets: Detections, frame: int) -> list[str]:
    """Identity of each face of one frame from its box centre (see the module docstring)."""
    bands = CLIPS[clip][1]
    cx = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2
    out = []
    for x in cx:
        names = [n for lo, hi, n in bands if lo <= x < hi]
        out.append(names[0])
    if sorted(out) != sorted(n for _, _, n in bands):
        raise AssertionError(f"{clip} frame {frame}: faces at x={np.round(cx).tolist()} do not fall one per band "
                             f"{bands}; the ground truth does not hold for this frame")
    return out


@dataclass
class ClipData:
    name: str
    dets: list[Detections]          # per frame, faces (embedding, quality)
    gt: list[list[str]]             # per frame, identity per face
    tracks: list[np.ndarray]        # per frame, track id per face (-1 = not tracked)
    fps: float


def load_clip(clip: str, detector) -> ClipData:
    from ..paths import data_dir
    from ..sources import open_source
    from ..tracking import make_tracker

    path = data_dir() / CLIPS[clip][0]
    with open_source(str(path)) as src:
        frames = list(src)
        fps = float(src.fps or 12.5)
    dets = detector.detect([f.image for f in frames])
    gt = [ground_truth(clip, d, i) for i, d in enumerate(dets)]
    tracker = make_tracker(None, fps=fps)
    tracks = []
    for f, d in zip(frames, dets):
        out = tracker.update(d, f.timestamp)
        tid = np.full(len(d), -1, np.int64)
        if len(out) and len(d):  # each face takes the id of the tracked box that overlaps it most
            iou = box_iou(d.xyxy, out.xyxy)
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(d)), best] > 0.5
            tid[ok] = out.track_ids[best[ok]]
        tracks.append(tid)
    return ClipData(clip, dets, gt, tracks, fps)


def make_watchlist(clips: list[ClipData], frame: int, leave_out: str | None = None) -> Watchlist:
    """Each identity from its face in ``frame`` of the first clip it appears in (``leave_out`` omitted)."""
    names, embs, files = [], [], []
    for c in clips:
        i = min(frame, len(c.dets) - 1)
        for j, ident in enumerate(c.gt[i]):
            if ident == leave_out or ident in names:
                continue
            names.append(ident)
            embs.append(c.dets[i].data["embedding"][j])
            files.append(f"{c.name}#{i}")
    return Watchlist(names, np.stack(embs), np.arange(len(names)), files)


def enrol_frames(clips: list[ClipData], frame: int) -> dict[str, int]:
    """The frame each clip enrolled from (skipped when recognising that clip): only clips that enrolled someone."""
    seen: set[str] = set()
    out = {}
    for c in clips:
        i = min(frame, len(c.dets) - 1)
        new = set(c.gt[i]) - seen
        if new:
            out[c.name] = i
        seen |= set(c.gt[i])
    return out


def recognise(c: ClipData, wl: Watchlist, skip_frame: int | None, *, threshold: float, margin: float,
              min_frames: int, aggregate: str) -> list[tuple[int, str, str | None]]:
    """(track id, ground-truth identity, decided identity or None) per track, from frames != skip_frame."""
    tf = TrackFaces(Matcher(wl, threshold, margin), min_frames=min_frames, aggregate=aggregate)
    truth: dict[int, Counter] = {}
    for i, (d, gt, tid) in enumerate(zip(c.dets, c.gt, c.tracks)):
        for j in range(len(d)):
            if tid[j] < 0:
                continue
            truth.setdefault(int(tid[j]), Counter())[gt[j]] += 1
            if i != skip_frame:
                tf.add(int(tid[j]), d.data["embedding"][j], float(d.data["quality"][j]))
    out = []
    for t, cnt in sorted(truth.items()):
        m = tf.decide(t)
        out.append((t, cnt.most_common(1)[0][0], m.identity if m is not None else None))
    return out


def score(results: list[tuple[int, str, str | None]], enrolled: set[str]) -> dict:
    known = [r for r in results if r[1] in enrolled]
    decided = [r for r in results if r[2] is not None]
    correct = [r for r in decided if r[2] == r[1]]
    false_accepts = [r for r in results if r[1] not in enrolled and r[2] is not None]
    return {"tracks": len(results), "decided": len(decided), "correct": len(correct),
            "precision": round(len(correct) / len(decided), 3) if decided else None,
            "recall": round(len(correct) / len(known), 3) if known else None,
            "false_accepts": len(false_accepts), "unknown_tracks": len(results) - len(known)}


def per_face(clips: list[ClipData], wl: Watchlist, skip: dict[str, int], threshold: float, margin: float) -> dict:
    m = Matcher(wl, threshold, margin)
    n = decided = correct = 0
    for c in clips:
        for i, (d, gt) in enumerate(zip(c.dets, c.gt)):
            if skip.get(c.name) == i:
                continue
            for g, res in zip(gt, m.match(d.data["embedding"])):
                n += 1
                decided += res.known
                correct += res.identity == g
    return {"faces": n, "decided": decided, "correct": correct,
            "precision": round(correct / decided, 3) if decided else None, "recall": round(correct / n, 3)}


def evaluate(clips: list[ClipData], frame: int, **kw) -> dict:
    wl = make_watchlist(clips, frame)
    skip = enrol_frames(clips, frame)
    closed = [r for c in clips for r in recognise(c, wl, skip.get(c.name), **kw)]
    out = {"enrol_frame": frame, "watchlist": dict(zip(wl.names, wl.files)),
           "closed_set": score(closed, set(wl.names)),
           "per_face": per_face(clips, wl, skip, kw["threshold"], kw["margin"]), "open_set": {}}
    fa = n_out = 0
    for ident in wl.names:
        wl_out = make_watchlist(clips, frame, leave_out=ident)
        res = [r for c in clips for r in recognise(c, wl_out, skip.get(c.name), **kw)]
        s = score(res, set(wl_out.names))
        out["open_set"][ident] = s
        fa += s["false_accepts"]
        n_out += s["unknown_tracks"]
    out["open_set_false_accepts"] = f"{fa}/{n_out}"
    return out


def similarity_stats(clips: list[ClipData]) -> dict:
    """Cosine similarity of every pair of faces: same identity (min, 5th percentile) vs different (max)."""
    emb = np.concatenate([d.data["embedding"] for c in clips for d in c.dets])
    ids = np.array([g for c in clips for gt in c.gt for g in gt])
    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), 1)
    same = ids[iu[0]] == ids[iu[1]]
    s = sims[iu]
    return {"faces": len(emb), "same_min": round(float(s[same].min()), 3),
            "same_p5": round(float(np.percentile(s[same], 5)), 3), "different_max": round(float(s[~same].max()), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m pockit.faces.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--enrol-frame", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="every enrolment frame: min/mean precision and recall")
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    ap.add_argument("--margin", type=float, default=MARGIN)
    ap.add_argument("--min-frames", type=int, default=3)
    ap.add_argument("--aggregate", choices=("mean", "best"), default="mean")
    ap.add_argument("--roll-angles", default="-30,0,30", help="frame rotations the detector runs at (degrees)")
    ap.add_argument("--write-watchlist", metavar="NPZ", help="also save the watch list enrolled from --enrol-frame "
                    "(e.g. for demos/face_watchlist.yaml)")
    ap.add_argument("--leave-out", metavar="IDENTITY", help="with --write-watchlist: an identity not to enrol")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import time

    from ..inference import load_detector

    det = load_detector("face-yunet", roll_angles=[float(x) for x in a.roll_angles.split(",")])
    t0 = time.perf_counter()
    clips = [load_clip(c, det) for c in CLIPS]
    n_frames = sum(len(c.dets) for c in clips)
    ms = 1000 * (time.perf_counter() - t0) / n_frames
    kw = {"threshold": a.threshold, "margin": a.margin, "min_frames": a.min_frames, "aggregate": a.aggregate}
    report = {"settings": {**kw, "roll_angles": list(det.roll_angles)},
              "ms_per_frame": round(ms, 1), "similarity": similarity_stats(clips),
              "faces_per_frame": {c.name: sorted(Counter(len(d) for d in c.dets).items()) for c in clips},
              "tracks": {c.name: len({int(t) for tid in c.tracks for t in tid if t >= 0}) for c in clips},
              "result": evaluate(clips, a.enrol_frame, **kw)}
    if a.write_watchlist:
        wl = make_watchlist(clips, a.enrol_frame, leave_out=a.leave_out)
        wl.embedder_sha256 = str(det.info["embedder"]["sha256"])
        report["watchlist_written"] = {"path": str(wl.save(a.write_watchlist)), "identities": wl.names}
    if a.sweep:
        n = max(len(c.dets) for c in clips)
        runs = [evaluate(clips, f, **kw) for f in range(n)]
        p = [r["closed_set"]["precision"] or 0.0 for r in runs]
        r_ = [r["closed_set"]["recall"] or 0.0 for r in runs]
        fa = [int(r["open_set_false_accepts"].split("/")[0]) for r in runs]
        report["sweep"] = {"enrol_frames": n, "precision_min": min(p), "precision_mean": round(float(np.mean(p)), 3),
                           "recall_min": min(r_), "recall_mean": round(float(np.mean(r_)), 3),
                           "open_set_false_accepts_total": sum(fa),
                           "worst_frames": [r["enrol_frame"] for r in runs
                                            if (r["closed_set"]["recall"] or 0) == min(r_)][:10]}
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        res = report["result"]
        print(f"detector + embeddings + tracking: {report['ms_per_frame']} ms per frame (this CPU)")
        print(f"faces per frame {report['faces_per_frame']}, tracks {report['tracks']}, similarity {report['similarity']}")
        print(f"enrol frame {a.enrol_frame} ({res['watchlist']}): per track {res['closed_set']}; per face "
              f"{res['per_face']}; open set false accepts {res['open_set_false_accepts']}")
        if a.write_watchlist:
            print(f"watch list written: {report['watchlist_written']}")
        if a.sweep:
            print(f"sweep over enrolment frames: {report['sweep']}")
    return report


if __name__ == "__main__":
    main()
