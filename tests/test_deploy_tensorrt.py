"""TensorRT engine builder against a fake ``tensorrt`` module (TensorRT cannot be installed here).

Checks what does not need the runtime: profile shapes, cache keys and the engine cache, the engine a
build makes (input profile, workspace, precision per layer, DLA, timing cache, INT8 calibration: the
stand-in serializes a description of it and enforces TensorRT's build rules), calibration batching and
its cache, trtexec lines and the diagnosis messages.
"""
import json
import sys
import types

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from pockit.core import Detections  # noqa: E402
from pockit.deploy import tensorrt as T  # noqa: E402
from pockit.inference.preprocess import preprocess_batch  # noqa: E402

GPU = T.GpuIdentity("NVIDIA H100 80GB HBM3", "9.0")


def make_onnx(path, dims=("batch", 3, "height", "width"), opset=17):
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(dims))
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, "anchors"])
    g = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g", [inp], [out])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(m, str(path))
    return path


# -- a stand-in for TensorRT 10 that builds a description of its engine ---------------------------
class _Enum:
    def __init__(self, *names):
        for n in names:
            setattr(self, n, n)


def fake_trt(parse_ok=True, errors=(), build_ok=True, dla_cores=2, version="10.3.0"):
    """A TensorRT 10 stand-in. Its parser reads the ONNX input; its builder enforces the rules real TensorRT does (a
    dynamic input needs an optimization profile within the network's fixed dims; INT8 needs a calibrator that yields
    batches, and with a dynamic input a calibration profile; DLA runs FP16/INT8 only) and serializes a JSON description
    of the engine it would make (input profile, workspace, device, per-layer precision, calibration), so tests check
    the engine that comes out, not the calls that made it."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.MemoryPoolType = _Enum("WORKSPACE")
    trt.BuilderFlag = _Enum("FP16", "INT8", "GPU_FALLBACK", "PREFER_PRECISION_CONSTRAINTS")
    trt.DeviceType = _Enum("GPU", "DLA")
    trt.DataType = _Enum("HALF", "FLOAT")
    trt.builds = 0

    class Logger:
        WARNING, VERBOSE = "W", "V"

        def __init__(self, level):
            self.level = level

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, tuple(shape)

    class Layer:
        def __init__(self, name):
            self.name, self.precision, self.num_outputs, self.out = name, None, 1, {}

        def set_output_type(self, i, t):
            self.out[i] = t

    class Network:
        num_outputs = 1

        def __init__(self):
            self.input = None
            self.layers = [Layer("/model.0/conv/Conv"), Layer("/model.22/cv3.2/Conv"), Layer("/model.22/dfl/Conv")]
            self.num_layers = len(self.layers)

        def get_output(self, i):
            return Tensor("output0", (-1, 6, -1))

        def get_layer(self, i):
            return self.layers[i]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, mn, opt, mx):
            self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))

    class TimingCache:
        def __init__(self, blob):
            self.entries = json.loads(blob) if blob else []

        def serialize(self):
            return json.dumps(self.entries).encode()

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.pool = set(), [], {}
            self.int8_calibrator = self.calibration_profile = self.timing_cache = None
            self.default_device_type, self.DLA_core = "GPU", -1

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def set_flag(self, f):
            self.flags.add(f)

        def add_optimization_profile(self, p):
            self.profiles.append(p)

        def set_calibration_profile(self, p):
            self.calibration_profile = p

        def create_timing_cache(self, blob):
            return TimingCache(bytes(blob))

        def set_timing_cache(self, c, ignore_mismatch):
            self.timing_cache = c

        def get_timing_cache(self):
            return self.timing_cache

    def _fits(shapes, dims):
        return all(len(s) == len(dims) and all(d < 0 or d == v for d, v in zip(dims, s)) for s in shapes) and \
            shapes[0] <= shapes[1] <= shapes[2]

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            if flags != 0:
                raise TypeError("TensorRT 10: create_network takes 0 (explicit batch is the only mode)")
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            inp = network.input
            if not build_ok or inp is None:
                return None
            dynamic = any(d < 0 for d in inp.shape)
            prof = next((p.shapes[inp.name] for p in config.profiles if inp.name in p.shapes), None)
            if dynamic and (prof is None or not _fits(prof, inp.shape)):
                return None  # "Network has dynamic or shape inputs, but no optimization profile has been defined"
            int8, fp16 = "INT8" in config.flags, "FP16" in config.flags
            dla = config.default_device_type == "DLA"
            if dla and not (int8 or fp16):
                return None
            calibration = None
            if int8:
                cal = config.int8_calibrator
                if cal is None or (dynamic and config.calibration_profile is None):
                    return None
                table = cal.read_calibration_cache()
                if table is None:
                    n = 0
                    while cal.get_batch([inp.name]) is not None:
                        n += 1
                    if n == 0:
                        return None
                    table = f"CALIB batches={n} batch={cal.get_batch_size()}".encode()
                    cal.write_calibration_cache(table)
                calibration = bytes(table).decode()
            default = "INT8" if int8 else "FP16" if fp16 else "FP32"
            constrained = "PREFER_PRECISION_CONSTRAINTS" in config.flags
            layers = {ly.name: ("FP16" if constrained and ly.precision == "HALF" else default) for ly in network.layers}
            if config.timing_cache is not None:
                config.timing_cache.entries = sorted(set(config.timing_cache.entries) | set(layers))
            trt.builds += 1
            return json.dumps({
                "input": {inp.name: list(map(list, prof)) if dynamic else list(inp.shape)},
                "workspace": config.pool.get("WORKSPACE"),
                "device": f"DLA:{config.DLA_core}" if dla else "GPU",
                "gpu_fallback": "GPU_FALLBACK" in config.flags,
                "layers": layers,
                "calibration": calibration,
            }).encode()

    class Err:
        def __init__(self, code, desc, node, name, op):
            self._v = (code, desc, node, name, op)

        def code(self):
            return "ErrorCode." + self._v[0]

        def desc(self):
            return self._v[1]

        def node(self):
            return self._v[2]

        def node_name(self):
            return self._v[3]

        def node_operator(self):
            return self._v[4]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse_from_file(self, path):
            if not parse_ok:
                self.num_errors = len(errors)
                return False
            name, dims = T.input_spec(path)
            self.network.input = Tensor(name, [d if isinstance(d, int) else -1 for d in dims])
            return True

        def get_error(self, i):
            return Err(*errors[i])

    class _Calib:
        def __init__(self):
            pass

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (_Calib,), {})
    trt.IInt8MinMaxCalibrator = type("IInt8MinMaxCalibrator", (_Calib,), {})
    return trt


def built(res):
    """(metadata, engine description) of a build's engine file."""
    from pockit.inference.tensorrt_backend import read_engine_file

    meta, body = read_engine_file(res.engine)
    return meta, json.loads(body)


