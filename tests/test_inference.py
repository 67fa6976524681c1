"""pockit.inference: letterbox, decode/NMS, the ONNX backend on real footage, TensorRT with a fake runtime."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pockit.config import ModelConfig
from pockit.core.detections import box_iou
from pockit.core.mot import read_mot
from pockit.inference import (
    BackendUnavailable,
    backend_for,
    batched_nms,
    decode,
    detect_layout,
    letterbox,
    load_detector,
    nms,
    postprocess,
    preprocess_batch,
    resolve_model,
    scale_boxes,
)
from pockit.inference.postprocess import OutputLayoutError
from pockit.inference.preprocess import LetterboxInfo, target_shape


# -- shared model (resolved once into pockit's cache dir, reused by later runs) ------------------
@pytest.fixture(scope="module")
def person_onnx() -> Path:
    return resolve_model("person-yolov8s")


# -- letterbox / scale_boxes ---------------------------------------------------------------------
def test_letterbox_640x480_to_square():
    img = np.zeros((480, 640, 3), np.uint8)
    out, info = letterbox(img, (640, 640))
    assert out.shape == (640, 640, 3)
    assert info == LetterboxInfo(ratio=1.0, pad=(0, 80), orig_shape=(480, 640), input_shape=(640, 640))
    assert (out[:80] == 114).all() and (out[560:] == 114).all() and (out[80:560] == 0).all()


def test_letterbox_odd_padding_split_like_ultralytics():
    img = np.full((51, 100, 3), 7, np.uint8)  # r = 0.64 -> 64x33, 31 rows of padding: 15 top, 16 bottom
    out, info = letterbox(img, (64, 64))
    assert info.ratio == pytest.approx(0.64)
    assert info.pad == (0, 15)
    assert (out[:15] == 114).all() and (out[48:] == 114).all() and (out[15:48] == 7).all()


def test_target_shape_fixed_and_stride_aligned():
    assert target_shape([(480, 640)], 640) == (640, 640)
    assert target_shape([(480, 640)], 640, auto=True) == (480, 640)
    assert target_shape([(720, 1280)], 640, auto=True) == (384, 640)  # 360 rows -> next multiple of 32
    assert target_shape([(720, 1280), (480, 640)], 640, auto=True) == (640, 640)  # mixed shapes: square


def test_preprocess_batch_rgb_nchw_scaled():
    blue = np.zeros((32, 64, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    x, infos = preprocess_batch([blue, blue], 64)
    assert x.shape == (2, 3, 64, 64) and x.dtype == np.float32
    assert infos[0].pad == (0, 16) and infos[0].ratio == 1.0
    assert x[0, 2, 16:48].min() == 1.0 and x[0, 0, 16:48].max() == 0.0  # RGB order: blue is channel 2
    assert x[0, 1, 0, 0] == pytest.approx(114 / 255)
    x16, _ = preprocess_batch([blue], 64, dtype=np.float16)
    assert x16.dtype == np.float16


def test_preprocess_rejects_non_images():
    with pytest.raises(ValueError, match="image 1: expected an HxWx3"):
        preprocess_batch([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)], 32)


def test_scale_boxes_back_to_frame_and_clip():
    info = LetterboxInfo(ratio=0.5, pad=(0, 140), orig_shape=(720, 1280), input_shape=(640, 640))
    b = scale_boxes(np.array([[100, 180, 200, 380], [-10, 130, 700, 700]], np.float32), info)
    np.testing.assert_array_equal(b, [[200, 80, 400, 480], [0, 0, 1280, 720]])


# -- NMS -----------------------------------------------------------------------------------------
BOXES = np.array([
    [0, 0, 10, 10],    # 0: .9
    [1, 0, 11, 10],    # 1: .8, IoU with 0 = 90/110 = 0.818 -> suppressed
    [20, 20, 30, 30],  # 2: .7, disjoint
    [0, 0, 10, 5],     # 3: .6, IoU with 0 = 50/100 = 0.5 exactly
], np.float32)
SCORES = np.array([0.9, 0.8, 0.7, 0.6], np.float32)


def test_nms_hand_computed():
    assert nms(BOXES, SCORES, 0.5).tolist() == [0, 2, 3]  # IoU == threshold is kept (torchvision: > suppresses)
    assert nms(BOXES, SCORES, 0.49).tolist() == [0, 2]
    assert nms(BOXES, SCORES, 0.85).tolist() == [0, 1, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_class_aware_and_agnostic():
    cls = np.array([0, 1, 0, 0])
    assert batched_nms(BOXES, SCORES, cls, 0.45).tolist() == [0, 1, 2]  # box 1 is another class
    assert batched_nms(BOXES, SCORES, cls, 0.45, agnostic=True).tolist() == [0, 2]


# -- raw layouts ---------------------------------------------------------------------------------
# three objects in a 64x64 network input, two classes: (cx, cy, w, h, class, score)
OBJ = [(32, 32, 20, 40, 0, 0.9), (33, 32, 20, 40, 0, 0.8), (10, 10, 8, 8, 1, 0.6)]
EXPECT_XYXY = np.array([[22, 12, 42, 52], [6, 6, 14, 14]], np.float32)  # object 1 is suppressed (IoU .9)


def _v8(objs=OBJ, nc=2, extra_noise=True):
    out = np.zeros((1, 4 + nc, 10), np.float32)  # 10 anchors, the unused ones all zero
    for i, (cx, cy, w, h, c, s) in enumerate(objs):
        out[0, :4, i] = cx, cy, w, h
        out[0, 4 + c, i] = s
        out[0, 4 + (1 - c), i] = s / 3  # a lower score for the other class
    if extra_noise:  # below-threshold anchors
        out[0, :4, 8:] = [[5, 50], [5, 50], [4, 4], [4, 4]]
        out[0, 4, 8:] = [0.1, 0.25]  # 0.25 is not > conf 0.25
    return out


def _v5(objs=OBJ, nc=2):
    out = np.zeros((1, len(objs), 5 + nc), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(objs):
        out[0, i, :4] = cx, cy, w, h
        out[0, i, 4] = 1.0 if i else 0.5  # objectness x class score = final score
        out[0, i, 5 + c] = s / out[0, i, 4]
    return out


def _nms_rows():
    return np.array([[[22, 12, 42, 52, 0.9, 0], [6, 6, 14, 14, 0.6, 1], [0, 0, 0, 0, 0, 0]]], np.float32)


def _nms4():
    return {
        "num_dets": np.array([[2]], np.int32),
        "det_boxes": np.array([[[22, 12, 42, 52], [6, 6, 14, 14], [1, 1, 2, 2]]], np.float32),
        "det_scores": np.array([[0.9, 0.6, 0.99]], np.float32),  # the 3rd row is beyond num_dets: ignored
        "det_classes": np.array([[0, 1, 0]], np.int32),
    }


@pytest.mark.parametrize("make,layout", [
    (_v8, "v8"), (lambda: _v8().transpose(0, 2, 1).copy(), "v8t"), (_v5, "v5"), (_nms_rows, "nms"), (_nms4, "nms4"),
    (lambda: list(_nms4().values()), "nms4"),
])
def test_each_layout_decodes_to_the_same_boxes(make, layout):
    raw = make()
    assert detect_layout(raw, nc=2) == layout
    (xyxy, scores, cls), = decode(raw, conf=0.25, iou=0.45, nc=2)
    np.testing.assert_allclose(xyxy, EXPECT_XYXY, atol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.6], atol=1e-6)
    assert cls.tolist() == [0, 1]


def test_layout_detection_by_shape():
    assert detect_layout(np.zeros((1, 6, 8400)), nc=2) == "v8"  # the person-yolov8s output
    assert detect_layout(np.zeros((1, 84, 8400))) == "v8"
    assert detect_layout(np.zeros((1, 25200, 85))) == "v5"
    rows = np.random.default_rng(0).uniform(0.01, 0.99, (1, 8400, 6)).astype(np.float32)
    assert detect_layout(rows, nc=2) == "v8t"  # 8400 anchors: never a post-NMS output
    with pytest.raises(OutputLayoutError, match="expected"):
        detect_layout(np.zeros((1, 2, 3, 4, 5)))


def test_postprocess_batch_class_filter_max_det_and_mapping():
    raw = np.concatenate([_v8(), _v8(OBJ[2:] + OBJ[:1])], axis=0)  # 2 images
    info = LetterboxInfo(ratio=0.5, pad=(0, 8), orig_shape=(96, 128), input_shape=(64, 64))
    names = {0: "person", 1: "bag"}
    d0, d1 = postprocess(raw, [info, info], names, conf=0.25, iou=0.45)
    np.testing.assert_allclose(d0.xyxy, [[44, 8, 84, 88], [12, 0, 28, 12]], atol=1e-5)  # (net - pad) / 0.5, clipped
    assert d0.names == ["person", "bag"] and d1.names == ["person", "bag"]
    (only_bag,) = postprocess(raw[:1], [info], names, classes=[1])
    assert only_bag.class_ids.tolist() == [1] and only_bag.scores.tolist() == pytest.approx([0.6])
    (top1,) = postprocess(raw[:1], [info], names, max_det=1)
    assert len(top1) == 1 and top1.scores[0] == pytest.approx(0.9)
    (none,) = postprocess(raw[:1], [info], names, conf=0.95)
    assert len(none) == 0 and none.xyxy.shape == (0, 4)
    (both,) = postprocess(raw[:1], [info], names, iou=0.95)  # the 0.9-IoU pair survives a looser NMS
    assert len(both) == 3


# -- ONNX backend --------------------------------------------------------------------------------
def _tiny_onnx(path: Path, batch="B", dtype="float16") -> Path:
    """A 3-op YOLOv8-layout model: anchor 0 (person) scores the R mean, anchor 1 (bag) the G mean."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    np_t, onnx_t = (np.float16, TensorProto.FLOAT16) if dtype == "float16" else (np.float32, TensorProto.FLOAT)
    w = np.zeros((3, 12), np_t)
    w[0, 8] = 1  # R mean -> channel 4 (class 0), anchor 0
    w[1, 11] = 1  # G mean -> channel 5 (class 1), anchor 1
    bias = np.array([32, 10, 32, 10, 20, 8, 40, 8, 0, 0, 0.1, 0], np_t)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["mw"]),
        helper.make_node("Add", ["mw", "bias"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("images", onnx_t, [batch, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", onnx_t, [batch, 6, 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias"),
         numpy_helper.from_array(np.array([-1, 6, 2], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": "{0: 'person', 1: 'bag'}", "stride": "32"})
    onnx.save(model, path)
    return path


def _solid(bgr, size=(128, 128)):
    return np.full((*size, 3), bgr, np.uint8)


def test_onnx_fp16_dynamic_batch_per_image_results(tmp_path):
    det = load_detector(str(_tiny_onnx(tmp_path / "tiny.onnx")), batch=4)
    assert det.class_names == {0: "person", 1: "bag"}
    assert det.input_dtype == np.float16 and det.model_batch is None and det.chunk_size == 4
    red, green, black = _solid((0, 0, 255)), _solid((0, 255, 0)), _solid((0, 0, 0))
    out = det.detect([red, green, black, red, green])  # 2 inference calls: 4 + 1 frames
    assert [d.class_ids.tolist() for d in out] == [[0], [1], [], [0], [1]]
    np.testing.assert_allclose(out[0].xyxy, [[44, 24, 84, 104]])  # (22, 12, 42, 52) x 2
    np.testing.assert_allclose(out[1].xyxy, [[12, 12, 28, 28]])
    assert out[0].scores.tolist() == [1.0]
    assert set(det.last_timings) == {"preprocess", "inference", "postprocess"}
    assert det.info["backend"] == "onnx" and det.info["model_batch"] == "dynamic"
    assert det.info["providers"] == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="'car' is not a class of tiny.onnx; its classes are 0=person, 1=bag"):
        load_detector(str(tmp_path / "tiny.onnx"), classes=["car"])
    only_bags = load_detector(ModelConfig(path=str(tmp_path / "tiny.onnx"), classes=["bag"]))
    assert [d.class_ids.tolist() for d in only_bags.detect([red, green])] == [[], [1]]


def test_onnx_requests_run_concurrent_calls_with_detects_results(tmp_path):
    """model.requests: launch hands frames to the request threads, finish returns them in launch order with
    the call's own stage times; detect() is unchanged; 1 request = no launch/finish (one call at a time)."""
    from pockit.inference.onnx_backend import physical_cores

    path = _tiny_onnx(tmp_path / "tiny.onnx", dtype="float32")
    det = load_detector(str(path), batch=2, requests=2)
    red, green, black = _solid((0, 0, 255)), _solid((0, 255, 0)), _solid((0, 0, 0))
    want = det.detect([red, green, black, red])
    calls = {"main": 0, "request": 0}
    if physical_cores() >= 2:  # launched calls run on a session of their own with cores // 2 threads
        assert det._request_threads == physical_cores() // 2 and det.info["request_threads"] == det._request_threads
        twin, main = det._twins[det.session], det.session
        for name, sess in (("main", main), ("request", twin)):
            def spy(*a, _run=sess.run, _name=name, **k):
                calls[_name] += 1
                return _run(*a, **k)
            sess.run = spy
        det.detect([red])
        assert calls == {"main": 1, "request": 0}
    handles = [det.launch([red, green]), det.launch([black]), det.launch([red])]
    got = []
    for h in handles:
        got.extend(det.finish(h))
        assert set(det.last_finish_timings) == {"preprocess", "inference", "postprocess", "wait"}
        assert det.last_finish_timings["inference"] > 0
    assert [d.class_ids.tolist() for d in got] == [d.class_ids.tolist() for d in want] == [[0], [1], [], [0]]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
    assert det.requests == 2 and det.info["requests"] == 2
    if physical_cores() >= 2:
        assert calls == {"main": 1, "request": 3}
    assert not load_detector(str(path), requests=2, threads=2)._twins  # threads given: every call on them
    det.close()
    with pytest.raises(RuntimeError, match="closed"):
        det.launch([red])
    one = load_detector(str(path), requests=1)
    assert one.requests == 1 and not hasattr(one, "launch")
    with pytest.raises(Exception, match="requests"):
        ModelConfig(path=str(path), requests=0)


def test_onnx_fixed_batch_model_runs_frame_by_frame(tmp_path):
    # rect=False, conf=0.25: the square letterbox and threshold the expected boxes below are computed for
    det = load_detector(str(_tiny_onnx(tmp_path / "b1.onnx", batch=1, dtype="float32")), batch=8, rect=False,
                        conf=0.25)
    assert det.model_batch == 1 and det.chunk_size == 1 and det.input_dtype == np.float32
    out = det.detect([_solid((0, 255, 0)), _solid((0, 0, 255), (128, 256))])
    assert [d.class_ids.tolist() for d in out] == [[1], [0]]
    # 128x256 frame: ratio .25, pad (0, 16): (22, 12-16, 42, 52-16) / .25, clipped to the frame
    np.testing.assert_allclose(out[1].xyxy, [[88, 0, 168, 128]])
    assert out[1].scores[0] == pytest.approx((1 + 114 / 255) / 2, abs=1e-5)  # half the input is padding


def test_fixed_batch_model_warns_when_a_larger_batch_is_asked(tmp_path, caplog):
    """batch: 4 on a batch-1 export cannot batch anything: say so instead of silently running 1 by 1."""
    path = _tiny_onnx(tmp_path / "b1.onnx", batch=1, dtype="float32")
    with caplog.at_level("WARNING", logger="pockit.inference.base"):
        load_detector(str(path), batch=4)
    assert [r.getMessage() for r in caplog.records] == [
        "b1.onnx has a fixed batch of 1: batch=4 runs 1 frame(s) per inference call; export it with a dynamic "
        "batch (pockit deploy export MODEL.pt --dynamic) to batch several frames"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="pockit.inference.base"):
        load_detector(str(path), batch=1)
    assert caplog.records == []


@pytest.fixture(scope="module")
def tud_frames(tud_campus):
    frames = list(range(1, 72, 5))  # 15 of the 71 frames
    return frames, [cv2.imread(str(tud_campus / "img1" / f"{f:06d}.jpg")) for f in frames]


@pytest.mark.slow
def test_onnx_person_detector_recall_on_tud_campus(person_onnx, tud_frames, tud_campus):
    """Measured: 55 of the 75 ground-truth people matched at IoU >= 0.5 (recall 0.733), 72 detections."""
    frames, images = tud_frames
    gt = read_mot(tud_campus / "gt" / "gt.txt", gt=True)
    with load_detector(ModelConfig(path="person-yolov8s", batch=4, precision="fp32")) as det:
        assert det.path == person_onnx and det.class_names == {0: "Normal", 1: "Fall"}
        assert det.info["sha256"] == "eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7"
        dets = det.detect(images)
        assert det.chunk_size == 1  # the model is fixed at batch 1
    tp = n_gt = n_det = 0
    for f, d in zip(frames, dets):
        g = gt[f]
        iou = box_iou(g.xyxy, d.xyxy)
        rows, cols = linear_sum_assignment(-iou)
        tp += int((iou[rows, cols] >= 0.5).sum())
        n_gt += len(g)
        n_det += len(d)
    assert n_gt == 75
    assert tp / n_gt >= 0.70, f"recall {tp}/{n_gt}"
    assert tp / n_det >= 0.70, f"precision {tp}/{n_det}"
    # the same frames through a fresh detector, in one call: identical boxes
    with load_detector(person_onnx) as det1:
        again = det1.detect(images[:2])
        for a, b in zip(again, dets[:2]):
            np.testing.assert_array_equal(a.xyxy, b.xyxy)


# -- load_detector -------------------------------------------------------------------------------
def test_backend_for_extensions():
    assert backend_for("m.onnx") == "onnx"
    assert backend_for("m.pt") == "ultralytics" and backend_for("yolo11n.yaml") == "ultralytics"
    assert backend_for("m.engine") == "tensorrt" and backend_for("m.plan") == "tensorrt"
    assert backend_for("m.onnx", "torch") == "torch"
    with pytest.raises(ValueError, match="cannot tell the backend of model 'm.bin'"):
        backend_for("m.bin")
    assert backend_for("m.onnx", "openvino") == "openvino" and backend_for("m.xml") == "openvino"
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        backend_for("m.onnx", "tflite")


def test_load_detector_errors(tmp_path, monkeypatch):
    with pytest.raises(Exception, match="model 'nope.onnx' not found"):
        load_detector("nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx: ONNX Runtime cannot load this model"):
        load_detector(str(bad))
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(BackendUnavailable, match="needs the 'tensorrt' Python package"):
        load_detector(str(eng))


def test_detect_rejects_bad_images(tmp_path):
    det = load_detector(str(_tiny_onnx(tmp_path / "t.onnx")))
    with pytest.raises(ValueError, match="image 1 is ndarray with shape \\(4, 4\\)"):
        det.detect([_solid((0, 0, 0)), np.zeros((4, 4), np.uint8)])
    det.close()
    with pytest.raises(RuntimeError, match="is closed"):
        det.detect([_solid((0, 0, 0))])


# -- TensorRT with a fake runtime -----------------------------------------------------------------
class FakeMemory:
    """Host arrays standing in for device buffers; pointers are fake integers."""

    name = "fake"
    stream_handle = 777

    def __init__(self):
        self.bufs: dict[int, np.ndarray] = {}
        self.syncs = 0

    def alloc(self, nbytes):
        buf = np.zeros(nbytes, np.uint8)
        self.bufs[0x1000 * (len(self.bufs) + 1)] = buf
        return buf

    def ptr(self, buf):
        return next(p for p, b in self.bufs.items() if b is buf)

    def h2d(self, buf, arr):
        raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        buf[: raw.size] = raw

    def d2h(self, buf, shape, dtype):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return buf[:n].view(dtype).reshape(shape).copy()

    def synchronize(self):
        self.syncs += 1

    def free(self, buf):
        pass


def _fake_trt(memory: FakeMemory):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.DataType = types.SimpleNamespace(FLOAT="FLOAT", HALF="HALF", INT32="INT32")
    trt.nptype = lambda t: {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32}[t]

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses, self.calls = engine, {}, {}, []

        def set_input_shape(self, name, shape):
            shape = tuple(shape)
            mn, _, mx = self.engine.profile
            self.calls.append(("set_input_shape", name, shape))
            if not all(lo <= v <= hi for lo, v, hi in zip(mn, shape, mx)):
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            b = self.shapes["images"][0]
            return (b, *self.engine.out_shapes[name][1:]) if name != "num_dets" else (b, 1)

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 777
            self.calls.append(("execute", self.shapes["images"]))
            shape = self.shapes["images"]
            x = memory.bufs[self.addresses["images"]][: int(np.prod(shape)) * 4].view(np.float32).reshape(shape)
            r, g = x[:, 0].mean(axis=(1, 2)), x[:, 1].mean(axis=(1, 2))
            outs = self.engine.compute(r, g)
            for name, arr in outs.items():
                raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
                memory.bufs[self.addresses[name]][: raw.size] = raw
            return True

    class Engine:
        def __init__(self, spec):
            self.spec = spec
            self.names = [t["name"] for t in spec["tensors"]]
            self.by_name = {t["name"]: t for t in spec["tensors"]}
            self.profile = [tuple(p) for p in spec["profile"]]
            self.out_shapes = {t["name"]: tuple(t["shape"]) for t in spec["tensors"] if t["mode"] == "OUTPUT"}
            self.context = None

        num_io_tensors = property(lambda self: len(self.names))

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return self.by_name[name]["mode"]

        def get_tensor_shape(self, name):
            return tuple(self.by_name[name]["shape"])

        def get_tensor_dtype(self, name):
            return self.by_name[name]["dtype"]

        def get_tensor_profile_shape(self, name, index):
            assert name == "images" and index == 0
            return self.profile

        def create_execution_context(self):
            self.context = Context(self)
            return self.context

        def compute(self, r, g):
            b = len(r)
            if self.spec["kind"] == "v8":
                out = np.zeros((b, 6, 2), np.float32)
                out[:, :4, 0] = [32, 32, 20, 40]
                out[:, :4, 1] = [10, 10, 8, 8]
                out[:, 4, 0], out[:, 5, 1] = r, g
                return {"output0": out}
            boxes = np.tile(np.array([[22, 12, 42, 52], [6, 6, 14, 14]], np.float32), (b, 1, 1))
            return {
                "num_dets": (r > 0.5).astype(np.int32).reshape(b, 1) + (g > 0.5).astype(np.int32).reshape(b, 1),
                "det_boxes": np.where((r > 0.5)[:, None, None], boxes, boxes[:, ::-1]),
                "det_scores": np.stack([np.maximum(r, g), np.minimum(r, g)], 1).astype(np.float32),
                "det_classes": np.where((r > 0.5)[:, None], [[0, 1]], [[1, 0]]).astype(np.int32),
            }

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, blob):
            try:
                return Engine(json.loads(blob.decode()))
            except ValueError:
                return None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


def _engine_file(path: Path, kind="v8", batch=-1, profile=((1, 3, 64, 64), (2, 3, 64, 64), (4, 3, 64, 64)),
                 meta: dict | None = None, hw=(64, 64)) -> Path:
    if kind == "v8":
        outs = [{"name": "output0", "mode": "OUTPUT", "shape": [batch, 6, 2], "dtype": "FLOAT"}]
    else:  # EfficientNMS outputs, deliberately not in canonical order
        outs = [
            {"name": "det_scores", "mode": "OUTPUT", "shape": [batch, 2], "dtype": "FLOAT"},
            {"name": "det_boxes", "mode": "OUTPUT", "shape": [batch, 2, 4], "dtype": "FLOAT"},
            {"name": "num_dets", "mode": "OUTPUT", "shape": [batch, 1], "dtype": "INT32"},
            {"name": "det_classes", "mode": "OUTPUT", "shape": [batch, 2], "dtype": "INT32"},
        ]
    spec = {
        "kind": kind, "profile": [list(p) for p in profile],
        "tensors": [{"name": "images", "mode": "INPUT", "shape": [batch, 3, *hw], "dtype": "FLOAT"}] + outs,
    }
    blob = json.dumps(spec).encode()
    if meta is not None:  # Ultralytics header: uint32 little-endian length + JSON
        m = json.dumps(meta).encode()
        blob = len(m).to_bytes(4, "little") + m + blob
    path.write_bytes(blob)
    return path


@pytest.fixture
def fake_trt(monkeypatch):
    mem = FakeMemory()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(mem))
    return mem


def test_read_engine_file_with_and_without_ultralytics_header(tmp_path):
    from pockit.inference.tensorrt_backend import read_engine_file

    p = _engine_file(tmp_path / "a.engine", meta={"names": {"0": "person"}, "stride": 32})
    meta, blob = read_engine_file(p)
    assert meta == {"names": {"0": "person"}, "stride": 32} and json.loads(blob)["kind"] == "v8"
    p = _engine_file(tmp_path / "b.engine")
    meta, blob = read_engine_file(p)
    assert meta == {} and blob == p.read_bytes()


def test_tensorrt_dynamic_batch_within_profile(tmp_path, fake_trt):
    eng = _engine_file(tmp_path / "m.engine", meta={"names": {"0": "person", "1": "bag"}, "stride": 32})
    det = load_detector(ModelConfig(path=str(eng), batch=8), memory=fake_trt)
    assert type(det).__name__ == "TensorRTDetector"
    assert det.model_batch is None and det.max_model_batch == 4 and det.chunk_size == 4  # capped by the profile
    assert det.class_names == {0: "person", 1: "bag"}
    # buffers planned at the largest shape of the profile
    assert det.plan_buffers() == {"images": ((4, 3, 64, 64), np.float32), "output0": ((4, 6, 2), np.float32)}
    assert sorted(b.nbytes for b in fake_trt.bufs.values()) == [4 * 6 * 2 * 4, 4 * 3 * 64 * 64 * 4]
    ctx = det.context
    assert set(ctx.addresses) == {"images", "output0"}
    ctx.calls.clear()
    red, green, black = _solid((0, 0, 255)), _solid((0, 255, 0)), _solid((0, 0, 0))
    out = det.detect([red, green, black, red, green])
    assert [c for c in ctx.calls if c[0] == "execute"] == [("execute", (4, 3, 64, 64)), ("execute", (1, 3, 64, 64))]
    assert [d.class_ids.tolist() for d in out] == [[0], [1], [], [0], [1]]
    np.testing.assert_allclose(out[0].xyxy, [[44, 24, 84, 104]])
    np.testing.assert_allclose(out[4].xyxy, [[12, 12, 28, 28]])
    assert det.info["backend"] == "tensorrt"


def test_tensorrt_class_names_from_the_engine_json_sidecar(tmp_path, fake_trt):
    """An engine without a header (trtexec) takes its names from <engine>.json, the file write_engine writes."""
    eng = _engine_file(tmp_path / "m.engine")
    (tmp_path / "m.engine.json").write_text(json.dumps({"names": {"0": "person", "1": "bag"}}))
    det = load_detector(ModelConfig(path=str(eng)), memory=fake_trt)
    assert det.class_names == {0: "person", 1: "bag"}


def test_tensorrt_nms4_outputs_ordered_by_name(tmp_path, fake_trt):
    from pockit.inference.tensorrt_backend import order_outputs

    assert order_outputs(["det_scores", "det_boxes", "num_dets", "det_classes"]) == [
        "num_dets", "det_boxes", "det_scores", "det_classes"]
    assert order_outputs(["output1", "output0"]) == ["output0", "output1"]
    eng = _engine_file(tmp_path / "nms.engine", kind="nms4", batch=1, profile=((1, 3, 64, 64),) * 3)
    det = load_detector(str(eng), memory=fake_trt, class_names={0: "person", 1: "bag"})
    assert det.model_batch == 1 and det.output_order == ["num_dets", "det_boxes", "det_scores", "det_classes"]
    red, green, yellow = _solid((0, 0, 255)), _solid((0, 255, 0)), _solid((0, 255, 255))
    out = det.detect([red, green, yellow])
    assert [d.class_ids.tolist() for d in out] == [[0], [1], [0, 1]]
    np.testing.assert_allclose(out[1].xyxy, [[12, 12, 28, 28]])
    np.testing.assert_allclose(out[2].xyxy, [[44, 24, 84, 104], [12, 12, 28, 28]])


def test_tensorrt_profile_and_deserialize_errors(tmp_path, fake_trt):
    from pockit.inference.tensorrt_backend import TensorSpec, plan_input_shape

    spec = TensorSpec("images", True, np.dtype(np.float32), (-1, 3, -1, -1),
                      ((1, 3, 320, 320), (1, 3, 640, 640), (2, 3, 640, 640)))
    assert plan_input_shape(spec, 2, 480) == (2, 3, 480, 480)
    with pytest.raises(ValueError, match="height 1280 is outside the optimization profile \\[320, 640\\]"):
        plan_input_shape(spec, 1, 1280)
    with pytest.raises(ValueError, match="batch 3 is outside the optimization profile"):
        plan_input_shape(spec, 3, 640)
    fixed = TensorSpec("images", True, np.dtype(np.float32), (1, 3, 640, 640))
    with pytest.raises(ValueError, match="built for batch 1, got 2 frames"):
        plan_input_shape(fixed, 2, 640)
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="bad.engine: TensorRT could not deserialize this engine"):
        load_detector(str(bad), memory=fake_trt)


def test_tensorrt_too_old(tmp_path, monkeypatch):
    old = types.ModuleType("tensorrt")
    old.__version__ = "8.6.1"
    monkeypatch.setitem(sys.modules, "tensorrt", old)
    eng = _engine_file(tmp_path / "m.engine")
    with pytest.raises(BackendUnavailable, match="TensorRT 8.6.1 is installed; pockit needs TensorRT >= 10"):
        load_detector(str(eng))


def test_warmup_context_manager_and_info(tmp_path):
    path = _tiny_onnx(tmp_path / "w.onnx")
    with load_detector(str(path), batch=3, conf=0.4, class_names={0: "pedestrian", 1: "luggage"}) as det:
        det.warmup()
        assert det.last_timings["inference"] > 0  # one call of 3 blank frames
        info = det.info
        assert info["class_names"] == {0: "pedestrian", 1: "luggage"} and info["batch"] == 3
        assert info["conf"] == 0.4 and info["imgsz"] == [64, 64] and info["path"] == str(path)
        assert info["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
        (d,) = det.detect([_solid((0, 0, 255))])
        assert d.names == ["pedestrian"]
    with pytest.raises(RuntimeError, match="is closed"):
        det.detect([_solid((0, 0, 255))])


def test_cuda_runtime_lookup_is_thread_safe(monkeypatch):
    """NVDEC sources open in several decode threads at once and each asks for the CUDA runtime: every caller
    gets what the one lookup found (before the lock, callers during the lookup got None and their streams
    failed on the H200)."""
    import threading
    import time as _time

    from pockit.inference import torch_backend as tb

    sentinel = object()
    calls = []

    def slow_open():
        calls.append(1)
        _time.sleep(0.2)
        return sentinel

    monkeypatch.setattr(tb, "_CUDART", False)
    monkeypatch.setattr(tb, "_open_cudart", slow_open)
    got = []
    threads = [threading.Thread(target=lambda: got.append(tb._cudart())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [sentinel] * 8
    assert len(calls) == 1
