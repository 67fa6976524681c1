"""The class-based demos (issue 14) end to end on the shared footage: demos/parking.yaml, ppe.yaml, phone_use.yaml,
left_luggage.yaml, climbing.yaml, each with the models they name (converted once per cache, see
tests/test_models_convert.py)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import pytest
import yaml

import pockit
from pockit import registry
from pockit.sources import open_source

DEMOS = Path(__file__).resolve().parents[1] / "demos"

@pytest.fixture(scope="module")
def coco_ssd() -> Path:
    return registry.fetch("coco-ssd-mobilenet-v2", progress=False)


@pytest.fixture(scope="module")
def hardhat() -> Path:
    pytest.importorskip("ultralytics")  # the one-time .pt -> ONNX conversion needs the [ml] extra
    return registry.fetch("hardhat-yolov12m", progress=False)


def _run(cfg: dict | str, run_dir: Path) -> tuple[list, dict]:
    s = pockit.run(cfg, run_dir=run_dir, progress=False, overwrite=True)
    return s.events(), json.loads((run_dir / "run.json").read_text())


def _demo(name: str) -> dict:
    return yaml.safe_load((DEMOS / name).read_text())


@pytest.mark.parametrize("name,frames,fps", [("worker-zone-detection.gif", 71, 16.67),
                                             ("face-demographics-walking-and-pause.gif", 41, 12.5),
                                             ("head-pose-face-detection-female-and-male.gif", 56, 12.5)])
def test_gifs_open_as_sources(shared_data, name, frames, fps):
    with open_source(str(shared_data / "video" / name)) as src:
        got = list(src)
    assert len(got) == frames and src.fps == pytest.approx(fps, abs=0.01)
    assert got[0].image.shape == (270, 480, 3) and got[0].timestamp == 0.0
    ts = [f.timestamp for f in got]  # the GIF's own frame delays (they vary), always increasing
    assert all(b > a for a, b in itertools.pairwise(ts))


def _first_frames(path: Path, n: int) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        assert ok, f"{path}: frame {len(frames)} unreadable"
        frames.append(f)
    return frames


def _write_clip(out: Path, frames, fps: float) -> str:
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (768, 432))
    for f in frames:
        w.write(f)
    w.release()
    return str(out)


def _lot_clip(shared_data: Path, out: Path, order) -> str:
    """car-detection.mp4 re-cut: ``order(frames)`` (its first 131 frames, 12.5 fps) written to ``out``."""
    return _write_clip(out, order(_first_frames(shared_data / "video" / "car-detection.mp4", 131)), 12.5)


@pytest.mark.slow
def test_parking_no_car_parks_on_the_real_clip(coco_ssd, tmp_path):
    """Cars drive through in 3-5 s and none stops: no alarm, though the passing cars are tracked."""
    events, run = _run(str(DEMOS / "parking.yaml"), tmp_path / "run")
    assert events == [] and run["events_per_rule"] == {"no_parking": 0}
    assert run["frames"] == 189 and run["tracks_per_source"]["lot"] >= 3
    assert run["model"]["backend"] == "ssd"


@pytest.mark.slow
def test_parking_car_held_still_raises_once(coco_ssd, shared_data, tmp_path):
    """The same clip with one car stopped: frame 85 (a car in mid-lot) repeated for 12 s, then the clip goes on."""
    clip = _lot_clip(shared_data, tmp_path / "parked.mp4", lambda f: f[:86] + [f[85]] * 150 + f[86:])
    cfg = _demo("parking.yaml")
    cfg["sources"][0]["uri"] = clip
    events, _ = _run(cfg, tmp_path / "run")
    assert len(events) == 1, [e.to_dict() for e in events]
    e = events[0]
    # the car enters the zone at 6.08 s and stands from 6.88 s (the first repeated frame analysed) to 18.8 s: the
    # alarm comes 10 s after it stopped (16.16 s, 10 s after it entered, with the stay alone: no max_motion)
    assert e.rule == "no_parking" and e.class_name in ("car", "cell phone") and e.extra["reason"] == "still"
    assert (e.time, e.extra["since"], e.duration) == (16.96, 6.88, 10.08)
    assert 250 < (e.bbox[0] + e.bbox[2]) / 2 < 450  # the held car, mid-lot


@pytest.mark.slow
def test_parking_car_crawling_through_does_not_raise(coco_ssd, shared_data, tmp_path):
    """The first car's passage slowed 6x (each of frames 70-99 shown 6 times: ~0.1 box heights/s, 14 s in the
    zone): the demo's rule (max_motion) stays silent; the same rule without max_motion (stay alone) raises."""
    clip = _lot_clip(shared_data, tmp_path / "crawl.mp4",
                     lambda f: f[:70] + [x for x in f[70:100] for _ in range(6)] + f[100:])
    cfg = _demo("parking.yaml")
    cfg["sources"][0]["uri"] = clip
    stay_only = {k: v for k, v in cfg["rules"][0].items() if k != "max_motion"}
    cfg["rules"].append({**stay_only, "name": "stay_only"})
    events, run = _run(cfg, tmp_path / "run")
    assert run["events_per_rule"] == {"no_parking": 0, "stay_only": 1}
    e = events[0]
    assert (e.rule, e.time, e.extra["since"], e.extra["reason"]) == ("stay_only", 16.32, 6.24, "dwell")


