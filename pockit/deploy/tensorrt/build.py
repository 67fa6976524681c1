"""Build TensorRT (>= 10) engines from ONNX: FP16/INT8, dynamic batch, DLA, timing cache, engine cache.

Written against the TensorRT 10 Python API (``trt.Builder``, ``create_network(0)``: explicit batch
is the only mode in TensorRT 10; ``trt.OnnxParser``; ``IBuilderConfig.set_memory_pool_limit``;
``build_serialized_network``). INT8 uses TensorRT's implicit-quantization calibrators
(``IInt8EntropyCalibrator2`` / ``IInt8MinMaxCalibrator``, deprecated since 10.1 but still supported
on every JetPack 6 / TensorRT 10 release) fed from captured customer images, batched through
pockit's letterbox so calibration sees exactly what inference sees.

Engines are cached under a key of (model sha256, TensorRT version, GPU name + compute capability,
precision, shapes, DLA core): an engine is only valid on the TensorRT version and GPU model it was
built on, and :func:`check_engine` refuses to load one built elsewhere with a message that says
how to rebuild. Every build also prints the equivalent ``trtexec`` command line.

Nothing here imports ``tensorrt`` at module import time.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8", "best")
CALIBRATORS = ("entropy", "minmax")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXT = (".mp4", ".avi", ".mkv", ".mov", ".ts", ".h264", ".h265")
MAX_OPSET = {8: 17, 10: 20}  # TensorRT major -> newest ONNX opset its parser handles (8.6: 17; 10.x: 20+)


class EngineBuildError(RuntimeError):
    """A build failed; ``hints`` lists what to try."""

    def __init__(self, message: str, hints: Sequence[str] = ()) -> None:
        self.hints = list(hints)
        text = message + ("".join(f"\n  - try: {h}" for h in self.hints) if self.hints else "")
        super().__init__(text)


class EngineMismatchError(RuntimeError):
    """A cached engine was built for another TensorRT version or GPU."""


# -- identity of the build machine -------------------------------------------------------------
@dataclass(frozen=True)
class GpuIdentity:
    name: str
    compute_capability: str  # "8.7"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower() + "-sm" + self.compute_capability.replace(".", "")


def gpu_identity(device: int = 0) -> GpuIdentity:
    """Name and compute capability of the GPU: torch, then nvidia-smi, then the Jetson device tree."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device)
            return GpuIdentity(torch.cuda.get_device_name(device), f"{major}.{minor}")
    except ImportError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            name, cc = [s.strip() for s in out.stdout.strip().splitlines()[device].split(",")[:2]]
            return GpuIdentity(name, cc)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        pass
    from .jetson import detect_platform

    plat = detect_platform()
    if plat.is_jetson and plat.compute_capability:
        return GpuIdentity(plat.gpu_name or plat.module or "Jetson", plat.compute_capability)
    raise EngineBuildError("cannot identify the GPU (no torch CUDA, no nvidia-smi, not a Jetson)",
                           ["run on the machine that will execute the engine; engines are GPU-specific"])


from ..registry import sha256_file  # noqa: E402,F401


# -- build specification -----------------------------------------------------------------------
@dataclass
class BuildSpec:
    """What to build. ``batch``: (min, opt, max) for a dynamic-batch ONNX; ``workspace_mib``:
    builder scratch memory; ``dla_core``: Jetson DLA core (None = GPU only); ``calib``: images,
    folders or videos for INT8; ``fp16_layers``: regexes of layer names kept in FP16 under INT8."""

    onnx: Path
    precision: str = "fp16"
    imgsz: int = 640
    batch: tuple[int, int, int] | None = None  # None: (1, 8, 16) for a dynamic batch, the fixed one otherwise
    workspace_mib: int = 2048
    dla_core: int | None = None
    calib: list[str] = field(default_factory=list)
    calib_algo: str = "entropy"
    calib_batch: int = 8
    calib_max_images: int = 512
    timing_cache: Path | None = None
    fp16_layers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.onnx = Path(self.onnx)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use one of {PRECISIONS}")
        if self.calib_algo not in CALIBRATORS:
            raise ValueError(f"calib_algo {self.calib_algo!r}: use one of {CALIBRATORS}")
        if self.batch is not None:
            b = tuple(int(v) for v in self.batch)
            if len(b) != 3 or not (1 <= b[0] <= b[1] <= b[2]):
                raise ValueError(f"batch must be (min, opt, max) with 1 <= min <= opt <= max, got {self.batch}")
            self.batch = b  # type: ignore[assignment]
        if self.precision in ("int8", "best") and not self.calib:
            raise ValueError("INT8 needs calibration images (calib: folder/glob/video of frames from the customer's cameras)")
        if self.workspace_mib < 64:
            raise ValueError(f"workspace_mib={self.workspace_mib} is too small; use >= 256 (Jetson) or 1024+ (dGPU)")