class FakeMemory:
    def __init__(self):
        self.copies = []

    def alloc(self, n):
        return bytearray(n)

    def ptr(self, buf):
        return 0xDEAD

    def h2d(self, buf, arr):
        self.copies.append(arr.copy())

    def synchronize(self):
        pass


# -- shapes, keys, trtexec ---------------------------------------------------------------------
def test_profile_shapes_dynamic_and_static(tmp_path):
    dyn = make_onnx(tmp_path / "d.onnx")
    name, dims = T.input_spec(dyn)
    assert (name, dims) == ("images", ["batch", 3, "height", "width"])
    assert T.profile_shapes(dims, T.BuildSpec(onnx=dyn)) == ((1, 3, 640, 640), (8, 3, 640, 640), (16, 3, 640, 640))
    assert T.profile_shapes(dims, T.BuildSpec(onnx=dyn, batch=(2, 32, 64), imgsz=512)) == (
        (2, 3, 512, 512), (32, 3, 512, 512), (64, 3, 512, 512))
    st = make_onnx(tmp_path / "s.onnx", dims=(4, 3, 640, 640))
    _, sd = T.input_spec(st)
    assert T.profile_shapes(sd, T.BuildSpec(onnx=st)) == ((4, 3, 640, 640),) * 3
    with pytest.raises(T.EngineBuildError, match="fixed at 4.*dynamic export"):
        T.profile_shapes(sd, T.BuildSpec(onnx=st, batch=(1, 8, 16)))
    with pytest.raises(T.EngineBuildError, match="height is fixed at 640 but imgsz=320"):
        T.profile_shapes(sd, T.BuildSpec(onnx=st, imgsz=320))
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        T.BuildSpec(onnx=dyn, batch=(8, 4, 16))
    with pytest.raises(ValueError, match="INT8 needs calibration images"):
        T.BuildSpec(onnx=dyn, precision="int8")


