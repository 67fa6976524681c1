"""CPU speed levers, checked for correctness (not timed): rectangular inputs for the fixed 640x640 ONNX,
the OpenVINO backend, session options and the INT8 path with its accuracy check."""
from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import onnx
import pytest

from pockit.config import ModelConfig
from pockit.core import box_iou
from pockit.inference import (
    backend_for,
    load_detector,
    resolve_model,
    resolve_weights,
)
from pockit.inference import rectangular as rect_mod
from pockit.inference.quantize import (
    AccuracyCheck,
    accuracy_check,
    compare_predictions,
    ground_truth_frames,
    head_tail_nodes,
    predict_frames,
    quantize_int8,
    sample_frames,
)
from pockit.inference.rectangular import (
    ReshapeError,
    anchor_count,
    rectangular_model,
    reshape_yolov8_onnx,
    yolov8_anchors,
)

HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def onnx_model():
    return resolve_model("person-yolov8s")


@pytest.fixture(scope="module")
def tud_frame(tud_campus):
    im = cv2.imread(str(sorted((tud_campus / "img1").glob("*.jpg"))[20]))
    assert im.shape == (480, 640, 3)
    return im


def _match(a, b, min_iou: float) -> list[float]:
    """Every box of ``a`` has a same-class box in ``b`` at IoU >= min_iou (one to one); returns the IoUs."""
    assert len(a) == len(b), (len(a), len(b))
    iou = box_iou(a.xyxy, b.xyxy)
    ious = []
    used: set[int] = set()
    for i in np.argsort(-a.scores):
        j = max((j for j in range(len(b)) if j not in used), key=lambda j: iou[i, j])
        used.add(j)
        assert a.class_ids[i] == b.class_ids[j]
        ious.append(float(iou[i, j]))
    assert min(ious) >= min_iou, ious
    return ious


def test_anchor_grid_matches_the_traced_640_constants(onnx_model):
    from onnx import numpy_helper

    m = onnx.load(str(onnx_model))
    arrays = [numpy_helper.to_array(t) for t in m.graph.initializer]
    anchors, strides = yolov8_anchors(640, 640)
    assert anchor_count(640, 640) == 8400 and anchor_count(480, 640) == 6300 and anchor_count(224, 640) == 2940
    assert sum(a.shape == (1, 2, 8400) and np.array_equal(a[0], anchors) for a in arrays) == 2  # Sub and Add sides
    assert sum(a.shape == (1, 8400) and np.array_equal(a[0], strides) for a in arrays) == 1


def test_rectangular_onnx_gives_the_boxes_of_the_640_model(onnx_model, tud_frame, tmp_path, monkeypatch):
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))
    square = load_detector(ModelConfig(path=str(onnx_model), backend="onnx", rect=False))
    rect = load_detector(ModelConfig(path=str(onnx_model), backend="onnx", rect=True))
    a, b = square.detect([tud_frame])[0], rect.detect([tud_frame])[0]
    assert square.input_shapes_used == [(640, 640)]
    assert rect.input_shapes_used == [(480, 640)]
    assert rect.info["rect"] is True and rect.info["input_shapes"] == [[480, 640]]
    assert len(a) >= 5  # TUD-Campus frame 21: a group of pedestrians
    # the same network on the same pixels; only the 80 grey rows above/below differ, which moves boxes
    # touching the frame edge most (here a person cut by the left border: IoU 0.72; Ultralytics predict at
    # 640x640 and at 480x640 differs exactly so, see the next test)
    ious = _match(a, b, 0.65)
    assert np.mean(ious) > 0.88 and sorted(ious)[1] > 0.9
    assert np.abs(np.sort(a.scores) - np.sort(b.scores)).max() < 0.06


