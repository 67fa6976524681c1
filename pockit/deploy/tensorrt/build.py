"""The TensorRT engine build: parse, profile, precision flags, INT8 calibration, DLA, timing cache, then the engine
file with pockit's metadata, reused from the cache when its key matches (:func:`build_engine`).

Written against the TensorRT 10 Python API (``trt.Builder``, ``create_network(0)``: explicit batch is the only mode
in TensorRT 10; ``trt.OnnxParser``; ``IBuilderConfig.set_memory_pool_limit``; ``build_serialized_network``).
``tensorrt`` is imported when a build starts, never at module import time.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .cache import (BuildSpec, EngineBuildError, EngineMismatchError, GpuIdentity, cache_key, check_engine,
                    engine_filename, format_command, gpu_identity, input_spec, onnx_opset, profile_shapes, sha256_file,
                    trtexec_command, write_engine)
from .calib import CalibrationData, calibration_cache_path, make_calibrator
from .diag import diagnose_outputs, diagnose_parse_failure, parser_problems

log = logging.getLogger("pockit.deploy.tensorrt")


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
    from ...inference.tensorrt_backend import import_tensorrt

    return import_tensorrt()


def build_engine(spec: BuildSpec, cache_dir: str | Path | None = None, *, output: str | Path | None = None,
                 force: bool = False, class_names: dict[int, str] | None = None, verbose: bool = False,
                 trt: Any = None, gpu: GpuIdentity | None = None, memory: Any = None) -> BuildResult:
    """Build (or reuse from cache) an engine for ``spec`` on this machine's GPU."""
    import time

    from ...paths import cache_dir as default_cache

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