def input_spec(onnx_path: str | Path) -> tuple[str, list]:
    """(name, dims) of the ONNX model's single image input; symbolic dims are strings."""
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EngineBuildError(f"{onnx_path}: expected one image input, found {[i.name for i in inputs]}")
    i = inputs[0]
    dims = [d.dim_param or (d.dim_value if d.dim_value > 0 else "?") for d in i.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise EngineBuildError(f"{onnx_path}: input {i.name} has shape {dims}; pockit expects (B, 3, H, W)")
    return i.name, dims


def onnx_opset(onnx_path: str | Path) -> int | None:
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    return max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=None)


def profile_shapes(dims: Sequence, spec: BuildSpec) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of the image input for an optimization profile.

    Static dims are kept (and must agree with the request); dynamic batch takes ``spec.batch``,
    dynamic H/W take ``spec.imgsz``."""
    b, c, h, w = dims
    if isinstance(c, int) and c != 3:
        raise EngineBuildError(f"input has {c} channels; pockit feeds 3-channel RGB images")
    def hw(v, what):
        if isinstance(v, int):
            if v != spec.imgsz:
                raise EngineBuildError(f"the ONNX input {what} is fixed at {v} but imgsz={spec.imgsz} was asked",
                                       [f"use --imgsz {v}", f"re-export with imgsz={spec.imgsz} (pockit deploy export --imgsz {spec.imgsz})"])
            return v
        return spec.imgsz
    H, W = hw(h, "height"), hw(w, "width")
    if isinstance(b, int):
        if spec.batch is not None and spec.batch != (b, b, b):
            raise EngineBuildError(f"the ONNX batch is fixed at {b}; a dynamic batch {spec.batch} needs a dynamic export",
                                   ["pockit deploy export MODEL.pt --dynamic", f"or build with --batch {b},{b},{b}"])
        mn = op = mx = b
    else:
        mn, op, mx = spec.batch or (1, 8, 16)
    return (mn, 3, H, W), (op, 3, H, W), (mx, 3, H, W)


# -- cache keys --------------------------------------------------------------------------------
def cache_key(model_sha256: str, trt_version: str, gpu: GpuIdentity, spec: BuildSpec,
              shapes: Sequence[Sequence[int]]) -> dict:
    """The fields an engine depends on, plus ``key`` (sha256 of them, 16 hex)."""
    fields = {
        "model_sha256": model_sha256,
        "tensorrt": str(trt_version),
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
        "precision": spec.precision,
        "shapes": [list(map(int, s)) for s in shapes],
        "dla_core": spec.dla_core,
        "fp16_layers": sorted(spec.fp16_layers),
        "calib_algo": spec.calib_algo if spec.precision in ("int8", "best") else None,
    }
    fields["key"] = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return fields


def engine_filename(onnx_path: Path, key: dict) -> str:
    mx = key["shapes"][2]
    dla = f"-dla{key['dla_core']}" if key["dla_core"] is not None else ""
    return f"{onnx_path.stem}-{key['precision']}-b{mx[0]}-{mx[2]}{dla}-{key['key']}.engine"


def check_engine(engine_path: str | Path, trt_version: str, gpu: GpuIdentity) -> dict:
    """Read an engine's pockit key (JSON header) and refuse engines built for another TRT/GPU."""
    from ..inference.tensorrt_backend import read_engine_file

    meta, _ = read_engine_file(engine_path)
    key = meta.get("pockit") if isinstance(meta, dict) else None
    if not key:
        side = Path(str(engine_path) + ".json")
        if side.exists():
            key = json.loads(side.read_text()).get("pockit")
    if not key:
        log.warning("%s carries no pockit build key (built by trtexec?); cannot check it matches this GPU", engine_path)
        return {}
    problems = []
    if key.get("tensorrt") != str(trt_version):
        problems.append(f"TensorRT {key.get('tensorrt')} (this machine: {trt_version})")
    if key.get("gpu") != gpu.name or key.get("compute_capability") != gpu.compute_capability:
        problems.append(f"GPU {key.get('gpu')} sm{key.get('compute_capability')} (this machine: {gpu.name} sm{gpu.compute_capability})")
    if problems:
        raise EngineMismatchError(
            f"{engine_path} was built for " + " and ".join(problems) + ". TensorRT engines are not portable across "
            "GPU models or TensorRT versions: rebuild it here with 'pockit deploy engine MODEL.onnx' "
            "(or the build_engine.sh of the bundle), from the ONNX file, not the engine."
        )
    return key