def test_rewritten_graph_is_checked_and_refuses_what_it_cannot_rewrite(onnx_model, tmp_path):
    out = reshape_yolov8_onnx(onnx_model, tmp_path / "m.onnx", (384, 640))
    m = onnx.load(str(out))
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 384, 640]
    assert [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == [1, 6, anchor_count(384, 640)]
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["imgsz"] == "[384, 640]" and "pockit_reshaped_from" in meta
    with pytest.raises(ReshapeError, match="not a positive multiple of 32"):
        reshape_yolov8_onnx(onnx_model, tmp_path / "bad.onnx", (470, 640))
    # a model whose anchors were already rewritten is not a 640x640 export any more: its own size is what counts
    again = reshape_yolov8_onnx(out, tmp_path / "again.onnx", (480, 640))
    assert [d.dim_value for d in onnx.load(str(again)).graph.output[0].type.tensor_type.shape.dim] == [1, 6, 6300]


def test_cache_builds_the_rectangular_model_once_and_reuses_it(onnx_model, tud_frame, tmp_path, monkeypatch):
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))
    calls = []
    real = rect_mod.reshape_yolov8_onnx

    def counting(*a, **kw):
        calls.append(a[2])
        return real(*a, **kw)

    monkeypatch.setattr(rect_mod, "reshape_yolov8_onnx", counting)
    p1 = rectangular_model(onnx_model, (480, 640))
    mtime = p1.stat().st_mtime_ns
    p2 = rectangular_model(onnx_model, (480, 640))
    assert p1 == p2 and p2.stat().st_mtime_ns == mtime and calls == [(480, 640)]
    assert p1.parent == tmp_path / "models" / "derived" and "-480x640.onnx" in p1.name
    # detectors (and later runs) reuse the cached file: a second detector builds nothing
    det = load_detector(ModelConfig(path=str(onnx_model), backend="onnx"))
    assert len(det.detect([tud_frame])[0]) >= 5
    det2 = load_detector(ModelConfig(path=str(onnx_model), backend="onnx"))
    det2.detect([tud_frame, cv2.resize(tud_frame, (1224, 370))])
    # only the new 1224x370 size was built; a frame that wide keeps a short side of >= 320 px (MIN_SHORT_SIDE)
    assert calls == [(480, 640), (352, 1088)]
    assert det2.input_shapes_used == [(480, 640), (352, 1088)]
    assert sorted(p.name.rsplit("-", 1)[1] for p in p1.parent.glob("*.onnx")) == ["352x1088.onnx", "480x640.onnx"]


def test_variant_dfl_runs_as_last_axis_softmax_and_matmul_with_the_same_output(onnx_model, tmp_path, monkeypatch):
    import onnxruntime as ort

    fast = reshape_yolov8_onnx(onnx_model, tmp_path / "fast.onnx", (480, 640))
    monkeypatch.setattr(rect_mod, "_fast_dfl", lambda g: False)
    plain = reshape_yolov8_onnx(onnx_model, tmp_path / "plain.onnx", (480, 640))
    ops = {n.name: n.op_type for n in onnx.load(str(fast)).graph.node if "/dfl/" in n.name}
    assert "Conv" not in ops.values() and list(ops.values()).count("MatMul") == 1
    sm = next(n for n in onnx.load(str(fast)).graph.node if n.op_type == "Softmax")
    assert [a.i for a in sm.attribute if a.name == "axis"] == [-1]
    assert "Conv" in {n.op_type for n in onnx.load(str(plain)).graph.node if "/dfl/" in n.name}
    x = np.random.default_rng(0).random((1, 3, 480, 640), np.float32)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
            for p in (fast, plain))
    assert a.shape == b.shape == (1, 6, 6300) and np.abs(a - b).max() < 1e-4


def test_rectangular_fallback_is_said_and_uses_the_fixed_size(onnx_model, tud_frame, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))

    def broken(*a, **kw):
        raise ReshapeError("test: not rewritable")

    monkeypatch.setattr(rect_mod, "reshape_yolov8_onnx", broken)
    det = load_detector(ModelConfig(path=str(onnx_model), backend="onnx"))
    with caplog.at_level("WARNING"):
        out = det.detect([tud_frame])[0]
    assert len(out) >= 5 and det.input_shapes_used == [(640, 640)]
    assert "cannot run it at 480x640" in caplog.text and "test: not rewritable" in caplog.text
    assert det.info["rect"] is False


