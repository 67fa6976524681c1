"""Export an Ultralytics ``.pt`` detector to ONNX and check the export numerically.

``export_onnx`` drives Ultralytics' exporter (opset, dynamic batch, optional onnxslim
simplification, FP16 only on a GPU). ``check_export`` runs the PyTorch model and ONNX Runtime on
the same letterboxed frames and reports the largest absolute difference of the raw outputs and
how well the detections agree after pockit's shared post-processing. Needs the ``[ml]`` extra.
"""
from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # TensorRT 8.6-10.x parse 9..20; 17 is what Ultralytics and JetPack 6 use without surprises


class ExportError(RuntimeError):
    """Export failed; the message says what to try."""


def _ultralytics():
    try:
        from ultralytics import YOLO
    except ImportError as e:
        raise ExportError(f"ONNX export needs ultralytics and torch ({e}); install the extra: pip install 'pockit[ml]'") from e
    return YOLO


def export_onnx(
    weights: str | Path,
    output: str | Path | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    imgsz: int = 640,
    dynamic: bool = True,
    simplify: bool = True,
    half: bool = False,
    batch: int = 1,
    nms: bool = False,
) -> Path:
    """``.pt`` -> ``.onnx``. ``dynamic``: batch (and Ultralytics also makes H/W) dynamic;
    ``batch``: the static batch when not dynamic (or the max batch Ultralytics records).
    Returns the written path (``output`` or ``<weights>.onnx``)."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"weights not found: {weights}")
    if weights.suffix.lower() != ".pt":
        raise ExportError(f"{weights}: export reads an Ultralytics .pt checkpoint, got {weights.suffix!r}")
    if not 9 <= opset <= 21:
        raise ExportError(f"opset {opset} is outside 9..21; TensorRT 10 parses opsets 9-20, use 17 unless told otherwise")
    if half:
        try:
            import torch

            if not torch.cuda.is_available():
                raise ExportError("half=True needs a CUDA GPU for the export (Ultralytics exports FP16 on GPU only); "
                                  "export FP32 and let TensorRT build FP16 (--fp16) instead")
        except ImportError as e:
            raise ExportError(str(e)) from e
    YOLO = _ultralytics()
    # Ultralytics writes <stem>.onnx beside the weights: export from a private copy so a file already
    # there (e.g. pockit's cached, checksummed person-yolov8s.onnx next to person-yolov8s.pt) is never
    # overwritten or moved away
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="pockit-export-"))
    src = work / weights.name
    shutil.copy2(weights, src)
    model = YOLO(str(src))
    if getattr(model, "task", "detect") != "detect":
        raise ExportError(f"{weights}: task {model.task!r}; pockit deploys detection models only")
    try:
        out = model.export(format="onnx", opset=opset, imgsz=imgsz, dynamic=dynamic, simplify=simplify,
                           half=half, batch=batch, nms=nms, device=0 if half else "cpu", verbose=False)
    except Exception as e:
        raise ExportError(
            f"Ultralytics ONNX export of {weights} failed at opset {opset}: {e}. Try another opset "
            f"(--opset 13 for old runtimes, 17 by default), --no-simplify if onnxslim failed, and check the torch/onnx versions."
        ) from e
    out = Path(out)
    output = Path(output) if output is not None else weights.with_suffix(".onnx")
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(out), output)
    shutil.rmtree(work, ignore_errors=True)
    out = output
    log.info("exported %s -> %s (opset %d, dynamic=%s, simplify=%s)", weights, out, opset, dynamic, simplify)
    return out


def onnx_summary(path: str | Path) -> dict:
    """Opset, inputs/outputs with shapes (symbolic dims as names), operator set used."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=None)
    return {
        "opset": opset,
        "inputs": {i.name: dims(i) for i in m.graph.input},
        "outputs": {o.name: dims(o) for o in m.graph.output},
        "ops": sorted({n.op_type for n in m.graph.node}),
        "metadata": {p.key: p.value for p in m.metadata_props},
    }


