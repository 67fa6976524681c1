"""Build TensorRT (>= 10) engines from ONNX: FP16/INT8, dynamic batch, DLA, timing cache, engine cache.

One module a concern, every public name importable from here (``from pockit.deploy.tensorrt import build_engine``):

* :mod:`.cache`: :class:`BuildSpec`, the input profile, the engine cache key of (model sha256, TensorRT version,
  GPU name + compute capability, precision, shapes, DLA core), engine files, :func:`check_engine` (refuses an engine
  built for another TensorRT or GPU, saying how to rebuild) and the equivalent ``trtexec`` command.
* :mod:`.calib`: INT8 calibration data (captured customer images and videos batched through pockit's letterbox, so
  calibration sees exactly what inference sees) and TensorRT's implicit-quantization calibrators
  (``IInt8EntropyCalibrator2`` / ``IInt8MinMaxCalibrator``) with their cache.
* :mod:`.diag`: the ONNX parser's errors and engine outputs turned into what to try.
* :mod:`.build`: :func:`build_engine`, the TensorRT 10 build itself.

The INT8-vs-FP16 comparison is evaluation: :mod:`pockit.evaluate.agreement` (re-exported here).
Nothing here imports ``tensorrt`` at module import time.
"""
from ...evaluate.agreement import PrecisionReport, compare_precisions
from ...registry import sha256_file
from .build import BuildResult, build_engine, import_trt
from .cache import (CALIBRATORS, MAX_OPSET, PRECISIONS, BuildSpec, EngineBuildError, EngineMismatchError, GpuIdentity,
                    cache_key, check_engine, engine_filename, format_command, gpu_identity, input_spec, onnx_opset,
                    profile_shapes, trtexec_command, write_engine)
from .calib import IMAGE_EXT, VIDEO_EXT, CalibrationData, calibration_cache_path, calibration_files, make_calibrator
from .diag import PLUGIN_OPS, ParserProblem, diagnose_outputs, diagnose_parse_failure, parser_problems

__all__ = [
    "CALIBRATORS", "IMAGE_EXT", "MAX_OPSET", "PLUGIN_OPS", "PRECISIONS", "VIDEO_EXT", "BuildResult", "BuildSpec",
    "CalibrationData", "EngineBuildError", "EngineMismatchError", "GpuIdentity", "ParserProblem", "PrecisionReport",
    "build_engine", "cache_key", "calibration_cache_path", "calibration_files", "check_engine", "compare_precisions",
    "diagnose_outputs", "diagnose_parse_failure", "engine_filename", "format_command", "gpu_identity", "import_trt",
    "input_spec", "make_calibrator", "onnx_opset", "parser_problems", "profile_shapes", "sha256_file",
    "trtexec_command", "write_engine",
]