@pytest.mark.ml
def test_rectangular_onnx_equals_ultralytics_predict_at_the_same_size(onnx_model, pets, tud_frame, shared_data):
    pytest.importorskip("ultralytics")
    pets_frame = cv2.imread(str(sorted((pets / "img1").glob("*.jpg"))[30]))  # 768x576 -> 480x640 input
    kitti = cv2.imread(str(sorted((shared_data / "mot" / "KITTI-17" / "img1").glob("*.jpg"))[40]))  # -> 352x1088
    ours = load_detector(ModelConfig(path=str(onnx_model), backend="onnx"))
    ul = load_detector(ModelConfig(path="person-yolov8s-pt", backend="ultralytics", rect=True))
    ul_wide = load_detector(ModelConfig(path="person-yolov8s-pt", backend="ultralytics", rect=True, imgsz=1088))
    for frame, peer in ((tud_frame, ul), (pets_frame, ul), (kitti, ul_wide)):
        a, b = ours.detect([frame])[0], peer.detect([frame])[0]
        assert len(a) >= 1
        assert min(_match(a, b, 0.99)) >= 0.99
        assert np.abs(np.sort(a.scores) - np.sort(b.scores)).max() < 0.01
    assert ours.input_shapes_used == [(480, 640), (352, 1088)]


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed (pip install 'pockit[openvino]')")
def test_openvino_backend_equals_onnx_runtime(onnx_model, tud_frame, pets):
    ort_det = load_detector(ModelConfig(path=str(onnx_model), backend="onnx"))
    ov_det = load_detector(ModelConfig(path=str(onnx_model), backend="openvino", precision="fp32"))
    assert ov_det.info["precision"] == "f32" and ov_det.class_names == {0: "Normal", 1: "Fall"}
    pets_frame = cv2.imread(str(sorted((pets / "img1").glob("*.jpg"))[30]))
    for frame in (tud_frame, pets_frame):
        a, b = ort_det.detect([frame])[0], ov_det.detect([frame])[0]
        assert min(_match(a, b, 0.99)) >= 0.99
        assert np.abs(np.sort(a.scores) - np.sort(b.scores)).max() < 0.01
    assert ov_det.input_shapes_used == [(480, 640)]
    assert set(ov_det.last_timings) == {"preprocess", "inference", "postprocess"}
    with pytest.raises(ValueError, match="OpenVINO backend runs on 'cpu'"):
        load_detector(ModelConfig(path=str(onnx_model), backend="openvino", device="cuda:0"))


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed (pip install 'pockit[openvino]')")
def test_openvino_two_requests_in_flight_give_the_detections_of_one(onnx_model, tud_frame, pets, shared_data):
    """model.requests 2 on OpenVINO: the pipeline's launched calls run on a second, two-stream compilation of the
    model, each request thread on an infer request of its own; the detections are those of one call at a time, at
    every input size. FP32 (runs on any CPU) keeps one call at a time under requests auto; bf16 gets two."""
    from pockit.inference import cpu_bf16
    from pockit.inference.onnx_backend import physical_cores

    one = load_detector(ModelConfig(path=str(onnx_model), backend="openvino", precision="fp32"))
    assert one.requests == 1 and getattr(one, "launch", None) is None and one.info["requests"] == 1
    two = load_detector(ModelConfig(path=str(onnx_model), backend="openvino", precision="fp32", requests=2))
    assert two.requests == 2 and "streams:2" in two.providers
    pets_frame = cv2.imread(str(sorted((pets / "img1").glob("*.jpg"))[30]))
    kitti = cv2.imread(str(sorted((shared_data / "mot" / "KITTI-17" / "img1").glob("*.jpg"))[40]))
    frames = [tud_frame, pets_frame, tud_frame, kitti, kitti, pets_frame]
    handles = [two.launch([f]) for f in frames]  # all queued at once: two run side by side
    got = [two.finish(h)[0] for h in handles]
    for f, g in zip(frames, got):
        ref = one.detect([f])[0]
        assert len(ref) >= 1
        assert min(_match(ref, g, 0.99)) >= 0.99
        assert np.abs(np.sort(ref.scores) - np.sort(g.scores)).max() < 1e-3
    assert sorted(set(two.input_shapes_used)) == [(352, 1088), (480, 640)]
    assert min(_match(one.detect([kitti])[0], two.detect([kitti])[0], 0.99)) >= 0.99  # detect(): the latency model
    two.close()
    if cpu_bf16() and physical_cores() >= 2:
        auto = load_detector(ModelConfig(path=str(onnx_model), backend="openvino", precision="bf16"))
        assert auto.requests == 2 and auto.info["precision"] == "bf16"