def write_engine(path: Path, engine_bytes: bytes, meta: dict) -> None:
    """Engine file with the Ultralytics-style header (4-byte LE length + JSON) and a .json sidecar."""
    blob = json.dumps(meta, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as f:
        f.write(len(blob).to_bytes(4, "little"))
        f.write(blob)
        f.write(engine_bytes)
    tmp.replace(path)
    Path(str(path) + ".json").write_text(json.dumps(meta, indent=1, sort_keys=True))


# -- trtexec -----------------------------------------------------------------------------------
def trtexec_command(spec: BuildSpec, engine_path: str | Path, input_name: str,
                    shapes: Sequence[Sequence[int]] | None, calib_cache: str | Path | None = None,
                    trtexec: str = "trtexec") -> list[str]:
    """The trtexec arguments for the same build (TensorRT 10 flag names)."""
    cmd = [trtexec, f"--onnx={spec.onnx}", f"--saveEngine={engine_path}"]
    if shapes is not None:
        def s(v):
            return f"{input_name}:{'x'.join(str(int(d)) for d in v)}"
        cmd += [f"--minShapes={s(shapes[0])}", f"--optShapes={s(shapes[1])}", f"--maxShapes={s(shapes[2])}"]
    if spec.precision in ("fp16", "best"):
        cmd.append("--fp16")
    if spec.precision in ("int8", "best"):
        cmd.append("--int8")
        if calib_cache:
            cmd.append(f"--calib={calib_cache}")
    if spec.fp16_layers and spec.precision in ("int8", "best"):
        cmd += ["--precisionConstraints=prefer", "--layerPrecisions=" + ",".join(f"{p}:fp16" for p in spec.fp16_layers)]
    cmd.append(f"--memPoolSize=workspace:{int(spec.workspace_mib)}")  # MiB
    if spec.dla_core is not None:
        cmd += [f"--useDLACore={spec.dla_core}", "--allowGPUFallback"]
    if spec.timing_cache:
        cmd.append(f"--timingCacheFile={spec.timing_cache}")
    return cmd


def format_command(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


# -- calibration data --------------------------------------------------------------------------
def calibration_files(sources: Sequence[str | Path]) -> list[Path]:
    """Expand folders/globs into image and video files (sorted, de-duplicated)."""
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXT + VIDEO_EXT)
        elif any(ch in str(s) for ch in "*?["):
            out += sorted(q for q in Path().glob(str(s)) if q.suffix.lower() in IMAGE_EXT + VIDEO_EXT)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXT + VIDEO_EXT:
                raise ValueError(f"calibration source {p}: not an image or video ({', '.join(IMAGE_EXT + VIDEO_EXT)})")
            out.append(p)
        else:
            raise FileNotFoundError(f"calibration source not found: {s}")
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


class CalibrationData:
    """Letterboxed (B, 3, H, W) float32 batches from images and videos, in a fixed order.

    Videos contribute up to ``frames_per_video`` frames spread evenly over their length. The last
    partial batch is dropped (TensorRT calibrates with full batches); ``skipped`` lists unreadable files.
    """

    def __init__(self, sources: Sequence[str | Path], batch: int = 8, imgsz: int = 640,
                 max_images: int = 512, frames_per_video: int = 64) -> None:
        if batch < 1:
            raise ValueError("calibration batch must be >= 1")
        self.files = calibration_files(sources)
        self.batch, self.imgsz, self.max_images, self.frames_per_video = batch, imgsz, max_images, frames_per_video
        self.skipped: list[str] = []
        if not self.files:
            raise ValueError(f"no calibration images or videos found in {list(map(str, sources))}")

    def frames(self) -> Iterator[np.ndarray]:
        import cv2

        n = 0
        for f in self.files:
            if n >= self.max_images:
                return
            if f.suffix.lower() in IMAGE_EXT:
                im = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if im is None:
                    self.skipped.append(str(f))
                    continue
                n += 1
                yield im
            else:
                cap = cv2.VideoCapture(str(f))
                total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
                want = min(self.frames_per_video, self.max_images - n)
                picks = set(np.linspace(0, max(total - 1, 0), num=want).astype(int).tolist()) if total else None
                i = got = 0
                while got < want:
                    ok, im = cap.read()
                    if not ok:
                        break
                    if picks is None or i in picks:
                        got += 1
                        n += 1
                        yield im
                    i += 1
                cap.release()
                if got == 0:
                    self.skipped.append(str(f))

    def batches(self) -> Iterator[np.ndarray]:
        from ..inference.preprocess import preprocess_batch

        buf: list[np.ndarray] = []
        for im in self.frames():
            buf.append(im)
            if len(buf) == self.batch:
                x, _ = preprocess_batch(buf, self.imgsz)
                yield np.ascontiguousarray(x, np.float32)
                buf = []
        if buf:
            log.info("calibration: dropped a last partial batch of %d frames", len(buf))

    def __len__(self) -> int:
        return sum(1 for _ in self.batches())


def calibration_cache_path(cache_dir: Path, model_sha256: str, spec: BuildSpec) -> Path:
    """Calibration caches depend on the model, the input size and the algorithm (not on the GPU)."""
    return cache_dir / f"calib-{model_sha256[:16]}-{spec.imgsz}-{spec.calib_algo}.cache"


def make_calibrator(trt, data: CalibrationData, cache_file: str | Path, algo: str = "entropy", memory: Any = None):
    """An ``IInt8EntropyCalibrator2`` / ``IInt8MinMaxCalibrator`` subclass instance over ``data``.

    ``memory``: device-memory helper with alloc/ptr/h2d/synchronize (default: torch or cuda-python).
    An existing cache file is returned to TensorRT and no image is read.
    """
    base = {"entropy": trt.IInt8EntropyCalibrator2, "minmax": trt.IInt8MinMaxCalibrator}[algo]
    cache_file = Path(cache_file)

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.data, self.cache_file = data, cache_file
            self._it: Iterator[np.ndarray] | None = None
            self._mem = memory
            self._buf = None
            self.batches_served = 0

        def get_batch_size(self) -> int:
            return data.batch

        def get_batch(self, names, *args):
            if self._it is None:
                self._it = data.batches()
            try:
                x = next(self._it)
            except StopIteration:
                return None
            if self._mem is None:
                from ..inference.tensorrt_backend import default_memory

                self._mem = default_memory()
            if self._buf is None:
                self._buf = self._mem.alloc(x.nbytes)
            self._mem.h2d(self._buf, x)
            self._mem.synchronize()
            self.batches_served += 1
            return [self._mem.ptr(self._buf)] * len(names)

        def read_calibration_cache(self):
            if self.cache_file.exists() and self.cache_file.stat().st_size > 0:
                log.info("INT8: using calibration cache %s", self.cache_file)
                return self.cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            self.cache_file.write_bytes(bytes(cache))
            log.info("INT8: wrote calibration cache %s", self.cache_file)

    return _Calibrator()


# -- diagnosis ---------------------------------------------------------------------------------
@dataclass
class ParserProblem:
    code: str
    desc: str
    node: int
    node_name: str = ""
    operator: str = ""


def parser_problems(parser) -> list[ParserProblem]:
    """All errors of a failed ``OnnxParser.parse`` (TensorRT 10 exposes node name and operator)."""
    out = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)

        def call(name, default="", e=e):
            f = getattr(e, name, None)
            try:
                return f() if callable(f) else default
            except Exception:  # older bindings
                return default
        out.append(ParserProblem(code=str(call("code")).split(".")[-1], desc=str(call("desc")), node=int(call("node", -1)),
                                 node_name=str(call("node_name")), operator=str(call("node_operator"))))
    return out