def test_cache_key_depends_on_every_field(tmp_path):
    spec = T.BuildSpec(onnx=make_onnx(tmp_path / "m.onnx"))
    shapes = ((1, 3, 640, 640), (8, 3, 640, 640), (16, 3, 640, 640))
    k = T.cache_key("ab" * 32, "10.3.0", GPU, spec, shapes)
    assert k == T.cache_key("ab" * 32, "10.3.0", GPU, spec, shapes)  # stable
    assert len(k["key"]) == 16 and k["precision"] == "fp16" and k["compute_capability"] == "9.0"
    variants = [
        T.cache_key("cd" * 32, "10.3.0", GPU, spec, shapes),
        T.cache_key("ab" * 32, "10.4.0", GPU, spec, shapes),
        T.cache_key("ab" * 32, "10.3.0", T.GpuIdentity("Orin (nvgpu)", "8.7"), spec, shapes),
        T.cache_key("ab" * 32, "10.3.0", GPU, T.BuildSpec(onnx=spec.onnx, precision="fp32"), shapes),
        T.cache_key("ab" * 32, "10.3.0", GPU, spec, ((1, 3, 640, 640), (8, 3, 640, 640), (32, 3, 640, 640))),
        T.cache_key("ab" * 32, "10.3.0", GPU, T.BuildSpec(onnx=spec.onnx, dla_core=0), shapes),
    ]
    assert len({v["key"] for v in variants} | {k["key"]}) == 7
    assert T.engine_filename(spec.onnx, k) == f"m-fp16-b16-640-{k['key']}.engine"


