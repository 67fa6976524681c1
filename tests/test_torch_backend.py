"""TorchDetector (GPU backend) on the CPU: same detections as pockit's shared post-processing."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from pockit.inference.postprocess import postprocess  # noqa: E402
from pockit.inference.preprocess import letterbox, target_shape  # noqa: E402
from pockit.inference.torch_backend import TorchDetector, letterbox_geometry  # noqa: E402


class FixedHead(torch.nn.Module):
    """Returns a fixed raw (B, 4+nc, A) prediction whatever the input (records the input it saw)."""

    def __init__(self, raw: np.ndarray):
        super().__init__()
        self.raw = torch.from_numpy(raw)
        self.names = {0: "person", 1: "car", 2: "bag"}
        self.seen = None

    def forward(self, x):
        self.seen = x.detach().clone()
        return (self.raw[: x.shape[0]].to(x.dtype),)


def _raw(b=3, a=400, nc=3, seed=0):
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0, 640, (b, a)), rng.uniform(0, 640, (b, a))
    w, h = rng.uniform(5, 200, (b, a)), rng.uniform(5, 200, (b, a))
    scores = rng.uniform(0, 1, (b, nc, a)) ** 3
    return np.concatenate([np.stack([cx, cy, w, h], 1), scores], 1).astype(np.float32)


@pytest.mark.parametrize("classes,max_det", [(None, 300), ([1], 300), (None, 5), (["bag", "person"], 7)])
def test_same_detections_as_shared_postprocess(classes, max_det):
    raw = _raw()
    images = [np.zeros((480, 640, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8), np.zeros((432, 768, 3), np.uint8)]
    det = TorchDetector(FixedHead(raw), device="cpu", half=False, batch=8, conf=0.3, iou=0.5, classes=classes, max_det=max_det)
    got = det.detect(images)
    infos = [letterbox_geometry(*im.shape[:2], 640, 640) for im in images]
    ids = None if classes is None else det.class_filter
    ref = postprocess(raw, infos, det.class_names, conf=0.3, iou=0.5, classes=ids, max_det=max_det)
    assert [len(g) for g in got] == [len(r) for r in ref]
    assert sum(len(r) for r in ref) > 10
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.xyxy, r.xyxy, atol=1e-3)
        np.testing.assert_allclose(g.scores, r.scores, atol=1e-6)
        np.testing.assert_array_equal(g.class_ids, r.class_ids)
        assert g.class_names == {0: "person", 1: "car", 2: "bag"}
        if classes is not None:
            assert set(g.class_ids.tolist()) <= set(ids)
        assert len(g) <= max_det


def test_letterbox_geometry_matches_cpu_letterbox():
    for h, w in [(480, 640), (1080, 1920), (432, 768), (577, 301), (640, 640)]:
        _, info = letterbox(np.zeros((h, w, 3), np.uint8), target_shape([(h, w)], 640))
        assert letterbox_geometry(h, w, 640, 640) == info


def test_gpu_preprocess_matches_cpu_letterbox_pixels():
    """The GPU path's network input equals pockit's CPU letterbox (bilinear, pad 114, RGB, /255)."""
    from pockit.inference.preprocess import preprocess_batch

    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (240, 320, 3), np.uint8)  # upscaled x2 into 640 wide, padded top/bottom
    head = FixedHead(_raw(b=1))
    det = TorchDetector(head, device="cpu", half=False, batch=2)
    det.detect([img])
    ref, _ = preprocess_batch([img], 640)
    got = head.seen.numpy()
    assert got.shape == ref.shape == (1, 3, 640, 640)
    # padding rows are exactly 114/255; image area within one uint8 rounding step of cv2's fixed-point resize
    np.testing.assert_allclose(got[:, :, :80], 114 / 255, atol=1e-6)
    np.testing.assert_allclose(got, ref, atol=1.5 / 255)


def test_bad_inputs_and_classes_raise_clear_errors():
    det = TorchDetector(FixedHead(_raw()), device="cpu", half=False)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match=r"^model\.classes: 'dog' is not a class of the model; its classes are 0=person, 1=car, 2=bag$"):
        TorchDetector(FixedHead(_raw()), device="cpu", half=False, classes=["dog"])
    with pytest.raises(ValueError, match=r"^model\.classes: 7 is not a class of the model; its classes are 0=person, 1=car, 2=bag$"):
        TorchDetector(FixedHead(_raw()), device="cpu", half=False, classes=[7])
    # the one case rule of pockit.resolve: names match case-insensitively, digit strings are ids
    assert TorchDetector(FixedHead(_raw()), device="cpu", half=False, classes=["CAR", "0", "bag"]).class_filter == [0, 1, 2]
    assert det.detect([]) == []


def test_launch_finish_equals_detect():
    raw = _raw(seed=3)
    imgs = [np.zeros((480, 640, 3), np.uint8)] * 3
    det = TorchDetector(FixedHead(raw), device="cpu", half=False, batch=4)
    a = det.detect(imgs)
    b = det.finish(det.launch(imgs))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.xyxy, y.xyxy)
    ft = det.last_finish_timings  # the pipeline's 'inference' (GPU wait) and 'postprocess' (NMS) per batch
    assert set(ft) == {"inference", "postprocess"} and ft["postprocess"] > 0 and ft["inference"] >= 0
    with pytest.raises(ValueError, match="at most batch=4"):
        det.launch(imgs * 2)


@pytest.mark.slow
@pytest.mark.ml
def test_real_model_matches_ultralytics_predict(tud_campus):
    """The person detector's .pt through TorchDetector (CPU, FP32) = Ultralytics predict, box for box."""
    pytest.importorskip("ultralytics")
    import cv2
    from ultralytics import YOLO

    from pockit.inference import resolve_model

    pt = resolve_model("person-yolov8s-pt")
    frames = sorted((tud_campus / "img1").glob("*.jpg"))[:3]
    imgs = [cv2.imread(str(f)) for f in frames]
    imgs.append(cv2.resize(imgs[0], (1920, 1080)))
    det = TorchDetector(pt, device="cpu", half=False, batch=4)
    got = det.detect(imgs)
    ref = YOLO(str(pt)).predict(imgs, conf=0.25, iou=0.45, imgsz=640, device="cpu", verbose=False)
    assert [len(g) for g in got] == [len(r.boxes) for r in ref] == [8, 6, 6, 7]
    for g, r in zip(got, ref):
        o = np.argsort(-g.scores)
        ro = np.argsort(-r.boxes.conf.numpy())
        np.testing.assert_allclose(g.xyxy[o], r.boxes.xyxy.numpy()[ro], atol=0.05)
        np.testing.assert_allclose(g.scores[o], r.boxes.conf.numpy()[ro], atol=1e-4)
    assert det.info["backend"] == "torch" and len(det.info["sha256"]) == 64