_FIRST_CALLS_AT_ONCE = """
import sys, cv2
from pockit.config import ModelConfig
from pockit.inference import load_detector
d = load_detector(ModelConfig(path=sys.argv[1], backend="openvino", precision=sys.argv[3], requests=2))
f = cv2.imread(sys.argv[2])
handles = [d.launch([f]) for _ in range(4)]  # the request threads' very first calls, side by side
print(sum(len(d.finish(h)[0]) for h in handles))
"""


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed (pip install 'pockit[openvino]')")
def test_openvino_requests_first_calls_side_by_side_do_not_hang(onnx_model, tud_campus):
    """In a fresh process, the two request threads' first OpenVINO calls at the same time: they hung 2 runs in 18
    (a lazy once-initialisation inside OpenVINO's Python module) until every infer request was made and run once
    when the model is compiled. Eight fresh processes, each must finish."""
    import subprocess
    import sys

    from pockit.inference import cpu_bf16

    frame = str(sorted((tud_campus / "img1").glob("*.jpg"))[0])
    precision = "bf16" if cpu_bf16() else "fp32"  # bf16: the CPU default where it hung
    for i in range(8):
        try:
            r = subprocess.run([sys.executable, "-c", _FIRST_CALLS_AT_ONCE, str(onnx_model), frame, precision],
                               capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {i}: two OpenVINO requests' first calls hung")
        assert r.returncode == 0, r.stderr[-2000:]
        assert int(r.stdout.strip().splitlines()[-1]) >= 4


def test_auto_backend_and_precision(onnx_model):
    from pockit.inference import cpu_bf16

    assert backend_for(onnx_model, "auto") == "onnx"  # precision fp32
    assert backend_for(onnx_model, "auto", "cuda:0", "auto") == "onnx"
    assert backend_for("model.xml", "auto") == "openvino"
    assert backend_for(onnx_model, "openvino") == "openvino"
    with pytest.raises(ValueError, match="unknown backend 'openvion'"):
        backend_for(onnx_model, "openvion")
    # the CPU default: OpenVINO in bf16 where the CPU has native bf16 (AVX512-BF16/AMX), else the registry
    # model's INT8 build on ONNX Runtime
    auto = backend_for(onnx_model, "auto", "cpu", "auto")
    assert auto == ("openvino" if cpu_bf16() else "onnx")
    det = load_detector(ModelConfig())
    assert det.backend == auto and det.info["rect"] is True
    if cpu_bf16():
        assert det.path == onnx_model
    else:
        assert "-int8-" in det.path.name and det.info["precision"] == "int8"
    # a model pockit has not checked in bf16 (any path) stays FP32 on ONNX Runtime under precision auto
    assert load_detector(ModelConfig(path=str(onnx_model))).backend == "onnx"
    if auto == "openvino":
        assert det.info["precision"] == "bf16"
    fp32 = load_detector(ModelConfig(precision="fp32"))
    assert fp32.backend == "onnx"
    with pytest.raises(ValueError, match="precision bf16 needs backend openvino"):
        load_detector(ModelConfig(backend="onnx", precision="bf16"))


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed (pip install 'pockit[openvino]')")
def test_bf16_default_stays_accurate(onnx_model, tud_campus, tud_frame):
    from pockit.inference import cpu_bf16

    if not cpu_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16/AMX): the CPU default is ONNX Runtime FP32")
    fp32 = load_detector(ModelConfig(precision="fp32", backend="onnx", conf=0.001))
    bf16 = load_detector(ModelConfig(conf=0.001))
    assert bf16.backend == "openvino" and bf16.info["precision"] == "bf16"
    check = accuracy_check(fp32, bf16, [tud_campus], step=5)
    assert check.frames == 15 and check.acceptable(1.0), check.to_dict()
    assert check.box_agreement > 0.97 and check.mean_matched_iou > 0.97
    a = load_detector(ModelConfig(precision="fp32", backend="onnx")).detect([tud_frame])[0]
    b = load_detector(ModelConfig()).detect([tud_frame])[0]
    ious = _match(a, b, 0.5)  # same boxes; bf16 moves the weak box of the person cut by the frame edge most
    assert np.median(ious) > 0.99 and sum(i > 0.95 for i in ious) >= len(ious) - 1


