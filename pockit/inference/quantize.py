"""INT8 post-training static quantization of a YOLO ONNX model, and the accuracy check that must go with it.

:func:`quantize_int8` runs ONNX Runtime's static quantization (QDQ format, per-channel weights, activations
calibrated on real frames letterboxed exactly as pockit feeds them). The box-decoding tail of a YOLOv8 head
(DFL softmax, anchor arithmetic, the final concat with class scores) stays in float: quantizing pixel
coordinates and scores to 8 bits moves boxes for no speed gain. The QDQ model runs on ONNX Runtime and on
OpenVINO (which executes the QDQ pairs as INT8 kernels on CPUs with VNNI/AMX).

:func:`accuracy_check` compares two detectors on frames with ground truth (MOT sequences) using pockit's
detection evaluation (class-agnostic mAP50, recall at the operating threshold). Calibrate and check on
different footage: the check is only honest on held-out frames.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .preprocess import preprocess_batch

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def sample_frames(sources: Iterable[str | Path], per_source: int = 16) -> list[np.ndarray]:
    """Evenly spaced BGR frames from each source: a video file, an image folder or a MOT sequence (img1/)."""
    frames: list[np.ndarray] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            folder = p / "img1" if (p / "img1").is_dir() else p
            files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"calibration source {p}: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
            idx = np.linspace(0, len(files) - 1, min(per_source, len(files))).round().astype(int)
            for i in sorted(set(idx.tolist())):
                im = cv2.imread(str(files[i]))
                if im is None:
                    raise ValueError(f"calibration source {p}: cannot read image {files[i]}")
                frames.append(im)
        elif p.is_file():
            cap = cv2.VideoCapture(str(p))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if not cap.isOpened() or n <= 0:
                cap.release()
                raise ValueError(f"calibration source {p}: OpenCV cannot open it as a video")
            want = set(np.linspace(0, n - 1, min(per_source, n)).round().astype(int).tolist())
            i = 0
            while want:
                ok, im = cap.read()
                if not ok:
                    break
                if i in want:
                    frames.append(im)
                    want.discard(i)
                i += 1
            cap.release()
        else:
            raise FileNotFoundError(f"calibration source not found: {p}")
    if not frames:
        raise ValueError("no calibration frames: give video files or image folders with real footage")
    return frames


class _Reader:
    """onnxruntime CalibrationDataReader over letterboxed frames (one frame per batch of a batch-1 model)."""

    def __init__(self, input_name: str, frames: Sequence[np.ndarray], hw: tuple[int, int]) -> None:
        self.input_name, self.frames, self.hw, self.i = input_name, frames, hw, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.frames):
            return None
        x, _ = preprocess_batch([self.frames[self.i]], self.hw)
        self.i += 1
        return {self.input_name: x}

    def rewind(self) -> None:
        self.i = 0


def head_tail_nodes(model) -> list[str]:
    """Names of the nodes after the last concat of the raw head outputs (box decoding), kept in float."""
    g = model.graph
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # walk back from the graph output to the first node whose inputs come from Conv-free arithmetic:
    # everything reachable backwards from the output without crossing a Conv belongs to the tail
    producers = {o: n for n in g.node for o in n.output}
    tail, stack = set(), [o.name for o in g.output]
    while stack:
        name = stack.pop()
        n = producers.get(name)
        if n is None or n.name in tail or n.op_type == "Conv" and "dfl" not in n.name:
            continue
        tail.add(n.name)
        stack.extend(n.input)
    # the raw per-level concats (Reshape of Concat of the last Convs) are inputs, not tail work
    return sorted(tail)


def _input_hw(model, src) -> tuple[str, tuple[int, int]]:
    inits = {t.name for t in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(d > 0 for d in dims[2:]):
        raise ValueError(f"{src}: INT8 calibration needs a fixed input size, the input is {dims}")
    return inp.name, (dims[2], dims[3])


def _op_types() -> list[str]:
    """The op types ONNX Runtime's quantize_static calibrates and quantizes by default."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def calibration_ranges(src: str | Path, frames: Sequence[np.ndarray]) -> dict[str, list[float]]:
    """{activation tensor: [min, max]} of the fixed-shape ONNX ``src`` over ``frames`` (BGR, letterboxed as
    pockit feeds them): ONNX Runtime's MinMax calibrator on the model quantize_static sees, so
    :func:`quantize_int8` with ``ranges=`` gives the same scales as calibrating on the frames (Softmax outputs
    left out: ONNX Runtime fixes their range itself). Small (20 KB for YOLOv8s): a registry model ships its
    table, and its INT8 build needs no calibration media."""
    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(frames) < 4:
        raise ValueError(f"INT8 calibration needs at least 4 real frames, got {len(frames)}")
    model = onnx.load(str(src))
    name, hw = _input_hw(model, src)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        softmax_out = {o for n in onnx.load(str(pre)).graph.node if n.op_type == "Softmax" for o in n.output}
        cal = create_calibrator(pre, _op_types(), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                calibrate_method=CalibrationMethod.MinMax, extra_options={"symmetric": False})
        cal.collect_data(_Reader(name, frames, hw))
        data = cal.compute_data()
        del cal
    out = {}
    for tensor, td in data.items():
        lo, hi = td.range_value if hasattr(td, "range_value") else td
        if tensor not in softmax_out:
            out[tensor] = [float(np.asarray(lo).ravel()[0]), float(np.asarray(hi).ravel()[0])]
    return dict(sorted(out.items()))