PLUGIN_OPS = {"NonMaxSuppression", "EfficientNMS_TRT", "BatchedNMS_TRT", "BatchedNMSDynamic_TRT", "RoiAlign", "TopK"}


def diagnose_parse_failure(problems: Sequence[ParserProblem], opset: int | None, trt_version: str) -> list[str]:
    """What to try, from the parser's error list, the model's opset and the TensorRT version."""
    hints: list[str] = []
    major = int(str(trt_version).split(".")[0]) if str(trt_version)[:1].isdigit() else 10
    max_opset = MAX_OPSET.get(major, 20)
    if opset is not None and opset > max_opset:
        hints.append(f"the model uses ONNX opset {opset} but TensorRT {trt_version}'s parser handles up to ~{max_opset}: "
                     f"re-export with 'pockit deploy export MODEL.pt --opset 17'")
    ops = sorted({p.operator for p in problems if p.operator})
    codes = {p.code for p in problems}
    if any(p.operator in PLUGIN_OPS or "NMS" in p.operator for p in problems):
        hints.append("the graph contains NMS/plugin ops the parser cannot build: re-export without NMS "
                     "(pockit runs NMS itself): 'pockit deploy export MODEL.pt' (no --nms)")
    if "UNSUPPORTED_NODE" in codes or "UNSUPPORTED_GRAPH" in codes:
        hints.append(f"unsupported layers {ops or '(see errors)'}: simplify the graph (export with --simplify, "
                     "onnxslim), or re-export with another opset (--opset 13 or 17)")
    if "INVALID_GRAPH" in codes or "INVALID_NODE" in codes or "INVALID_VALUE" in codes:
        hints.append("invalid graph/shape: export with static height/width (--imgsz 640, no dynamic H/W) and simplify; "
                     "check the file opens with onnxruntime")
    if "MODEL_DESERIALIZE_FAILED" in codes:
        hints.append("the file is not a readable ONNX model (truncated copy? external weights missing beside it?)")
    if not hints:
        hints.append("run 'polygraphy inspect model MODEL.onnx' and try --opset 17 with --simplify")
    return hints