def test_int8_registry_build_is_cached_and_reused(onnx_model, tmp_path, monkeypatch):
    from pockit.inference import quantize

    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))
    built = []

    def fake_quantize(src, dst, frames=None, *, ranges=None, keep_float=(), **kw):  # the real one: tests below
        built.append((str(src), None if frames is None else len(frames), len(ranges or {}), tuple(keep_float)))
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(onnx_model.read_bytes())
        return dst

    monkeypatch.setattr(quantize, "quantize_int8", fake_quantize)
    from pockit import registry

    monkeypatch.setattr(registry, "fetch", lambda name, **kw: onnx_model)
    media = []
    monkeypatch.setattr(quantize, "sample_frames", lambda m, n: media.append(n) or [np.zeros((8, 8, 3), np.uint8)] * (n * len(m)))
    p1 = resolve_weights("person-yolov8s", "int8", "auto", "cpu")
    p2 = resolve_weights("person-yolov8s", "int8", "onnx", "cpu")
    keep = tuple(registry.get_asset("person-yolov8s").extra["int8_keep_float"])
    # built once, from the shipped range table (no calibration media fetched), the recipe's layers kept in float
    assert p1 == p2 and built == [(str(onnx_model), None, 242, keep)] and media == []
    assert p1.parent == tmp_path / "models" / "derived" and "-int8-" in p1.name
    assert resolve_weights("person-yolov8s", "auto", "auto", "cpu") == onnx_model  # resolve_weights: auto is float
    # without the table: calibrated on the registry's sample videos, into another cache name
    monkeypatch.setattr(quantize, "ranges_file", lambda name: None)
    monkeypatch.setattr(registry, "fetch_media", lambda name, **kw: tmp_path / f"{name}.mp4")
    p3 = resolve_weights("person-yolov8s", "int8", "auto", "cpu")
    assert p3 != p1 and built[1] == (str(onnx_model), 32, 0, keep) and media == [16]


def test_int8_build_falls_back_to_the_media_when_the_table_does_not_fit(onnx_model, tmp_path, monkeypatch, caplog):
    from pockit import registry
    from pockit.inference import quantize

    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_quantize(src, dst, frames=None, *, ranges=None, keep_float=(), **kw):
        calls.append("table" if ranges is not None else f"{len(frames)} frames")
        if ranges is not None:
            raise ValueError("the range table does not fit x: 3 of its 242 tensors are not in the model")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(b"int8")
        return dst

    monkeypatch.setattr(quantize, "quantize_int8", fake_quantize)
    monkeypatch.setattr(registry, "fetch", lambda name, **kw: onnx_model)
    monkeypatch.setattr(registry, "fetch_media", lambda name, **kw: tmp_path / f"{name}.mp4")
    monkeypatch.setattr(quantize, "sample_frames", lambda m, n: [np.zeros((8, 8, 3), np.uint8)] * (n * len(m)))
    with caplog.at_level("WARNING"):
        out = quantize.int8_model("person-yolov8s")
    assert calls == ["table", "32 frames"] and out.read_bytes() == b"int8"
    assert "the shipped range table did not apply (the range table does not fit x" in caplog.text
    with pytest.raises(ValueError, match=r"keep_float: '\(' is not a regular expression"):  # the real quantizer
        quantize_int8(onnx_model, tmp_path / "q.onnx", [np.zeros((8, 8, 3), np.uint8)] * 4, keep_float=["("])


@pytest.mark.slow
def test_shipped_int8_range_table_is_the_calibration_of_the_recipe(shared_data):
    """The table pockit ships (pockit/inference/int8_ranges/) equals a fresh calibration on the recipe's sample
    videos, so the INT8 build made from it is the one whose accuracy benchmarks/README.md quotes."""
    import json

    from pockit.inference.quantize import calibration_media_frames, calibration_ranges, ranges_file
    from pockit.registry import fetch

    table = json.loads(ranges_file("person-yolov8s").read_text())
    fresh = calibration_ranges(fetch("person-yolov8s"), calibration_media_frames("person-yolov8s"))
    assert table["sha256"] == "eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7"
    assert set(fresh) == set(table["ranges"]) and len(fresh) == 242
    worst = max(abs(a - b) / max(1e-6, abs(b)) for t in fresh for a, b in zip(fresh[t], table["ranges"][t]))
    assert worst < 1e-4, worst