def quantize_int8(
    src: str | Path,
    dst: str | Path,
    frames: Sequence[np.ndarray] | None = None,
    *,
    ranges: dict[str, Sequence[float]] | None = None,
    per_channel: bool = True,
    method: str = "minmax",
    keep_head_float: bool = True,
    keep_float: Sequence[str] = (),
) -> Path:
    """Static INT8 (QDQ) copy of the fixed-shape ONNX ``src`` at ``dst``, calibrated on ``frames`` (BGR), or
    built from a table of activation ranges (:func:`calibration_ranges`, MinMax) without any frames.
    ``keep_float``: regular expressions of node names left in float (besides the box-decoding tail)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if ranges is None and (frames is None or len(frames) < 4):
        raise ValueError(f"INT8 calibration needs at least 4 real frames, got {len(frames or [])}")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"calibration method {method!r}: expected one of {', '.join(methods)}")
    model = onnx.load(str(src))
    name, hw = _input_hw(model, src)
    exclude = head_tail_nodes(model) if keep_head_float else []
    if keep_float:
        try:
            pats = [re.compile(k) for k in keep_float]
        except re.error as e:
            raise ValueError(f"keep_float: {e.pattern!r} is not a regular expression ({e})") from e
        exclude += [n.name for n in model.graph.node if n.name not in exclude and any(p.search(n.name) for p in pats)]
    extra: dict[str, Any] = {"CalibTensorRangeSymmetric": False}
    if ranges is not None:  # the calibrator still runs (on one grey frame); every range it found is overridden
        extra["TensorQuantOverrides"] = {t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
                                         for t, (lo, hi) in ranges.items()}
        frames, method = [np.full((hw[0], hw[1], 3), 114, np.uint8)], "minmax"
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        if ranges is not None:
            g = onnx.load(str(pre)).graph
            have = {o for n in g.node for o in n.output} | {i.name for i in g.input}
            missing = [t for t in ranges if t not in have]
            if missing:
                raise ValueError(f"the range table does not fit {src}: {len(missing)} of its {len(ranges)} tensors "
                                 f"are not in the model (e.g. {missing[0]!r}); calibrate on frames instead")
        out = Path(tmp) / dst.name
        quantize_static(
            str(pre), str(out), _Reader(name, frames, hw), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude, calibrate_method=methods[method], extra_options=extra,
        )
        # carry the model metadata (class names, stride) over: detectors read it
        q = onnx.load(str(out))
        have = {p.key for p in q.metadata_props}
        for p in model.metadata_props:
            if p.key not in have:
                q.metadata_props.add().CopyFrom(p)
        note = next((p for p in q.metadata_props if p.key == "pockit_quantization"), None) \
            or q.metadata_props.add(key="pockit_quantization")
        how = f"range table of {len(ranges)} tensors" if ranges is not None else f"calib={method} frames={len(frames)}"
        note.value = f"int8 qdq per_channel={per_channel} {how} keep_float={len(exclude)} nodes"
        onnx.save(q, str(out))
        os.replace(out, dst)
    return dst


@dataclass
class AccuracyCheck:
    """FP32 vs INT8 (or any reference vs candidate) on frames with ground truth."""

    frames: int
    gt_boxes: int
    reference_map50: float
    candidate_map50: float
    reference_recall: float
    candidate_recall: float
    mean_matched_iou: float  # candidate box vs reference box, matched greedily at IoU >= 0.5
    box_agreement: float  # share of reference boxes (score >= conf) the candidate reproduces at IoU >= 0.5
    per_sequence: dict[str, dict[str, float]]

    @property
    def map50_drop_points(self) -> float:
        return 100.0 * (self.reference_map50 - self.candidate_map50)

    def acceptable(self, max_drop_points: float = 1.0) -> bool:
        return self.map50_drop_points < max_drop_points

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "map50_drop_points": self.map50_drop_points}


def _agreement(ref, cand, iou: float = 0.5) -> tuple[int, int, float]:
    """(reference boxes the candidate reproduces, reference boxes, sum of their IoUs): COCO-order matching."""
    from ..resolve import match_detections

    pairs = match_detections(ref, cand, iou, by_score=True, same_class=False)
    return len(pairs), len(ref), float(sum(v for _, _, v in pairs))


def ground_truth_frames(sequences: Sequence[str | Path], step: int = 1, max_frames: int | None = None):
    """[(key, frame path, gt Detections)] of the annotated frames of MOT sequences (every ``step``-th)."""
    from ..core import read_mot
    from ..evaluate.io import collapse_classes

    out = []
    for seq in sequences:
        seq = Path(seq)
        gt_file = seq / "gt" / "gt.txt"
        if not gt_file.is_file():
            raise FileNotFoundError(f"{seq}: no gt/gt.txt (a MOTChallenge sequence folder is expected)")
        files = sorted(f for f in (seq / "img1").iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)[:max_frames]
        gt = collapse_classes(read_mot(gt_file, gt=True), "person")
        rows = [((seq.name, k), f, gt[k]) for k, f in enumerate(files, start=1) if k in gt][::max(1, int(step))]
        if not rows:
            raise ValueError(f"{seq}: none of its first {len(files)} frames is annotated in {gt_file}")
        out.extend(rows)
    return out


def predict_frames(detector, frames) -> dict:
    """{key: class-agnostic Detections} of ``detector`` on the frames of :func:`ground_truth_frames`."""
    from ..evaluate.io import collapse_classes

    return {key: collapse_classes({0: detector.detect([cv2.imread(str(f))])[0]}, "person")[0]
            for key, f, _ in frames}


def compare_predictions(frames, reference: dict, candidate: dict, conf: float = 0.25) -> AccuracyCheck:
    """Score two prediction sets (:func:`predict_frames`) against the ground truth and each other."""
    from ..evaluate.detection import evaluate_detections

    def scores(keys):
        g = {k: gt for k, _, gt in frames if k in keys}
        rr = evaluate_detections(g, {k: reference[k] for k in g}, ["person"], conf=conf)
        cr = evaluate_detections(g, {k: candidate[k] for k in g}, ["person"], conf=conf)
        return rr, cr

    per_seq: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(k[0] for k, _, _ in frames):
        rr, cr = scores({k for k, _, _ in frames if k[0] == name})
        per_seq[name] = {"frames": rr.images, "reference_map50": rr.map50, "candidate_map50": cr.map50,
                         "reference_recall": rr.totals["recall"], "candidate_recall": cr.totals["recall"]}
    rr, cr = scores({k for k, _, _ in frames})
    agree = [0, 0, 0.0]
    for k, _, _ in frames:
        r, c = reference[k], candidate[k]
        a = _agreement(r[r.scores >= conf], c[c.scores >= conf])
        agree = [agree[0] + a[0], agree[1] + a[1], agree[2] + a[2]]
    return AccuracyCheck(
        frames=rr.images, gt_boxes=rr.gt_boxes, reference_map50=rr.map50, candidate_map50=cr.map50,
        reference_recall=rr.totals["recall"], candidate_recall=cr.totals["recall"],
        mean_matched_iou=agree[2] / agree[0] if agree[0] else 0.0,
        box_agreement=agree[0] / agree[1] if agree[1] else 1.0, per_sequence=per_seq,
    )


def accuracy_check(reference, candidate, sequences: Sequence[str | Path], conf: float = 0.25, step: int = 1,
                   max_frames: int | None = None) -> AccuracyCheck:
    """Run two :class:`~pockit.inference.Detector` s on MOT sequences (img1/ + gt/gt.txt) and compare them
    with pockit's class-agnostic detection evaluation. Detectors should run with a low ``conf`` (e.g. 0.001)
    so mAP sees the whole ranking; ``conf`` is the operating point for recall and box agreement."""
    frames = ground_truth_frames(sequences, step, max_frames)
    return compare_predictions(frames, predict_frames(reference, frames), predict_frames(candidate, frames), conf)


RANGES_DIR = Path(__file__).parent / "int8_ranges"


def ranges_file(name: str) -> Path | None:
    """The shipped activation-range table of registry model ``name`` (registry extra ``int8_ranges``), if any."""
    from ..registry import get_asset

    f = get_asset(name).extra.get("int8_ranges")
    return RANGES_DIR / f if f and (RANGES_DIR / f).is_file() else None


def int8_path(name: str, src: Path) -> Path:
    """Cache path of the INT8 build of registry model ``name``: keyed by the source's sha256, the calibration
    recipe (media or shipped range table, layers kept in float) and the onnxruntime version (its quantizer
    writes the graph)."""
    import hashlib

    import onnxruntime

    from ..registry import get_asset, sha256_file
    from .rectangular import derived_dir

    asset = get_asset(name)
    extra = asset.extra
    sha = asset.sha256 or sha256_file(src)  # fetch() verified the file against the registry's sha256
    table = ranges_file(name)
    calib = (f"table={hashlib.sha256(table.read_bytes()).hexdigest()[:16]}" if table else
             f"{extra['int8_calibration']}|{extra['int8_frames_per_source']}")
    recipe = f"{sha}|{calib}|{onnxruntime.__version__}"
    if extra.get("int8_keep_float"):
        recipe += f"|keep_float={extra['int8_keep_float']}"
    return derived_dir() / f"{Path(src).stem}-int8-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.onnx"


def has_int8_recipe(name: str) -> bool:
    from ..registry import ASSETS

    return name in ASSETS and ("int8_calibration" in ASSETS[name].extra or "int8_ranges" in ASSETS[name].extra)


def calibration_media_frames(name: str) -> list[np.ndarray]:
    """The registry recipe's calibration frames of model ``name`` (its sample videos, fetched like any media)."""
    from ..registry import fetch_media, get_asset

    extra = get_asset(name).extra
    return sample_frames([fetch_media(m) for m in extra["int8_calibration"]], extra["int8_frames_per_source"])