@pytest.mark.parametrize("classes,max_det", [(None, 300), (["car"], 300), (None, 4)])
def test_host_and_gpu_postprocess_agree(classes, max_det):
    """The host NMS (default in the pipeline) and the on-device NMS give the same detections."""
    raw = _raw(b=4, a=600, seed=7)
    det = TorchDetector(FixedHead(raw), device="cpu", half=False, batch=8, conf=0.25, iou=0.45, classes=classes,
                        max_det=max_det)
    images = [np.zeros((576, 768, 3), np.uint8)] * 2 + [np.zeros((1080, 1920, 3), np.uint8)] * 2
    x, infos = det.preprocess_gpu(det.upload(images))
    pred = det.forward_raw(x)
    host, dev = det.postprocess_host(pred, infos), det.postprocess_gpu(pred, infos)
    assert sum(len(h) for h in host) > 8
    for h, d in zip(host, dev):
        assert len(h) == len(d) <= max_det
        order_h, order_d = np.lexsort((h.xyxy[:, 0], -h.scores)), np.lexsort((d.xyxy[:, 0], -d.scores))
        np.testing.assert_allclose(h.xyxy[order_h], d.xyxy[order_d], atol=1e-3)
        np.testing.assert_allclose(h.scores[order_h], d.scores[order_d], atol=1e-6)
        np.testing.assert_array_equal(h.class_ids[order_h], d.class_ids[order_d])