@pytest.mark.slow
def test_int8_build_stays_accurate(tud_campus, tud_frame):
    """The registry INT8 build (the CPU default where the CPU has no native bf16) against FP32 on held-out
    frames (TUD-Campus is not calibration footage)."""
    fp32 = load_detector(ModelConfig(precision="fp32", backend="onnx", conf=0.001))
    int8 = load_detector(ModelConfig(precision="int8", backend="onnx", conf=0.001))
    assert int8.info["precision"] == "int8" and fp32.info["precision"] == "fp32"
    check = accuracy_check(fp32, int8, [tud_campus], step=5)
    assert check.frames == 15 and check.acceptable(2.0), check.to_dict()
    assert check.box_agreement > 0.95 and check.mean_matched_iou > 0.95, check.to_dict()


def test_int8_precision_errors(onnx_model, tmp_path, monkeypatch):
    from pockit import registry
    from pockit.inference import FetchError

    with pytest.raises(ValueError, match="is a float model.*pockit models quantize"):
        load_detector(ModelConfig(path=str(onnx_model), precision="int8"))
    with pytest.raises(ValueError, match="no INT8 build of it for device 'cuda:0'"):
        resolve_weights("person-yolov8s", "int8", "auto", "cuda:0")
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))  # no INT8 build cached here

    def offline(name, **kw):
        raise FetchError(f"cannot download {name}: offline")

    from pockit.inference import quantize

    monkeypatch.setattr(registry, "fetch_media", offline)
    monkeypatch.setattr(registry, "fetch", lambda name, **kw: onnx_model)
    monkeypatch.setattr(quantize, "ranges_file", lambda name: None)  # no shipped table: media needed, offline
    with pytest.raises(FetchError, match="precision int8: cannot build the INT8 version of person-yolov8s.*offline"):
        resolve_weights("person-yolov8s", "int8", "auto", "cpu")
    assert not list(tmp_path.rglob("*.onnx"))


def test_auto_precision_without_bf16_falls_back_to_fp32_when_int8_cannot_be_built(onnx_model, monkeypatch, caplog):
    import pockit.inference as inf
    from pockit.inference import FetchError, quantize

    monkeypatch.setattr(inf, "cpu_bf16", lambda: False)

    def broken(name):
        raise FetchError(f"cannot fetch {name}: offline")

    monkeypatch.setattr(quantize, "int8_model", broken)
    with caplog.at_level("WARNING"):
        det = load_detector(ModelConfig())
    assert det.backend == "onnx" and det.info["precision"] == "fp32" and det.path == onnx_model
    assert "no INT8 build (model.precision int8: cannot build the INT8 version of person-yolov8s: cannot fetch " \
           "person-yolov8s: offline); running FP32" in caplog.text
    # explicit choices are kept: fp32 never becomes INT8, a CUDA device never does
    monkeypatch.setattr(quantize, "int8_model", lambda name: pytest.fail("INT8 asked for"))
    assert load_detector(ModelConfig(precision="fp32")).info["precision"] == "fp32"


def test_onnx_runtime_session_options():
    import onnxruntime as ort

    from pockit.inference.onnx_backend import physical_cores, session_options

    so = session_options()
    assert so.intra_op_num_threads == physical_cores() >= 1
    assert so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options(3).intra_op_num_threads == 3


def test_accuracy_check_numbers_and_verdict(onnx_model, tud_campus):
    det = load_detector(ModelConfig(path=str(onnx_model), backend="onnx", conf=0.001))
    frames = ground_truth_frames([tud_campus], step=10)
    assert [k for k, _, _ in frames] == [("TUD-Campus", i) for i in (1, 11, 21, 31, 41, 51, 61, 71)]
    gt_boxes = sum(len(g) for _, _, g in frames)
    preds = predict_frames(det, frames)
    same = compare_predictions(frames, preds, preds)
    assert same.frames == 8 and same.gt_boxes == gt_boxes
    assert same.map50_drop_points == 0.0 and same.box_agreement == 1.0 and same.mean_matched_iou == pytest.approx(1.0)
    assert 0.5 < same.reference_map50 <= 1.0 and same.acceptable()
    # a candidate that loses a third of its boxes in every frame loses recall and mAP: the verdict flips
    worse = {k: d[np.arange(len(d)) % 3 != 0] for k, d in preds.items()}
    bad = compare_predictions(frames, preds, worse)
    assert bad.candidate_recall < bad.reference_recall and bad.map50_drop_points > 1.0
    assert not bad.acceptable(1.0) and bad.box_agreement < 0.9
    assert set(bad.to_dict()["per_sequence"]["TUD-Campus"]) >= {"reference_map50", "candidate_map50"}
    assert AccuracyCheck(1, 1, 0.80, 0.795, 1, 1, 1, 1, {}).acceptable(1.0)