def int8_model(name: str) -> Path:
    """The INT8 (QDQ) build of registry model ``name``, made once into the pockit cache: from the activation-range
    table pockit ships for it (no media, a few seconds; :data:`RANGES_DIR`), else from its calibration media
    (registry names, fetched like any sample media). Raises :class:`~pockit.registry.FetchError` when neither
    can be had."""
    from ..registry import fetch, get_asset

    if not has_int8_recipe(name):
        raise ValueError(f"{name!r} has no INT8 recipe in the registry; quantize your own model with "
                         "'pockit models quantize MODEL.onnx --calib FRAMES_OR_VIDEOS -o MODEL-int8.onnx'")
    src = fetch(name)
    dst = int8_path(name, src)
    if dst.is_file():
        return dst
    extra = get_asset(name).extra
    keep = extra.get("int8_keep_float", ())
    table = ranges_file(name)
    if table is not None:
        import json

        log.warning("building the INT8 version of %s once (from the activation ranges in %s; a few seconds) into %s",
                    name, table.name, dst)
        try:
            return quantize_int8(src, dst, ranges=json.loads(table.read_text())["ranges"], keep_float=keep)
        except (ValueError, TypeError, KeyError) as e:  # e.g. another onnxruntime names or overrides differently
            log.warning("the shipped range table did not apply (%s); calibrating on the recipe's media instead", e)
    log.warning("building the INT8 version of %s once (calibration on %d frames of %s; about a minute on 2 cores) "
                "into %s", name, extra["int8_frames_per_source"] * len(extra["int8_calibration"]),
                ", ".join(extra["int8_calibration"]), dst)
    return quantize_int8(src, dst, calibration_media_frames(name), keep_float=keep)


def write_ranges_table(name: str) -> Path:
    """(Re)make the shipped range table of registry model ``name`` from its calibration media (maintainers:
    ``python -c "from pockit.inference.quantize import write_ranges_table; write_ranges_table('person-yolov8s')"``)."""
    import json

    import onnxruntime

    from ..registry import fetch, get_asset

    extra = get_asset(name).extra
    ranges = calibration_ranges(fetch(name), calibration_media_frames(name))
    out = RANGES_DIR / extra["int8_ranges"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": name, "sha256": get_asset(name).sha256, "calibration": extra["int8_calibration"],
        "frames_per_source": extra["int8_frames_per_source"], "method": "minmax (onnxruntime calibrator)",
        "onnxruntime": onnxruntime.__version__, "ranges": ranges}, indent=0) + "\n")
    return out
