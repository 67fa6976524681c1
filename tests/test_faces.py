"""Face watch lists: enrolment quality check, watch list file, matcher threshold/margin, per-track decisions."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pockit.core import Detections
from pockit.faces import (
    Matcher,
    TrackFaces,
    Watchlist,
    WatchlistError,
    blur_faces,
    enrol,
    face_boxes,
    face_columns,
)
from pockit.faces.cli import faces_cmd

D = 128


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    """A 128-d vector with the given (axis, value) entries, the rest 0 (callers keep it unit-length)."""
    v = np.zeros(D, np.float32)
    for axis, value in pairs:
        v[axis] = value
    return v


def with_sims(a: float, b: float) -> np.ndarray:
    """A unit vector with cosine ``a`` to identity A (axis 0) and ``b`` to B (axis 1)."""
    return unit((0, a), (1, b), (2, float(np.sqrt(1 - a * a - b * b))))


@pytest.fixture
def wl() -> Watchlist:
    return Watchlist(["A", "B"], np.stack([unit((0, 1.0)), unit((1, 1.0))]), np.array([0, 1]), ["a.jpg", "b.jpg"])


# -- matcher ------------------------------------------------------------------------------------------
def test_matcher_threshold_and_margin(wl):
    m = Matcher(wl, threshold=0.4, margin=0.05)
    got = m.match(np.stack([with_sims(0.6, 0.1), with_sims(0.39, 0.0), with_sims(0.5, 0.47), with_sims(0.1, 0.45)]))
    assert [r.identity for r in got] == ["A", None, None, "B"]
    assert got[0].similarity == pytest.approx(0.6, abs=1e-6) and got[0].second == pytest.approx(0.1, abs=1e-6)
    assert got[1].reason == "similarity 0.390 < threshold 0.4" and got[1].best == "A"
    assert got[2].reason == "margin 0.030 to B < 0.05" and got[2].best == "A"
    assert got[3].similarity == pytest.approx(0.45, abs=1e-6)


def test_matcher_identity_is_best_over_its_photos():
    wl = Watchlist(["A", "B"], np.stack([unit((0, 1.0)), unit((3, 1.0)), unit((1, 1.0))]), np.array([0, 0, 1]))
    sims = Matcher(wl).similarities(np.stack([unit((3, 0.8), (4, 0.6))]))
    assert sims.shape == (1, 2)
    assert sims[0, 0] == pytest.approx(0.8, abs=1e-6) and sims[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_matcher_single_identity_has_no_second(wl):
    one = Watchlist(["A"], unit((0, 1.0))[None], np.array([0]))
    r = Matcher(one, threshold=0.3, margin=0.5).match(with_sims(0.6, 0.0)[None])[0]
    assert r.identity == "A" and r.second == -1.0


def test_matcher_rejects_bad_settings(wl):
    with pytest.raises(ValueError, match="threshold 1.5 is not a cosine similarity"):
        Matcher(wl, threshold=1.5)
    with pytest.raises(ValueError, match="margin -0.1 must be >= 0"):
        Matcher(wl, margin=-0.1)


def test_track_needs_min_frames_and_ignores_missing_faces(wl):
    tf = TrackFaces(Matcher(wl, 0.4, 0.05), min_frames=3)
    assert tf.add(7, with_sims(0.7, 0.0)) and tf.add(7, with_sims(0.7, 0.0))
    assert tf.add(7, np.full(D, np.nan, np.float32)) is False  # no face this frame: not a view
    assert tf.decide(7) is None and tf.seen(7) == 2
    tf.add(7, with_sims(0.7, 0.0))
    m = tf.decide(7)
    assert m.identity == "A" and m.frames == 3 and m.similarity == pytest.approx(0.7, abs=1e-5)


def test_track_keeps_best_quality_views(wl):
    tf = TrackFaces(Matcher(wl, 0.4, 0.05), keep=2, min_frames=1)
    tf.add(1, with_sims(0.8, 0.0), quality=0.9)
    tf.add(1, with_sims(0.0, 0.9), quality=0.1)  # a poor view that looks like B: dropped
    tf.add(1, with_sims(0.8, 0.0), quality=0.8)
    assert [round(q, 1) for q, _, _ in tf.tracks[1].views] == [0.9, 0.8]
    assert tf.decide(1).identity == "A"


def test_track_mean_vs_best(wl):
    views = [with_sims(0.8, 0.0), unit((5, 1.0))]  # one good view of A, one that matches nobody
    res = {}
    for agg in ("mean", "best"):
        tf = TrackFaces(Matcher(wl, 0.6, 0.05), min_frames=2, aggregate=agg)
        for v in views:
            tf.add(3, v)
        res[agg] = tf.decide(3)
    assert res["best"].identity == "A" and res["best"].similarity == pytest.approx(0.8, abs=1e-5)
    # the mean of the two views has cosine 0.8 / |v1 + v2| = 0.8 / sqrt(2) = 0.566 to A: below 0.6
    assert res["mean"].identity is None and res["mean"].similarity == pytest.approx(0.8 / np.sqrt(2), abs=1e-4)


def test_min_quality_drops_views(wl):
    tf = TrackFaces(Matcher(wl), min_frames=1, min_quality=0.5)
    assert tf.add(1, with_sims(0.9, 0.0), quality=0.4) is False
    assert tf.decide(1) is None


# -- face columns: face objects, attached faces, lone faces of an extra model -----------------------------
def test_face_columns_from_face_objects_and_attached_faces():
    e = with_sims(0.7, 0.0)
    own = Detections(xyxy=[[0, 0, 10, 10]], class_ids=[0], class_names={0: "face"},
                     data={"embedding": e[None], "quality": np.array([0.5], np.float32)})
    emb, q, boxes = face_columns(own)
    assert np.allclose(emb[0], e) and q.tolist() == [0.5] and boxes.tolist() == [[0, 0, 10, 10]]
    persons = Detections(xyxy=[[0, 0, 100, 200], [200, 0, 300, 200]], class_ids=[0, 0], class_names={0: "Normal"},
                         data={"face.embedding": np.stack([e, np.full(D, np.nan, np.float32)]),
                               "face.xyxy": np.array([[30, 10, 60, 50], [np.nan] * 4], np.float32),
                               "face.quality": np.array([0.9, np.nan], np.float32)})
    emb, q, boxes = face_columns(persons, "face")
    assert np.allclose(emb[0], e) and np.isnan(emb[1]).all()
    assert boxes.tolist() == [[30, 10, 60, 50], [200, 0, 300, 200]] and q.tolist() == pytest.approx([0.9, 1.0])
    assert face_boxes(persons).tolist() == [[30, 10, 60, 50]]
    assert face_boxes(own).tolist() == [[0, 0, 10, 10]]


# -- watch list file ------------------------------------------------------------------------------------
def test_watchlist_roundtrip_and_errors(wl, tmp_path):
    p = wl.save(tmp_path / "wl.npz")
    back = Watchlist.load(p)
    assert back.names == ["A", "B"] and back.files == ["a.jpg", "b.jpg"] and np.allclose(back.embeddings, wl.embeddings)
    with pytest.raises(WatchlistError, match=r"watch list .*missing\.npz does not exist; make one with 'pockit faces "):
        Watchlist.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", names=np.array(["A"]))
    with pytest.raises(WatchlistError, match=r"bad\.npz: not a pockit watch list \(missing embeddings, labels\)"):
        Watchlist.load(tmp_path / "bad.npz")
    wl.embedder_sha256 = "a" * 64
    wl.save(tmp_path / "other.npz")
    with pytest.raises(WatchlistError, match="enrolled with another face recognizer"):
        Watchlist.load(tmp_path / "other.npz", embedder_sha256="b" * 64)
    with pytest.raises(WatchlistError, match="duplicate identity names"):
        Watchlist(["A", "A"], np.stack([unit((0, 1.0))] * 2), np.array([0, 1]))


# -- enrolment from photos (faces cut from the shared walking clip) -----------------------------------------
@pytest.fixture(scope="module")
def walk_frame(shared_data):
    from pockit.sources import open_source

    with open_source(str(shared_data / "video" / "face-demographics-walking-and-pause.gif"), max_frames=21) as s:
        return list(s)[20].image


def _photo(frame, x, y, w, h, pad=0.8):
    return frame[max(0, int(y - pad * h)):int(y + h * (1 + pad)), max(0, int(x - pad * w)):int(x + w * (1 + pad))].copy()


# face boxes (x, y, w, h) of frame 20: left, middle, right person
LEFT, MIDDLE, RIGHT = (58, 82, 48, 65), (198, 66, 59, 71), (345, 97, 54, 70)


@pytest.fixture(scope="module")
def enrol_folder(walk_frame, tmp_path_factory):
    root = tmp_path_factory.mktemp("enrol")
    for d in ("left", "middle", "blurry", "tiny", "group"):
        (root / d).mkdir()
    cv2.imwrite(str(root / "left" / "1.png"), _photo(walk_frame, *LEFT))
    cv2.imwrite(str(root / "middle" / "1.jpg"), _photo(walk_frame, *MIDDLE))
    (root / "middle" / "broken.jpg").write_bytes(b"not an image")
    cv2.imwrite(str(root / "blurry" / "1.png"), cv2.GaussianBlur(_photo(walk_frame, *RIGHT), (0, 0), 2))
    small = cv2.resize(_photo(walk_frame, *RIGHT), None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "tiny" / "1.png"), small)
    cv2.imwrite(str(root / "group" / "1.png"), walk_frame)  # three faces of similar size
    cv2.imwrite(str(root / "stray.png"), _photo(walk_frame, *RIGHT))
    return root


def test_enrol_quality_check_names_each_refused_file(enrol_folder):
    res = enrol(enrol_folder)
    assert res.watchlist.names == ["left", "middle"]
    assert [f.split("/")[-2:] for _, f, _ in res.accepted] == [["left", "1.png"], ["middle", "1.jpg"]]
    assert res.watchlist.embeddings.shape == (2, 128)
    assert np.allclose(np.linalg.norm(res.watchlist.embeddings, axis=1), 1.0, atol=1e-5)
    assert res.watchlist.files == ["left/1.png", "middle/1.jpg"]
    why = {f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[-1]: r for _, f, r in res.rejected}
    assert sorted(why) == ["blurry/1.png", "enrol0/stray.png", "group/1.png", "middle/broken.jpg", "tiny/1.png"]
    assert why["blurry/1.png"].startswith("face blurred: sharpness ") and why["blurry/1.png"].endswith(
        " < 30 (variance of the Laplacian)")
    assert why["tiny/1.png"].startswith("face too small: ") and why["tiny/1.png"].endswith(
        " px < 32 px (shorter side of the face box)")
    assert why["group/1.png"].startswith("3 faces of similar size")
    assert why["middle/broken.jpg"] == "cannot read the image"
    assert why["enrol0/stray.png"] == "not inside an identity folder (the folder name is the identity)"
    assert res.missing == ["blurry", "group", "tiny"]


def test_enrol_cli_writes_watchlist_and_fails_for_missing_identities(enrol_folder, tmp_path):
    out = tmp_path / "wl.npz"
    r = CliRunner().invoke(faces_cmd, ["enrol", str(enrol_folder), "-o", str(out), "--json"])
    assert r.exit_code == 1, r.output
    rep = json.loads(r.stdout)
    assert rep["identities"] == 2 and rep["photos"] == 2 and rep["refused"] == 5 and len(rep["rejected"]) == 5
    assert rep["missing"] == ["blurry", "group", "tiny"]
    assert "error: no usable photo for blurry, group, tiny: not in the watch list" in r.stderr
    assert Watchlist.load(out).names == ["left", "middle"]
    # looser limits accept the small face
    r = CliRunner().invoke(faces_cmd, ["enrol", str(enrol_folder), "-o", str(out),
                                       "--min-size", "10"])
    assert "ok       tiny: " in r.stdout


def test_enrol_refuses_an_empty_folder(tmp_path):
    r = CliRunner().invoke(faces_cmd, ["enrol", str(tmp_path), "-o", str(tmp_path / "w.npz")])
    assert r.exit_code == 1
    assert f"{tmp_path}: no identity folders inside" in r.output
    assert not (tmp_path / "w.npz").exists()


# -- privacy blur --------------------------------------------------------------------------------------------
def test_blur_faces_leaves_no_recognisable_face(walk_frame):
    from pockit.inference import load_detector

    det = load_detector("face-yunet")
    before = det.detect([walk_frame])[0]
    img = walk_frame.copy()
    assert blur_faces(img, face_boxes(before)) == 3
    after = det.detect([img])[0]
    assert len(after) == 0
    outside = np.ones(img.shape[:2], bool)
    for x1, y1, x2, y2 in before.xyxy:
        w, h = x2 - x1, y2 - y1
        outside[max(0, int(y1 - 0.3 * h)):int(np.ceil(y2 + 0.3 * h)), max(0, int(x1 - 0.3 * w)):int(np.ceil(x2 + 0.3 * w))] = False
    assert (img[outside] == walk_frame[outside]).all()  # nothing else changed