def diagnose_outputs(shapes: dict[str, Sequence[int]], nc: int | None) -> list[str]:
    """Problems with the engine's outputs for pockit's post-processing (layout, order)."""
    from ..inference.postprocess import NMS4_NAMES, OutputLayoutError, detect_layout

    msgs = []
    names = list(shapes)
    if len(names) > 1 and set(NMS4_NAMES) <= set(names):
        return msgs
    if len(names) > 1:
        msgs.append(f"{len(names)} outputs {names}: pockit reads the first as detections; for a segmentation or "
                    "multi-head export the order must be (detections, protos). Re-export a detection model, or check "
                    "the output order with 'polygraphy inspect model'.")
    first = shapes[names[0]]
    dummy = np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in first], np.float32)
    try:
        layout = detect_layout([dummy], nc)
    except OutputLayoutError as e:
        msgs.append(f"output {names[0]} {list(first)}: {e}")
        return msgs
    if nc is not None and layout == "v8":
        ch = first[1]
        if isinstance(ch, int) and ch != 4 + nc:
            msgs.append(f"output {names[0]} has {ch} channels but the model has {nc} classes (expected {4 + nc}): "
                        "wrong class names, or a segmentation/pose head")
    if layout == "v8t":
        msgs.append(f"output {names[0]} {list(first)} is (B, anchors, 4+nc), transposed from Ultralytics' (B, 4+nc, anchors): "
                    "pockit handles it (layout v8t), but DeepStream parsers expecting the other order will not")
    return msgs