def test_int8_quantization_and_its_accuracy_check(onnx_model, tud_campus, shared_data, tmp_path):
    # a small input keeps calibration quick; the same code path as the 640 model
    small = reshape_yolov8_onnx(onnx_model, tmp_path / "small.onnx", (256, 320))
    frames = sample_frames([shared_data / "video" / "ABODA_video4.avi", shared_data / "mot" / "KITTI-17"], 4)
    assert len(frames) == 8
    q = quantize_int8(small, tmp_path / "small-int8.onnx", frames)
    qm = onnx.load(str(q))
    ops = [n.op_type for n in qm.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    tail = set(head_tail_nodes(onnx.load(str(small))))
    assert "/model.22/dfl/Softmax" in tail and all(n.name in tail for n in qm.graph.node
                                                    if n.name.startswith("/model.22/dfl/"))
    meta = {p.key: p.value for p in qm.metadata_props}
    assert meta["names"] == "{0: 'Normal', 1: 'Fall'}" and meta["pockit_quantization"].startswith("int8 qdq")
    fp32 = load_detector(ModelConfig(path=str(small), backend="onnx", conf=0.001, rect=False))
    int8 = load_detector(ModelConfig(path=str(q), backend="onnx", conf=0.001, rect=False))
    assert int8.class_names == {0: "Normal", 1: "Fall"}
    check = accuracy_check(fp32, int8, [tud_campus], step=10)
    assert check.frames == 8 and check.gt_boxes > 30
    assert abs(check.map50_drop_points) < 15 and check.box_agreement > 0.6  # int8 stays close to fp32
    with pytest.raises(ValueError, match="at least 4 real frames"):
        quantize_int8(small, tmp_path / "x.onnx", frames[:2])
    with pytest.raises(FileNotFoundError, match="calibration source not found"):
        sample_frames([tmp_path / "nothing.mp4"])


def test_models_quantize_cli_says_what_it_needs(onnx_model, tmp_path):
    from click.testing import CliRunner

    from pockit.inference.cli import models_cmd

    r = CliRunner().invoke(models_cmd, ["quantize", str(onnx_model), "--calib", str(tmp_path)])
    assert r.exit_code == 2 and "--calib needs -o/--output" in r.output
    r = CliRunner().invoke(models_cmd, ["quantize", str(onnx_model)])
    assert r.exit_code == 2 and "has no INT8 recipe in the registry: give --calib FOOTAGE and -o OUT.onnx" in r.output
    r = CliRunner().invoke(models_cmd, ["quantize", str(onnx_model), "--calib", str(tmp_path), "-o", str(tmp_path / "q.onnx")])
    assert r.exit_code == 1 and f"calibration source {tmp_path}: no images" in r.output
    assert not (tmp_path / "q.onnx").exists()


def test_min_short_side_is_a_model_setting(onnx_model, tud_frame, tmp_path, monkeypatch):
    """model.min_short_side: the wide-frame rule's size is configurable; 0 letterboxes to imgsz like Ultralytics."""
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(tmp_path))
    wide = cv2.resize(tud_frame, (1224, 370))
    sizes = {}
    for mss in (320, 256, 0):
        det = load_detector(ModelConfig(path=str(onnx_model), backend="onnx", min_short_side=mss))
        det.detect([wide])
        sizes[mss] = det.input_shapes_used[-1]
    assert sizes == {320: (352, 1088), 256: (288, 864), 0: (224, 640)}
    with pytest.raises(ValueError, match="min_short_side"):
        ModelConfig(min_short_side=-1)