@pytest.mark.slow
@pytest.mark.ml
def test_ppe_bare_heads_alarm_hard_hat_does_not(hardhat, tmp_path):
    events, run = _run(str(DEMOS / "ppe.yaml"), tmp_path / "run")
    by_source = {s: [e for e in events if e.source == s] for s in ("site", "bare")}
    assert by_source["site"] == []  # the worker in a hard hat (see the limit in demos/ppe.yaml)
    bare = by_source["bare"]
    assert len(bare) == 3 and len({e.track_id for e in bare}) == 3  # the three people without helmets
    for e in bare:
        assert e.rule == "no_helmet" and e.extra["attribute"] == "ppe" and set(e.extra["values"]) == {"Without Helmet"}
        assert e.time <= 2.0 and len(e.extra["head_box"]) == 4
    assert run["model"]["extra_models"]["ppe"]["class_names"] == {"0": "With Helmet", "1": "Without Helmet"}


@pytest.mark.slow
def test_phone_use_no_phone_no_alarm(coco_ssd, tmp_path):
    """Close-up people with no phone: no alarm; the COCO model ran on every frame beside the person model."""
    events, run = _run(str(DEMOS / "phone_use.yaml"), tmp_path / "run")
    assert events == [] and run["events_per_rule"] == {"phone_use": 0}
    assert run["sources"]["walkers"]["frames"] == 41 and run["sources"]["heads"]["frames"] == 56
    assert run["tracks_per_source"]["walkers"] >= 3 and run["tracks_per_source"]["heads"] >= 2
    phone = run["model"]["extra_models"]["phone"]
    assert phone["backend"] == "ssd" and phone["classes"] == [77]


@pytest.mark.slow
def test_left_luggage_by_class(coco_ssd, tmp_path):
    events, run = _run(str(DEMOS / "left_luggage.yaml"), tmp_path / "run")
    assert len(events) == 1, [e.to_dict() for e in events]
    e = events[0]
    # the bag rests at 13.0 s and the owner is out of view at 23.2 s (video/ABODA_video4.events.json): the alarm
    # comes no sooner than rest + unattended (5 s) and within 7 s of the owner leaving the view (measured 26-30 s
    # with the FP32/bf16 person model, 24.4 s with the INT8 one, whose owner box leaves the bag earlier)
    assert e.rule == "left_bag" and 13.0 + 5.0 <= e.time <= 30.0
    cx, cy = (e.bbox[0] + e.bbox[2]) / 2, (e.bbox[1] + e.bbox[3]) / 2
    assert 220 < cx < 260 and 180 < cy < 215  # the bag on the pavement (360x240 frames)
    # measured limit: the SSD never sees the bag once it stands alone, so no class confirms the blob
    assert e.extra.get("detector_class") is None
    assert run["model"]["extra_models"]["bags"]["classes"] == [27, 31, 33]