def test_graph_sizes_cover_every_batch(monkeypatch):
    from pockit.inference.torch_backend import TorchDetector

    det = TorchDetector.__new__(TorchDetector)
    det.batch = 64
    monkeypatch.delenv("POCKIT_GRAPH_SIZES", raising=False)
    assert det.graph_sizes() == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]
    det.batch = 12
    assert det.graph_sizes() == [1, 2, 4, 8, 12]
    det.batch = 1
    assert det.graph_sizes() == [1]
    monkeypatch.setenv("POCKIT_GRAPH_SIZES", "0")
    det.batch = 64
    assert det.graph_sizes() == [64]


def _scene(h=96, w=128, seed=1):
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 2)
    cv2.rectangle(img, (10, 10), (60, 80), (20, 200, 240), -1)
    return img


def test_nv12_to_rgb_matches_opencv(bgr_to_nv12):
    """NVDEC's NV12 converted on the GPU (here on the CPU, same torch code) = OpenCV's NV12 -> RGB, within
    rounding: the model sees the colours it would see from the CPU conversion."""
    import cv2

    from pockit.inference.torch_backend import _is_nv12, nv12_to_rgb

    nv12 = bgr_to_nv12(_scene())
    assert _is_nv12(nv12) and not _is_nv12(_scene()) and not _is_nv12(np.zeros((95, 128), np.uint8))
    ref = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12).astype(np.float32)  # H, W, 3
    got = nv12_to_rgb(torch.from_numpy(np.stack([nv12, nv12])), torch.float32)
    assert tuple(got.shape) == (2, 3, 96, 128)
    diff = np.abs(got[1].permute(1, 2, 0).numpy() - ref)
    assert diff.max() <= 1.5 and diff.mean() < 0.6, (diff.max(), diff.mean())


def test_preprocess_takes_nv12_like_bgr(bgr_to_nv12):
    """A batch mixing BGR frames and NV12 planes letterboxes each like the BGR frame OpenCV would make of it."""
    import cv2

    det = TorchDetector(FixedHead(_raw(b=3)), device="cpu", half=False, batch=8, conf=0.3)
    bgr = _scene(96, 128)
    nv12 = bgr_to_nv12(bgr)
    as_cpu = cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
    frames = [torch.from_numpy(as_cpu), torch.from_numpy(nv12), torch.from_numpy(_scene(64, 96, 2))]
    x, infos = det.preprocess_gpu(frames)
    assert infos[0] == infos[1] == letterbox_geometry(96, 128, 640, 640)
    assert float((x[0] - x[1]).abs().max()) <= 2.0 / 255
    assert float((x[0] - x[2]).abs().max()) > 0.1  # a different frame does differ


def test_preprocess_into_the_graph_input_buffer_equals_a_fresh_batch(bgr_to_nv12):
    """launch() letterboxes straight into the CUDA graph's input buffer (``out=``): the batch there is the one a
    fresh tensor gets, and a batch of another geometry refills the padding the previous one left."""
    from pockit.inference.torch_backend import PAD_VALUE

    det = TorchDetector(FixedHead(_raw(b=3)), device="cpu", half=False, batch=4, conf=0.3, imgsz=160)
    buf = torch.zeros((4, 3, 160, 160))
    wide = [torch.from_numpy(_scene(64, 128, s)) for s in (1, 2)]  # 160x80 inside: pad above and below
    tall = [torch.from_numpy(bgr_to_nv12(_scene(128, 64, 3)))]  # NV12, 80x160 inside: pad left and right
    for frames in (wide, tall, wide, wide):
        ref, ref_infos = det.preprocess_gpu(frames)
        got, infos = det.preprocess_gpu(frames, out=buf[: len(frames)])
        assert infos == ref_infos and got.data_ptr() == buf.data_ptr()
        assert torch.equal(got, ref), float((got - ref).abs().max())
    # the tall frame's pixels above the wide frames were padding again once the wide frames came back
    assert float(buf[0, :, :40, :].sub(PAD_VALUE / 255.0).abs().max()) == 0.0
