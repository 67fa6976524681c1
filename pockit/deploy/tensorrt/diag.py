"""TensorRT diagnostics: the ONNX parser's errors and what to try (opset, NMS/plugin ops, unsupported or invalid
nodes), and problems with an engine's outputs for pockit's post-processing."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .cache import MAX_OPSET


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
    from ...inference.postprocess import NMS4_NAMES, OutputLayoutError, detect_layout

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