def test_trtexec_command_lines(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    shapes = ((1, 3, 640, 640), (8, 3, 640, 640), (16, 3, 640, 640))
    spec = T.BuildSpec(onnx=onnx_path, workspace_mib=4096, timing_cache=tmp_path / "t.cache")
    assert T.trtexec_command(spec, "m.engine", "images", shapes) == [
        "trtexec", f"--onnx={onnx_path}", "--saveEngine=m.engine",
        "--minShapes=images:1x3x640x640", "--optShapes=images:8x3x640x640", "--maxShapes=images:16x3x640x640",
        "--fp16", "--memPoolSize=workspace:4096", f"--timingCacheFile={tmp_path / 't.cache'}",
    ]
    spec8 = T.BuildSpec(onnx=onnx_path, precision="int8", calib=["x"], dla_core=1, fp16_layers=["/model.22/.*"])
    assert T.trtexec_command(spec8, "e.engine", "images", None, "c.cache") == [
        "trtexec", f"--onnx={onnx_path}", "--saveEngine=e.engine", "--int8", "--calib=c.cache",
        "--precisionConstraints=prefer", "--layerPrecisions=/model.22/.*:fp16",
        "--memPoolSize=workspace:2048", "--useDLACore=1", "--allowGPUFallback",
    ]


# -- calibration -------------------------------------------------------------------------------
def test_calibration_batches_are_pockit_letterbox(tud_campus):
    frames = sorted((tud_campus / "img1").glob("*.jpg"))
    assert len(frames) == 71
    data = T.CalibrationData([tud_campus / "img1"], batch=8, imgsz=320)
    batches = list(data.batches())
    assert len(batches) == 8  # 71 frames -> 8 full batches, the last 7 frames dropped
    assert all(b.shape == (8, 3, 320, 320) and b.dtype == np.float32 for b in batches)
    import cv2

    ref, _ = preprocess_batch([cv2.imread(str(f)) for f in frames[8:16]], 320)
    np.testing.assert_array_equal(batches[1], ref)
    capped = T.CalibrationData([tud_campus / "img1"], batch=4, imgsz=320, max_images=10)
    assert len(capped) == 2


def test_calibration_from_video_and_bad_sources(shared_data, tmp_path):
    data = T.CalibrationData([shared_data / "video" / "car-detection.mp4"], batch=5, imgsz=160, frames_per_video=12)
    assert [b.shape for b in data.batches()] == [(5, 3, 160, 160)] * 2
    with pytest.raises(FileNotFoundError, match="calibration source not found"):
        T.CalibrationData([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no calibration images"):
        T.CalibrationData([tmp_path / "empty"])


@pytest.mark.parametrize("algo,base", [("entropy", "IInt8EntropyCalibrator2"), ("minmax", "IInt8MinMaxCalibrator")])
def test_calibrator_feeds_batches_and_caches(tud_campus, tmp_path, algo, base):
    trt = fake_trt()
    mem = FakeMemory()
    data = T.CalibrationData([tud_campus / "img1"], batch=16, imgsz=160, max_images=40)
    cache = tmp_path / "calib.cache"
    cal = T.make_calibrator(trt, data, cache, algo, memory=mem)
    assert isinstance(cal, getattr(trt, base))
    assert cal.get_batch_size() == 16
    assert cal.read_calibration_cache() is None
    ptrs = [cal.get_batch(["images"]) for _ in range(3)]
    assert ptrs == [[0xDEAD], [0xDEAD], None]  # 40 images -> 2 batches of 16, then done
    ref = list(data.batches())
    assert len(mem.copies) == 2 and all(np.array_equal(c, r) for c, r in zip(mem.copies, ref))  # the letterboxed frames
    cal.write_calibration_cache(b"TRT-8600-EntropyCalibration2\nimages: 3c010a14\n")
    assert cache.read_bytes().startswith(b"TRT-8600")
    again = T.make_calibrator(trt, data, cache, algo, memory=mem)
    assert again.read_calibration_cache() == cache.read_bytes()


# -- the build against the stand-in runtime --------------------------------------------------------
def test_build_engine_output_and_cache(tmp_path, capsys):
    onnx_path = make_onnx(tmp_path / "person.onnx")
    trt = fake_trt()
    spec = T.BuildSpec(onnx=onnx_path, precision="fp16", batch=(1, 32, 64), workspace_mib=1024,
                       timing_cache=tmp_path / "timing.cache")
    res = T.build_engine(spec, tmp_path / "engines", trt=trt, gpu=GPU, class_names={0: "Normal", 1: "Fall"})
    assert not res.cached and trt.builds == 1
    assert res.engine == tmp_path / "engines" / T.engine_filename(onnx_path, res.key)
    assert res.engine.name == f"person-fp16-b64-640-{res.key['key']}.engine"
    meta, engine = built(res)
    assert engine == {
        "input": {"images": [[1, 3, 640, 640], [32, 3, 640, 640], [64, 3, 640, 640]]},
        "workspace": 1024 << 20, "device": "GPU", "gpu_fallback": False, "calibration": None,
        "layers": {"/model.0/conv/Conv": "FP16", "/model.22/cv3.2/Conv": "FP16", "/model.22/dfl/Conv": "FP16"},
    }
    assert meta["names"] == {"0": "Normal", "1": "Fall"} and meta["batch"] == 64 and meta["imgsz"] == [640, 640]
    assert meta["pockit"] == res.key and meta["pockit"]["gpu"] == GPU.name and meta["trtexec"] == res.trtexec
    assert json.loads((tmp_path / "timing.cache").read_bytes()) == sorted(engine["layers"])
    out = capsys.readouterr().out
    assert out == f"equivalent trtexec command:\n  {res.trtexec}\n"
    assert "--maxShapes=images:64x3x640x640" in res.trtexec and "--fp16" in res.trtexec

    # second call: cache hit, the same file, nothing built
    trt2 = fake_trt()
    before = res.engine.read_bytes()
    again = T.build_engine(spec, tmp_path / "engines", trt=trt2, gpu=GPU)
    assert again.cached and again.engine == res.engine and trt2.builds == 0 and res.engine.read_bytes() == before
    # force: rebuilt in place
    assert not T.build_engine(spec, tmp_path / "engines", trt=trt2, gpu=GPU, force=True).cached and trt2.builds == 1
    # another GPU -> another key -> another engine file; loading the H100 one there is refused
    orin = T.GpuIdentity("Orin (nvgpu)", "8.7")
    other = T.build_engine(spec, tmp_path / "engines", trt=fake_trt(), gpu=orin)
    assert other.engine != res.engine and not other.cached and other.key["key"] != res.key["key"]
    with pytest.raises(T.EngineMismatchError, match=r"built for GPU NVIDIA H100 80GB HBM3 sm9\.0 \(this machine: Orin"):
        T.check_engine(res.engine, "10.3.0", orin)
    with pytest.raises(T.EngineMismatchError, match=r"TensorRT 10\.3\.0 \(this machine: 10\.7\.0\)"):
        T.check_engine(res.engine, "10.7.0", GPU)
    assert T.check_engine(res.engine, "10.3.0", GPU)["key"] == res.key["key"]
    # an engine of another TensorRT version in the cache slot is rebuilt, not loaded
    newer = T.build_engine(spec, tmp_path / "engines", trt=fake_trt(version="10.7.0"), gpu=GPU)
    assert not newer.cached and newer.key["key"] != res.key["key"]


def test_build_static_fp32(tmp_path):
    onnx_path = make_onnx(tmp_path / "s.onnx", dims=(4, 3, 320, 320))
    res = T.build_engine(T.BuildSpec(onnx=onnx_path, precision="fp32", imgsz=320), tmp_path, trt=fake_trt(), gpu=GPU)
    meta, engine = built(res)
    assert engine["input"] == {"images": [4, 3, 320, 320]} and set(engine["layers"].values()) == {"FP32"}
    assert meta["batch"] == 4 and "--minShapes" not in res.trtexec and "--fp16" not in res.trtexec


def test_build_int8_dla_with_calibration(tmp_path, tud_campus):
    onnx_path = make_onnx(tmp_path / "person.onnx")
    spec = T.BuildSpec(onnx=onnx_path, precision="int8", batch=(1, 4, 8), dla_core=1, calib=[str(tud_campus / "img1")],
                       calib_batch=8, calib_max_images=24, imgsz=320, fp16_layers=[r"/model\.22/"])
    res = T.build_engine(spec, tmp_path, trt=fake_trt(), gpu=GPU, memory=FakeMemory())
    _, engine = built(res)
    assert engine["device"] == "DLA:1" and engine["gpu_fallback"] is True
    assert engine["input"] == {"images": [[1, 3, 320, 320], [4, 3, 320, 320], [8, 3, 320, 320]]}
    assert engine["layers"] == {"/model.0/conv/Conv": "INT8", "/model.22/cv3.2/Conv": "FP16", "/model.22/dfl/Conv": "FP16"}
    assert engine["calibration"] == "CALIB batches=3 batch=8"  # 24 frames of TUD-Campus in batches of 8
    assert res.calib_cache.read_bytes() == b"CALIB batches=3 batch=8"
    assert res.calib_cache.name.startswith("calib-") and res.calib_cache.name.endswith("-320-entropy.cache")
    assert "--int8" in res.trtexec and f"--calib={res.calib_cache}" in res.trtexec and "--useDLACore=1" in res.trtexec
    # the calibration cache is reused: a rebuild reads no frame
    mem = FakeMemory()
    again = T.build_engine(spec, tmp_path, trt=fake_trt(), gpu=GPU, memory=mem, force=True)
    assert built(again)[1]["calibration"] == "CALIB batches=3 batch=8" and mem.copies == []
    with pytest.raises(T.EngineBuildError, match="DLA core 2 asked for but this device has 2"):
        T.build_engine(T.BuildSpec(onnx=onnx_path, dla_core=2), tmp_path, trt=fake_trt(), gpu=GPU, force=True)
    with pytest.raises(T.EngineBuildError, match="DLA runs FP16 or INT8 only"):
        T.build_engine(T.BuildSpec(onnx=onnx_path, dla_core=0, precision="fp32"), tmp_path, trt=fake_trt(), gpu=GPU)


def test_parse_failure_lists_errors_and_hints(tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx", opset=21)
    errs = [("UNSUPPORTED_NODE", "No importer registered for op: NonMaxSuppression", 212, "/NMS", "NonMaxSuppression")]
    with pytest.raises(T.EngineBuildError) as ei:
        T.build_engine(T.BuildSpec(onnx=onnx_path), tmp_path, trt=fake_trt(parse_ok=False, errors=errs), gpu=GPU)
    msg = str(ei.value)
    assert "[UNSUPPORTED_NODE] node 212 /NMS (NonMaxSuppression): No importer registered" in msg
    assert "opset 21" in msg and "--opset 17" in msg and "without NMS" in msg
    with pytest.raises(T.EngineBuildError, match="failed to build an engine"):
        T.build_engine(T.BuildSpec(onnx=make_onnx(tmp_path / "n.onnx")), tmp_path, trt=fake_trt(build_ok=False), gpu=GPU)


def test_diagnosis_messages():
    P = T.ParserProblem
    assert T.diagnose_parse_failure([P("INVALID_GRAPH", "shape mismatch", 3)], 17, "10.3.0") == [
        "invalid graph/shape: export with static height/width (--imgsz 640, no dynamic H/W) and simplify; "
        "check the file opens with onnxruntime"]
    h = T.diagnose_parse_failure([P("UNSUPPORTED_NODE", "x", 1, "n", "Mod")], 19, "8.6.1")
    assert h[0].startswith("the model uses ONNX opset 19 but TensorRT 8.6.1's parser handles up to ~17")
    assert "unsupported layers ['Mod']" in h[1]
    assert T.diagnose_outputs({"output0": (1, 6, 8400)}, 2) == []
    assert "expected 6" in T.diagnose_outputs({"output0": (1, 84, 8400)}, 2)[0]
    assert "transposed" in T.diagnose_outputs({"output0": (1, 8400, 6)}, 2)[0]
    assert "order must be (detections, protos)" in T.diagnose_outputs({"out0": (1, 38, 8400), "out1": (1, 32, 160, 160)}, 2)[0]


def test_int8_vs_fp16_report():
    a = Detections([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 70]], [0.9, 0.8, 0.6], [0, 0, 1])
    same = Detections([[0, 0, 10, 10], [20, 20, 40, 41], [50, 50, 60, 70]], [0.85, 0.8, 0.5], [0, 0, 1])
    r = T.compare_precisions([a, a], [same, same])
    assert (r.fp16_boxes, r.int8_boxes, r.matched) == (6, 6, 6)
    assert r.hints() == [] and r.mean_score_drift == pytest.approx(-0.05, abs=1e-6)
    lossy = Detections([[0, 0, 10, 10]], [0.5], [0])
    r2 = T.compare_precisions([a, a], [lossy, same])
    assert (r2.matched, r2.recall_vs_fp16) == (4, pytest.approx(4 / 6))
    assert r2.hints()[0].startswith("INT8 keeps 66.7% of the FP16 detections")
    assert any("minmax" in h for h in r2.hints())


def test_engine_cmd_print_only(tmp_path):
    from click.testing import CliRunner

    from pockit.cli import cli

    onnx_path = make_onnx(tmp_path / "m.onnx")
    r = CliRunner().invoke(cli, ["deploy", "engine", str(onnx_path), "--batch", "1,16,32", "--print-only"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == (f"trtexec --onnx={onnx_path} --saveEngine=m-fp16.engine --minShapes=images:1x3x640x640 "
                                "--optShapes=images:16x3x640x640 --maxShapes=images:32x3x640x640 --fp16 "
                                "--memPoolSize=workspace:2048")
    sys.modules.pop("tensorrt", None)
    r = CliRunner().invoke(cli, ["deploy", "engine", str(onnx_path)])
    assert r.exit_code != 0 and "tensorrt" in r.output.lower()