@dataclass
class PrecisionReport:
    """INT8 vs FP16 detections on the same frames."""

    frames: int
    fp16_boxes: int
    int8_boxes: int
    matched: int
    mean_iou: float
    mean_score_drift: float

    @property
    def recall_vs_fp16(self) -> float:
        return 1.0 if self.fp16_boxes == 0 else self.matched / self.fp16_boxes

    @property
    def precision_vs_fp16(self) -> float:
        return 1.0 if self.int8_boxes == 0 else self.matched / self.int8_boxes

    def hints(self, min_recall: float = 0.95) -> list[str]:
        if self.recall_vs_fp16 >= min_recall and self.precision_vs_fp16 >= min_recall and self.mean_iou >= 0.9:
            return []
        return [
            f"INT8 keeps {self.recall_vs_fp16:.1%} of the FP16 detections (precision {self.precision_vs_fp16:.1%}, "
            f"mean IoU {self.mean_iou:.3f}, score drift {self.mean_score_drift:+.3f}): INT8 loses accuracy here",
            "calibrate with more frames from the customer's own cameras (>= 500, day and night, busy and empty scenes)",
            "try the other calibrator (--calib-algo minmax often suits detection heads better than entropy)",
            "keep the detection head in FP16: --fp16-layers '/model.22/.*' (Ultralytics YOLOv8 head) or deploy FP16",
            "delete the stale calibration cache after changing images (it is reused otherwise)",
        ]


def compare_precisions(fp16: Sequence, int8: Sequence, iou_thr: float = 0.5) -> PrecisionReport:
    """Match INT8 detections to FP16 ones frame by frame (same class, IoU >= thr)."""
    from .export import match_detections

    if len(fp16) != len(int8):
        raise ValueError(f"{len(fp16)} FP16 frames vs {len(int8)} INT8 frames")
    n16 = n8 = m = 0
    ious: list[float] = []
    drift: list[float] = []
    from ..core import box_iou

    for a, b in zip(fp16, int8):
        k, iu = match_detections(a, b, iou_thr)
        n16, n8, m = n16 + len(a), n8 + len(b), m + k
        ious += iu
        if len(a) and len(b):
            iou = box_iou(a.xyxy, b.xyxy)
            j = iou.argmax(1)
            ok = iou[np.arange(len(a)), j] >= iou_thr
            drift += (b.scores[j[ok]] - a.scores[ok]).tolist()
    return PrecisionReport(len(fp16), n16, n8, m, float(np.mean(ious)) if ious else 1.0,
                           float(np.mean(drift)) if drift else 0.0)


# -- the build ---------------------------------------------------------------------------------
@dataclass
class BuildResult:
    engine: Path
    key: dict
    trtexec: str
    cached: bool
    calib_cache: Path | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["engine"], d["calib_cache"] = str(self.engine), str(self.calib_cache) if self.calib_cache else None
        return d


def import_trt():
    from ..inference.tensorrt_backend import import_tensorrt

    return import_tensorrt()


