"""Shared pieces of the scenario benchmark: the sequences, their scenes, and scoring through pockit's
own evaluation API (the same code as ``pockit eval events`` / ``pockit eval tracks``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENES = HERE / "scenes"
SEQUENCES = ("TUD-Campus", "PETS09-S3-MF1", "KITTI-17", "TUD-Stadtmitte")
CACHE = Path(os.environ.get("POCKIT_SCEN_CACHE", "/tmp/scen_cache"))
TOLERANCE = 1.0  # seconds between an alarm and its reference event (pockit eval events' default)


def data_dir() -> Path:
    from pockit.paths import (
        data_dir as _dd,  # the same lookup as the product (POCKIT_DATA_DIR)
    )

    return Path(_dd())


@dataclass
class Sequence:
    name: str
    folder: Path
    fps: float
    size: tuple[int, int]  # (width, height)
    length: int

    @property
    def scene(self) -> Path:
        return SCENES / f"{self.name}.yaml"

    @property
    def gt(self) -> Path:
        return self.folder / "gt" / "gt.txt"

    def frames(self) -> list[Path]:
        return sorted((self.folder / "img1").glob("*.jpg"))


def sequence(name: str) -> Sequence:
    from pockit.core.mot import seqinfo_for

    folder = data_dir() / "mot" / name
    if not (folder / "gt" / "gt.txt").exists():
        raise FileNotFoundError(f"{folder}/gt/gt.txt not found: set POCKIT_DATA_DIR to the folder holding mot/{name}")
    info = seqinfo_for(folder / "gt" / "gt.txt")
    return Sequence(name, folder, float(info["framerate"]), (int(info["imwidth"]), int(info["imheight"])),
                    int(info["seqlength"]))


def reference_events(seq: Sequence):
    """The scene's rules replayed on the ground-truth tracks (= ``pockit rules SCENE --tracks gt.txt``)."""
    from pockit.rules.replay import replay

    return replay(seq.scene, seq.gt)


def replay_tracks(seq: Sequence, tracks_path: Path):
    """The scene's rules replayed on a tracks file (= ``pockit rules SCENE --tracks T.txt``)."""
    from pockit.rules.replay import replay

    return replay(seq.scene, tracks_path, fps=seq.fps, frame_size=seq.size)


def score(seq: Sequence, events, tracks: Path | np.ndarray, ref=None) -> dict:
    """Event P/R/F1/latency (pockit.evaluate.evaluate_events) and MOTA/IDF1/HOTA (evaluate_tracks)."""
    from pockit.evaluate.events import evaluate_events
    from pockit.evaluate.tracking import evaluate_tracks

    ref = reference_events(seq) if ref is None else ref
    ev = evaluate_events(events, ref, tolerance=TOLERANCE)
    tot = ev.totals
    tr = evaluate_tracks(seq.gt, tracks, num_frames=seq.length)
    m = tr.metrics
    tp, fn = m["TP"], m["FN"]
    return {
        "events_ref": tot["gt"], "events_pred": tot["pred"], "tp": tot["tp"], "fp": tot["fp"], "fn": tot["fn"],
        "precision": tot["precision"], "recall": tot["recall"], "f1": tot["f1"],
        "latency_p50_s": tot["latency_p50_s"],
        "MOTA": 100 * m["MOTA"], "IDF1": 100 * m["IDF1"], "HOTA": 100 * m["HOTA"], "IDSW": int(m["IDSW"]),
        "box_recall": 100 * tp / (tp + fn) if tp + fn else 0.0,
        "per_rule": {r["rule"]: {k: r[k] for k in ("gt", "pred", "tp", "fp", "fn")} for r in ev.per_rule},
    }