def _climb_clip(shared_data: Path, out: Path, feet) -> str:
    """one-by-one-person-detection.mp4's empty frame 0 with the man of frame 300 (his detected box, scaled 0.45)
    pasted so that his feet stand at each (x, y) of ``feet``, one frame each, 10 fps."""
    frames = _first_frames(shared_data / "video" / "one-by-one-person-detection.mp4", 301)
    bg, man = frames[0], cv2.resize(frames[300][0:395, 378:558], None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
    ph, pw = man.shape[:2]
    out_frames = []
    for x, y in feet:
        f = bg.copy()
        x0, y0 = int(x - pw / 2), int(y - ph)
        f[y0:y0 + ph, x0:x0 + pw] = man
        out_frames.append(f)
    return _write_clip(out, out_frames, 10.0)


@pytest.mark.slow
def test_climbing_nobody_climbs_on_the_real_clip(tmp_path):
    """People walk through the office (every frame at 5 fps): tracked, and nobody's feet rise onto the wall."""
    cfg = _demo("climbing.yaml")
    cfg["sources"][0]["fps"] = 5
    events, run = _run(cfg, tmp_path / "run")
    assert events == [] and run["events_per_rule"] == {"wall": 0}
    assert run["frames"] == 697 and run["tracks_per_source"]["office"] >= 3


@pytest.mark.slow
def test_climbing_a_person_rising_onto_the_wall_raises_once(shared_data, tmp_path):
    """The man stands on the floor 2 s (feet y 400), rises onto the wall in 1.5 s (feet y 190, above the line at
    y 238) and stays there 3.5 s: one alarm, when he has been above the line for the rule's 1 s; the same man
    walking along the floor for 7 s: none."""
    up = [(250, 400)] * 20 + [(250, 400 - 210 * k / 15) for k in range(1, 16)] + [(250, 190)] * 35
    walk = [(150 + 300 * k / 69, 400) for k in range(70)]
    cfg = _demo("climbing.yaml")
    cfg["sources"] = [{"id": "climb", "uri": _climb_clip(shared_data, tmp_path / "climb.mp4", up)},
                      {"id": "walk", "uri": _climb_clip(shared_data, tmp_path / "walk.mp4", walk)}]
    events, run = _run(cfg, tmp_path / "run")
    assert [(e.source, e.rule, e.extra["reason"]) for e in events] == [("climb", "wall", "held")], \
        [e.to_dict() for e in events]
    e = events[0]
    # above the band (feet < 238 - 0.1 x 178 px) from frame ~32 (3.2 s): the alarm 1 s later
    assert 3.8 <= e.time <= 4.5 and (e.bbox[3]) < 238
    assert run["tracks_per_source"] == {"climb": 1, "walk": 1}


@pytest.mark.slow
def test_face_watchlist_demo_as_documented(tmp_path):
    """demos/face_watchlist.yaml with the watch list its header says to make (three people of the walking clip,
    each from its frame 20; the head-pose man left out): on the head-pose clip the woman is matched, the man
    (a stranger, in the desk zone) is raised as unknown_face."""
    from pockit.faces.bench import main as faces_bench

    wl = tmp_path / "face_watchlist.npz"
    rep = faces_bench(["--enrol-frame", "20", "--write-watchlist", str(wl), "--leave-out", "blue_shirt_man"])
    assert "blue_shirt_man" not in rep["watchlist_written"]["identities"]
    assert "dark_hair_woman" in rep["watchlist_written"]["identities"]
    cfg = _demo("face_watchlist.yaml")
    for r in cfg["rules"]:
        r["watchlist"] = str(wl)
    events, run = _run(cfg, tmp_path / "run")
    got = sorted((e.rule, e.extra.get("identity")) for e in events)
    assert got == [("stranger", None), ("watchlist", "dark_hair_woman")], [e.to_dict() for e in events]
    match = next(e for e in events if e.rule == "watchlist")
    stranger = next(e for e in events if e.rule == "stranger")
    assert (match.bbox[0] + match.bbox[2]) / 2 < (stranger.bbox[0] + stranger.bbox[2]) / 2  # woman left, man right
    assert run["events_per_rule"] == {"watchlist": 1, "stranger": 1}