def build_engine(spec: BuildSpec, cache_dir: str | Path | None = None, *, output: str | Path | None = None,
                 force: bool = False, class_names: dict[int, str] | None = None, verbose: bool = False,
                 trt: Any = None, gpu: GpuIdentity | None = None, memory: Any = None) -> BuildResult:
    """Build (or reuse from cache) an engine for ``spec`` on this machine's GPU."""
    import time

    from ..paths import cache_dir as default_cache

    if not spec.onnx.is_file():
        raise FileNotFoundError(f"ONNX model not found: {spec.onnx}")
    trt = trt or import_trt()
    gpu = gpu or gpu_identity()
    cache_dir = Path(cache_dir) if cache_dir else default_cache() / "engines"
    cache_dir.mkdir(parents=True, exist_ok=True)
    name, dims = input_spec(spec.onnx)
    shapes = profile_shapes(dims, spec)
    sha = sha256_file(spec.onnx)
    key = cache_key(sha, trt.__version__, gpu, spec, shapes)
    engine_path = Path(output) if output else cache_dir / engine_filename(spec.onnx, key)
    calib_cache = calibration_cache_path(cache_dir, sha, spec) if spec.precision in ("int8", "best") else None
    dynamic = any(isinstance(d, str) for d in dims)
    cmd = format_command(trtexec_command(spec, engine_path, name, shapes if dynamic else None, calib_cache))
    print(f"equivalent trtexec command:\n  {cmd}")
    if engine_path.exists() and not force:
        try:
            old = check_engine(engine_path, trt.__version__, gpu)
        except EngineMismatchError as e:
            log.warning("%s; rebuilding", e)
            old = {}
        if old.get("key") == key["key"]:
            log.info("engine cache hit: %s", engine_path)
            return BuildResult(engine_path, key, cmd, cached=True, calib_cache=calib_cache)

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.onnx)):
        problems = parser_problems(parser)
        listing = "\n".join(f"    [{p.code}] node {p.node} {p.node_name} ({p.operator}): {p.desc}" for p in problems)
        raise EngineBuildError(f"TensorRT {trt.__version__} could not parse {spec.onnx}:\n{listing}",
                               diagnose_parse_failure(problems, onnx_opset(spec.onnx), trt.__version__))
    out_shapes = {network.get_output(i).name: tuple(network.get_output(i).shape) for i in range(network.num_outputs)}
    for m in diagnose_outputs(out_shapes, len(class_names) if class_names else None):
        log.warning("%s", m)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec.workspace_mib) << 20)
    profile = None
    if dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(name, *shapes)
        config.add_optimization_profile(profile)
    if spec.precision in ("fp16", "best"):
        config.set_flag(trt.BuilderFlag.FP16)
    if spec.precision in ("int8", "best"):
        config.set_flag(trt.BuilderFlag.INT8)
        data = CalibrationData(spec.calib, batch=spec.calib_batch, imgsz=spec.imgsz, max_images=spec.calib_max_images)
        config.int8_calibrator = make_calibrator(trt, data, calib_cache, spec.calib_algo, memory)
        if profile is not None:
            calib_profile = builder.create_optimization_profile()
            cshape = (spec.calib_batch, 3, shapes[0][2], shapes[0][3])
            calib_profile.set_shape(name, cshape, cshape, cshape)
            config.set_calibration_profile(calib_profile)
        if spec.fp16_layers:
            pats = [re.compile(p) for p in spec.fp16_layers]
            n = 0
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                if any(p.search(layer.name) for p in pats):
                    layer.precision = trt.DataType.HALF
                    for j in range(layer.num_outputs):
                        layer.set_output_type(j, trt.DataType.HALF)
                    n += 1
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
            config.set_flag(trt.BuilderFlag.FP16)
            log.info("INT8: %d layers kept in FP16 (%s)", n, spec.fp16_layers)
    if spec.dla_core is not None:
        if builder.num_DLA_cores <= spec.dla_core:
            raise EngineBuildError(f"DLA core {spec.dla_core} asked for but this device has {builder.num_DLA_cores} DLA cores",
                                   ["Orin AGX/NX have 2 DLA cores (0, 1); Orin Nano has none: drop --dla"])
        if spec.precision == "fp32":
            raise EngineBuildError("DLA runs FP16 or INT8 only", ["build with --precision fp16 --dla 0"])
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(spec.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    timing = None
    if spec.timing_cache:
        blob = Path(spec.timing_cache).read_bytes() if Path(spec.timing_cache).exists() else b""
        timing = config.create_timing_cache(blob)
        config.set_timing_cache(timing, False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        hints = ["rerun with -v for TensorRT's verbose log",
                 f"raise the workspace (--workspace {spec.workspace_mib * 2})"]
        if spec.dla_core is not None:
            hints.append("some layers cannot run on DLA: keep GPU fallback or drop --dla")
        if spec.precision in ("int8", "best"):
            hints.append("INT8 calibration failed? check the calibration images load, or delete the calibration cache")
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build an engine from {spec.onnx}", hints)
    if spec.timing_cache:
        Path(spec.timing_cache).parent.mkdir(parents=True, exist_ok=True)
        Path(spec.timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    meta = {
        "description": "pockit TensorRT engine",
        "task": "detect",
        "imgsz": [spec.imgsz, spec.imgsz],
        "batch": shapes[2][0],
        "names": {int(k): v for k, v in (class_names or {}).items()},
        "stride": 32,
        "pockit": key,
        "trtexec": cmd,
    }
    write_engine(engine_path, bytes(serialized), meta)
    secs = time.perf_counter() - t0
    log.info("built %s in %.0f s", engine_path, secs)
    return BuildResult(engine_path, key, cmd, cached=False, calib_cache=calib_cache, seconds=secs)
