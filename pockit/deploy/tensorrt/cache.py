"""TensorRT build specification and engine cache: what to build (:class:`BuildSpec`), the input profile, the cache
key of (model sha256, TensorRT version, GPU, precision, shapes, DLA core), engine files with their metadata, the
check that refuses an engine built for another TensorRT or GPU, and the equivalent ``trtexec`` command line.

Nothing here imports ``tensorrt``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...registry import sha256_file  # noqa: F401  (one checksum helper for pockit)

log = logging.getLogger("pockit.deploy.tensorrt")

PRECISIONS = ("fp32", "fp16", "int8", "best")
CALIBRATORS = ("entropy", "minmax")
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
    from ..jetson import detect_platform

    plat = detect_platform()
    if plat.is_jetson and plat.compute_capability:
        return GpuIdentity(plat.gpu_name or plat.module or "Jetson", plat.compute_capability)
    raise EngineBuildError("cannot identify the GPU (no torch CUDA, no nvidia-smi, not a Jetson)",
                           ["run on the machine that will execute the engine; engines are GPU-specific"])


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
    from ...inference.tensorrt_backend import read_engine_file

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


