"""face_match / unknown_face: exact events on synthetic tracks carrying face embeddings (face objects of their
own and faces attached to persons), and the privacy switch checked on a real run directory."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from pockit.core import Detections
from pockit.faces import Watchlist, WatchlistError
from pockit.rules import RuleEngine

D = 128
FPS = 10.0
FACE_NAMES = {0: "face"}
PERSON_NAMES = {0: "Normal", 1000: "face"}
A, B, C = (np.eye(D, dtype=np.float32)[i] for i in range(3))


def mix(a: float, b: float = 0.0) -> np.ndarray:
    """Unit embedding with cosine ``a`` to A and ``b`` to B."""
    v = a * A + b * B + np.sqrt(1 - a * a - b * b) * C
    return v.astype(np.float32)


@pytest.fixture
def wl_path(tmp_path):
    return str(Watchlist(["alice", "bob"], np.stack([A, B]), np.array([0, 1]), ["alice/1.jpg", "bob/1.jpg"]).save(
        tmp_path / "wl.npz"))


def face_frame(rows):
    """rows: (track id, box, embedding) of face objects (the face backend as the main model)."""
    return Detections(np.array([r[1] for r in rows], np.float32).reshape(-1, 4), class_ids=[0] * len(rows),
                      track_ids=[r[0] for r in rows], class_names=FACE_NAMES,
                      data={"embedding": np.array([r[2] for r in rows], np.float32).reshape(-1, D),
                            "quality": np.full(len(rows), 0.8, np.float32)})


def run(rules, frames, names=FACE_NAMES):
    eng = RuleEngine(rules, "cam", frame_size=(640, 480), class_names=names)
    out = []
    for i, d in enumerate(frames):
        out += eng.update(None, d, i / FPS, i)
    return out, eng


def brief(evs):
    return [(e.rule, e.frame, e.track_id, e.extra["identity"]) for e in evs]


BOX1, BOX2 = [100.0, 100.0, 140.0, 150.0], [400.0, 100.0, 440.0, 150.0]


def test_face_match_after_min_frames_once_per_track(wl_path):
    frames = [face_frame([(1, BOX1, mix(0.7)), (2, BOX2, mix(0.1, 0.05))]) for _ in range(10)]
    rules = [{"type": "face_match", "name": "vip", "watchlist": wl_path},
             {"type": "unknown_face", "name": "stranger", "watchlist": wl_path}]
    evs, eng = run(rules, frames)
    assert brief(evs) == [("vip", 2, 1, "alice"), ("stranger", 4, 2, None)]
    m, u = evs
    assert m.type == "face_match" and m.class_name == "face" and m.bbox == BOX1
    assert m.extra == {"identity": "alice", "similarity": 0.7, "second": 0.0, "frames": 3, "face_box": BOX1,
                       "watchlist": "wl.npz"}
    assert u.extra["nearest"] == "alice" and u.extra["frames"] == 5
    assert u.extra["reason"] == "similarity 0.100 < threshold 0.363"
    assert not any(isinstance(v, list) and len(v) == D for e in evs for v in e.extra.values())  # no embedding
    assert eng.alarmed == {"vip": {1}, "stranger": {2}}


def test_margin_keeps_an_ambiguous_face_unknown(wl_path):
    frames = [face_frame([(1, BOX1, mix(0.6, 0.57))]) for _ in range(6)]
    rules = [{"type": "face_match", "name": "vip", "watchlist": wl_path},
             {"type": "unknown_face", "name": "stranger", "watchlist": wl_path}]
    evs, _ = run(rules, frames)
    assert brief(evs) == [("stranger", 4, 1, None)]
    assert evs[0].extra["reason"] == "margin 0.030 to bob < 0.05"
    evs, _ = run([{**rules[0], "margin": 0.02}], frames)
    assert brief(evs) == [("vip", 2, 1, "alice")]


def test_a_known_track_is_never_unknown_and_a_changed_identity_is_reported(wl_path):
    # track 1: alice for 3 frames, then bob: the mean of the 5 kept views (equal quality: the newest) turns to bob
    views = [mix(0.9)] * 3 + [mix(0.0, 0.95)] * 8
    frames = [face_frame([(1, BOX1, v)]) for v in views]
    rules = [{"type": "face_match", "name": "vip", "watchlist": wl_path},
             {"type": "unknown_face", "name": "stranger", "watchlist": wl_path}]
    evs, _ = run(rules, frames)
    assert [(e.frame, e.extra["identity"]) for e in evs if e.rule == "vip"] == [(2, "alice"), (5, "bob")]
    assert [e for e in evs if e.rule == "stranger"] == []  # the mixed views in between were ambiguous, not unknown


def test_identities_filter_and_zone(wl_path):
    frames = [face_frame([(1, BOX1, mix(0.7)), (2, BOX2, mix(0.0, 0.7))]) for _ in range(5)]
    evs, _ = run([{"type": "face_match", "name": "vip", "watchlist": wl_path, "identities": ["bob"]}], frames)
    assert brief(evs) == [("vip", 2, 2, "bob")]
    zone = [[300, 0], [640, 0], [640, 480], [300, 480]]  # right half: track 2 only
    evs, _ = run([{"type": "face_match", "name": "vip", "watchlist": wl_path, "zone": zone, "zone_name": "gate"}],
                 frames)
    assert brief(evs) == [("vip", 2, 2, "bob")] and evs[0].zone == "gate"
    with pytest.raises(WatchlistError, match=r"rule 'vip': identities \['carol'\] are not in .*wl\.npz"):
        RuleEngine([{"type": "face_match", "name": "vip", "watchlist": wl_path, "identities": ["carol"]}])


def test_faces_attached_to_persons(wl_path):
    """A person track with data["face.embedding"] (extra model 'face' attached to Normal); frames where no face
    is attached (NaN) neither count nor reset."""
    person = [50.0, 80.0, 200.0, 400.0]
    face = [100.0, 90.0, 140.0, 140.0]
    frames = []
    for i in range(8):
        has = i % 2 == 0
        frames.append(Detections(np.array([person], np.float32), class_ids=[0], track_ids=[5],
                                 class_names=PERSON_NAMES,
                                 data={"face": np.array(["face" if has else ""], dtype=object),
                                       "face.embedding": (mix(0.0, 0.8) if has else np.full(D, np.nan))[None],
                                       "face.xyxy": np.array([face if has else [np.nan] * 4], np.float32),
                                       "face.quality": np.array([0.7 if has else np.nan], np.float32)}))
    evs, _ = run([{"type": "face_match", "name": "vip", "watchlist": wl_path, "classes": ["Normal"]}], frames,
                 PERSON_NAMES)
    assert brief(evs) == [("vip", 4, 5, "bob")]  # the 3rd face view is frame 4
    assert evs[0].class_name == "Normal" and evs[0].bbox == person and evs[0].extra["face_box"] == face


def test_no_embeddings_warns_once(wl_path, caplog):
    frames = [Detections(np.array([BOX1], np.float32), class_ids=[0], track_ids=[1], class_names=FACE_NAMES)] * 4
    with caplog.at_level("WARNING"):
        evs, _ = run([{"type": "face_match", "name": "vip", "watchlist": wl_path, "attribute": "faces"}], frames)
    assert evs == []
    msgs = [r.getMessage() for r in caplog.records if "face embeddings" in r.getMessage()]
    assert msgs == [("rule 'vip': the detections carry no face embeddings (data['embedding'] or "
                    "data['faces.embedding']): use model face-yunet, or an extra model named 'faces' with path "
                    "face-yunet; nothing is matched")]


def test_schema_and_watchlist_errors(tmp_path):
    from pockit.config import PocConfig

    base = {"sources": [{"id": "cam", "uri": "x.mp4"}]}
    with pytest.raises(ValidationError, match=r"watchlist 'faces\.json': expected a \.npz file"):
        PocConfig.model_validate({**base, "rules": [{"type": "face_match", "name": "vip", "watchlist": "faces.json"}]})
    with pytest.raises(ValidationError, match="margin"):
        PocConfig.model_validate({**base, "rules": [{"type": "unknown_face", "name": "u", "watchlist": "w.npz",
                                                     "margin": -1}]})
    with pytest.raises(WatchlistError, match=r"rule 'vip': watch list .*nope\.npz does not exist"):
        RuleEngine([{"type": "face_match", "name": "vip", "watchlist": str(tmp_path / "nope.npz")}])


# -- privacy on a real run -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_privacy_run_directory_holds_no_face(shared_data, tmp_path):
    """face_match + unknown_face with privacy: true on the walking clip (face backend as the main model): events
    are raised, every snapshot has its faces pixelated (the face detector finds none), and nothing in the run
    directory holds an embedding or a face crop; reference/walk.jpg (frame 0, before any track is confirmed) is
    blurred too, because the pipeline calls pockit.faces.rules.blur_for_rules on the detector output."""
    import pockit
    from pockit.inference import load_detector
    from pockit.sources import open_source

    det = load_detector("face-yunet")
    with open_source(str(shared_data / "video" / "face-demographics-walking-and-pause.gif"),
                                    max_frames=21) as s:
        frame20 = list(s)[20].image
    d = det.detect([frame20])[0]
    order = np.argsort(d.xyxy[:, 0])
    wl = Watchlist(["left", "middle"], d.data["embedding"][order[:2]], np.array([0, 1]))
    wl.save(tmp_path / "wl.npz")
    cfg = {"name": "priv", "sources": [{"id": "walk", "max_frames": 12,
                                        "uri": str(shared_data / "video" / "face-demographics-walking-and-pause.gif")}],
           "model": {"path": "face-yunet"},
           "rules": [{"type": "face_match", "name": "vip", "watchlist": str(tmp_path / "wl.npz"), "privacy": True},
                     {"type": "unknown_face", "name": "stranger", "watchlist": str(tmp_path / "wl.npz"),
                      "privacy": True}],
           "outputs": {"dir": str(tmp_path / "runs"), "run_name": "r"}}
    pockit.run(cfg)
    run = tmp_path / "runs" / "r"
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert sorted((e["rule"], e["extra"]["identity"]) for e in events) == [
        ("stranger", None), ("vip", "left"), ("vip", "middle")]
    snaps = sorted((run / "snapshots").glob("*.jpg"))
    assert len(snaps) == 3
    for p in snaps:
        assert len(det.detect([cv2.imread(str(p))])[0]) == 0, p.name
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    images = [f for f in files if f.endswith((".jpg", ".png", ".mp4", ".webm"))]
    assert images == ["reference/walk.jpg"] + [f"snapshots/{p.name}" for p in snaps]
    # the pipeline pixelates faces on the detector output, before tracking: frame 0 (no confirmed track yet) too
    assert len(det.detect([cv2.imread(str(run / "reference" / "walk.jpg"))])[0]) == 0
    for f in files:  # no embedding in any text output: no run of 128 numbers
        if not f.endswith((".jpg", ".png", ".mp4")):
            text = (run / f).read_text(errors="replace")
            assert "embedding" not in text, f


def test_blur_for_rules_on_detector_output(shared_data, wl_path):
    """What the pipeline calls before tracking: every face of the detector's output of frame 0 pixelated for
    the rules with privacy: true, none without."""
    from pockit.faces.rules import blur_for_rules
    from pockit.inference import load_detector
    from pockit.rules.schema import SCHEMAS
    from pockit.sources import open_source

    det = load_detector("face-yunet")
    with open_source(str(shared_data / "video" / "face-demographics-walking-and-pause.gif"), max_frames=1) as s:
        img = next(iter(s)).image
    d = det.detect([img])[0]
    plain = SCHEMAS["face_match"](type="face_match", name="a", watchlist=wl_path)
    private = SCHEMAS["unknown_face"](type="unknown_face", name="b", watchlist=wl_path, privacy=True)
    assert blur_for_rules(img, d, [plain]) == 0
    assert blur_for_rules(img, d, [plain, private]) == 3
    assert len(det.detect([img])[0]) == 0