@dataclass
class ExportCheck:
    """Outcome of running the torch model and the ONNX file on the same inputs."""

    frames: int
    max_abs_diff: float  # largest |torch - onnx| over all raw outputs
    max_abs_diff_boxes: float  # same, box channels only (pixels of the network input)
    max_abs_diff_scores: float  # same, class-score channels only
    detections_torch: int
    detections_onnx: int
    matched: int  # same class, IoU >= 0.5, one-to-one
    mean_iou: float
    per_frame: list[dict] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        n = max(self.detections_torch, self.detections_onnx)
        return 1.0 if n == 0 else self.matched / n

    def ok(self, score_tol: float = 1e-2, agreement: float = 0.95) -> bool:
        return self.max_abs_diff_scores <= score_tol and self.agreement >= agreement

    def to_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}

    def summary(self) -> str:
        return (f"{self.frames} frames: max |diff| raw {self.max_abs_diff:.3g} (boxes {self.max_abs_diff_boxes:.3g} px, "
                f"scores {self.max_abs_diff_scores:.3g}); detections torch {self.detections_torch} / onnx "
                f"{self.detections_onnx}, matched {self.matched} ({self.agreement:.1%}), mean IoU {self.mean_iou:.4f}")


def compare_outputs(ref: np.ndarray, other: np.ndarray, nc: int | None = None) -> tuple[float, float, float]:
    """Largest abs differences (all, box channels, score channels) of (B, 4+nc, N) outputs."""
    ref, other = np.asarray(ref, np.float32), np.asarray(other, np.float32)
    if ref.shape != other.shape:
        raise ExportError(
            f"output shapes differ: torch {ref.shape} vs onnx {other.shape}; the export changed the output layout "
            "(re-export without nms/end2end options, or check the output order of a multi-output model)"
        )
    d = np.abs(ref - other)
    return float(d.max(initial=0)), float(d[:, :4].max(initial=0)), float(d[:, 4:4 + (nc or d.shape[1] - 4)].max(initial=0))


def check_export(
    weights: str | Path,
    onnx_path: str | Path,
    images: Sequence[np.ndarray],
    *,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.45,
    batch: int = 4,
) -> ExportCheck:
    """Run the ``.pt`` (PyTorch, FP32 CPU) and the ``.onnx`` (ONNX Runtime CPU) on the same frames."""
    import onnxruntime as ort

    from ..inference.postprocess import postprocess
    from ..inference.preprocess import preprocess_batch
    from ..inference.torch_backend import _import_torch, load_torch_model
    from ..resolve import match_detections

    if not images:
        raise ValueError("check_export needs at least one image")
    torch = _import_torch()
    model, names, _ = load_torch_model(weights, "cpu")
    model = model.float().eval()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    static_b = inp.shape[0] if isinstance(inp.shape[0], int) else None
    in_type = np.float16 if "float16" in inp.type else np.float32
    nc = len(names) or None
    tot = dict(all=0.0, box=0.0, score=0.0)
    n_t = n_o = matched = 0
    ious: list[float] = []
    per_frame = []
    step = static_b or batch
    for s in range(0, len(images), step):
        chunk = list(images[s:s + step])
        real = len(chunk)
        if static_b and real < static_b:
            chunk += [chunk[-1]] * (static_b - real)
        x, infos = preprocess_batch(chunk, imgsz)
        with torch.inference_mode():
            y = model(torch.from_numpy(x))
            y = (y[0] if isinstance(y, (list, tuple)) else y).numpy()
        o = sess.run(None, {inp.name: x.astype(in_type)})[0].astype(np.float32)
        a, b_, c = compare_outputs(y[:real], o[:real], nc)
        tot["all"], tot["box"], tot["score"] = max(tot["all"], a), max(tot["box"], b_), max(tot["score"], c)
        dt = postprocess(y[:real], infos[:real], names, conf=conf, iou=iou)
        do = postprocess(o[:real], infos[:real], names, conf=conf, iou=iou)
        for k, (p, q) in enumerate(zip(dt, do)):
            pairs = match_detections(p, q)
            m = len(pairs)
            n_t, n_o, matched = n_t + len(p), n_o + len(q), matched + m
            ious += [v for _, _, v in pairs]
            per_frame.append({"frame": s + k, "torch": len(p), "onnx": len(q), "matched": m})
    return ExportCheck(
        frames=len(images), max_abs_diff=tot["all"], max_abs_diff_boxes=tot["box"], max_abs_diff_scores=tot["score"],
        detections_torch=n_t, detections_onnx=n_o, matched=matched,
        mean_iou=float(np.mean(ious)) if ious else 1.0, per_frame=per_frame,
    )
