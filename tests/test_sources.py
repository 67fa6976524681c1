"""pockit.sources: video files, image / MOT folders, options, errors, probe, GStreamer builders."""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pockit.config import SourceConfig
from pockit.sources import (
    FpsSampler,
    SourceError,
    detect_kind,
    gstreamer_available,
    jetson_csi_pipeline,
    jetson_rtsp_pipeline,
    open_source,
    open_source_config,
    probe,
    usb_pipeline,
)

W, H, N, FPS = 96, 64, 30, 25


def frame_img(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A flat frame whose grey level encodes i (survives lossy codecs)."""
    return np.full((h, w, 3), 8 * i, np.uint8)


def level(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 8))


def write_video(path: Path, fourcc: str, n: int = N, fps: float = FPS) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert w.isOpened()
    for i in range(n):
        w.write(frame_img(i))
    w.release()
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", "mp4v")


@pytest.fixture(scope="module")
def avi_corrupt(tmp_path_factory) -> Path:
    """MJPG avi whose frame 15 has its JPEG header destroyed."""
    p = write_video(tmp_path_factory.mktemp("vid") / "broken.avi", "MJPG")
    data = bytearray(p.read_bytes())
    soi = [i for i in range(len(data) - 2) if data[i] == 0xFF and data[i + 1] == 0xD8 and data[i + 2] == 0xFF]
    assert len(soi) == N
    data[soi[15]:soi[15] + 200] = bytes(200)
    p.write_bytes(bytes(data))
    return p


@pytest.fixture()
def folder(tmp_path) -> Path:
    """img1.png ... img12.png (natural order differs from lexical), img6.jpg corrupt."""
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(1, 13):
        if i == 6:
            (d / "img6.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
        else:
            cv2.imwrite(str(d / f"img{i}.png"), frame_img(i))
    (d / "notes.txt").write_text("ignored")
    (d / ".hidden.png").write_bytes(b"")
    return d


# -- video files ---------------------------------------------------------------------------
def test_video_file_all_frames(mp4):
    with open_source(mp4) as src:
        assert (src.kind, src.fps, src.total, src.size, src.source_id) == ("video", 25.0, 30, (W, H), "clip")
        frames = list(src)
    assert [f.index for f in frames] == list(range(N))
    assert [level(f.image) for f in frames] == list(range(N))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(N)], abs=1e-6)
    assert all(f.image.dtype == np.uint8 and f.image.shape == (H, W, 3) and f.source_id == "clip" for f in frames)
    assert src.stats == {"read": 30, "yielded": 30, "skipped": 0, "corrupt": 0, "dropped": 0, "reconnects": 0}


def test_video_fps_subsampling_by_timestamp(mp4):
    src = open_source(mp4, fps=10)
    frames = list(src)
    want = [math.ceil(k * 2.5) for k in range(12)]  # 0,3,5,8,10,13,...: evenly 2.5 frames apart
    assert [f.index for f in frames] == want == [0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28]
    assert src.total == 12
    assert (src.stats["read"], src.stats["yielded"], src.stats["skipped"]) == (30, 12, 18)


def test_video_start_seek_and_max_frames(mp4):
    src = open_source(mp4, start=0.4, max_frames=5)
    assert src.total == 5
    frames = list(src)
    assert [f.index for f in frames] == [10, 11, 12, 13, 14]
    assert [level(f.image) for f in frames] == [10, 11, 12, 13, 14]  # the seek landed on the right frame
    assert frames[0].timestamp == pytest.approx(0.4, abs=1e-6)
    assert src.stats["read"] == 5


def test_video_start_and_fps_total(mp4):
    src = open_source(mp4, start=0.5, fps=5)
    frames = list(src)
    # from frame 13 (first at/after 0.5 s) every 0.2 s
    assert [f.index for f in frames] == [13, 18, 23, 28]
    assert src.total == 4


def test_video_loop_continues_index_and_time(mp4):
    src = open_source(mp4, loop=True, max_frames=65)
    assert src.total == 65
    frames = list(src)
    assert [f.index for f in frames] == list(range(65))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(65)], abs=1e-6)
    assert [f.meta["loop"] for f in frames[28:33]] == [0, 0, 1, 1, 1]
    assert [f.meta["file_index"] for f in frames[28:33]] == [28, 29, 0, 1, 2]
    assert level(frames[31].image) == 1


class _Rewindable:
    """An OpenCV capture that can start over (as NVDEC's does with reconfigure_decoder); counts the opens."""

    opens = 0

    def __init__(self, uri, how="ok"):
        self.cap, self.how, self.rewinds, self.released = cv2.VideoCapture(str(uri)), how, 0, False
        type(self).opens += 1

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.cap.isOpened()

    def read(self, image=None):
        return self.cap.read()

    def grab(self):
        return self.cap.grab()

    def get(self, prop):
        return self.cap.get(prop)

    def set(self, prop, value):
        return self.cap.set(prop, value)

    def release(self):
        self.released = True
        self.cap.release()

    def rewind(self):
        self.rewinds += 1
        if self.how == "raise":
            raise RuntimeError("decoder gone")
        if self.how == "empty":  # says it started over, then gives nothing
            return True
        return self.how == "ok" and self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)


@pytest.mark.parametrize("how, opens", [("ok", 1), ("no", 3), ("raise", 3), ("empty", 3)])
def test_video_loop_rewinds_the_capture_instead_of_opening_it_again(mp4, how, opens):
    """A looped file whose capture can start over (NVDEC) plays every pass on it: one open, not one a pass;
    frames, indices and timestamps as with a new capture a pass. A capture that cannot (or fails to) is
    released and the file opened again; so is one that says it started over and then gives no frame."""
    made = []

    def factory(uri):
        made.append(_Rewindable(uri, how))
        return made[-1]

    src = open_source(mp4, loop=True, max_frames=65, capture_factory=factory)
    n0 = len(made)  # the probe at open
    frames = list(src)
    assert [f.index for f in frames] == list(range(65))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(65)], abs=1e-6)
    assert [f.meta["file_index"] for f in frames[28:33]] == [28, 29, 0, 1, 2]
    assert [level(f.image) for f in frames[58:65]] == [28, 29, 0, 1, 2, 3, 4]
    assert len(made) - n0 == opens
    assert all(c.released for c in made)
    assert sum(c.rewinds for c in made) == 2  # asked at the end of the first two passes
    assert "ended_early" not in src.stats or not src.stats["ended_early"]  # an empty rewound pass is not an end


def test_video_resize(mp4):
    src = open_source(mp4, resize=(48, 32), max_frames=2)
    assert src.size == (48, 32) and src.native_size == (W, H)
    frames = list(src)
    assert [f.image.shape for f in frames] == [(32, 48, 3)] * 2 and frames[0].size == (48, 32)


def test_video_corrupt_frame_skipped_not_eof(avi_corrupt, caplog):
    caplog.set_level(logging.WARNING, "pockit.sources")
    src = open_source(avi_corrupt)
    frames = list(src)
    assert [f.index for f in frames] == [i for i in range(N) if i != 15]
    assert [level(f.image) for f in frames] == [i for i in range(N) if i != 15]
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(N) if i != 15], abs=1e-6)
    assert (src.stats["corrupt"], src.stats["read"], src.stats["yielded"]) == (1, 29, 29)
    assert any("could not be decoded (index 15)" in r.getMessage() for r in caplog.records)


def test_video_timestamps_index_mode_and_native_fps(mp4):
    frames = list(open_source(mp4, native_fps=10, timestamps="index", max_frames=3))
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_real_video_aboda_timestamps(shared_data):
    """ABODA's AVI reports POS_MSEC shifted by one frame and 0 on the last frame: timestamps stay i/fps."""
    p = shared_data / "video" / "ABODA_video4.avi"
    src = open_source(p, start=38.5)
    frames = list(src)
    first = math.ceil(38.5 * 29.97 - 1e-6)
    assert [f.index for f in frames] == list(range(first, 1169))
    assert [f.timestamp for f in frames] == pytest.approx([i / 29.97 for i in range(first, 1169)], abs=1e-3)
    assert src.total == len(frames) == 1169 - first


# -- folders -------------------------------------------------------------------------------
def test_folder_natural_order_and_corrupt_image(folder, caplog):
    caplog.set_level(logging.WARNING, "pockit.sources")
    src = open_source(folder)
    assert (src.kind, src.fps, src.total, src.size, src.source_id) == ("images", 25.0, 12, (W, H), "frames")
    frames = list(src)
    # position 5 (img6.jpg) is unreadable: skipped, the others keep their position as index
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert [level(f.image) for f in frames] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    assert [Path(f.meta["path"]).name for f in frames][-3:] == ["img10.png", "img11.png", "img12.png"]
    assert [f.timestamp for f in frames] == [i / 25 for i in [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]]
    assert (src.stats["corrupt"], src.stats["read"], src.stats["yielded"]) == (1, 11, 11)
    assert any("img6.jpg" in r.getMessage() for r in caplog.records)


def test_folder_native_fps_start_glob(folder):
    frames = list(open_source(folder, native_fps=5, start=1.0))
    assert [f.index for f in frames] == [5, 6, 7, 8, 9, 10, 11][1:]  # 5 is the corrupt one
    assert frames[0].timestamp == pytest.approx(6 / 5)
    frames = list(open_source(str(folder / "img1*.png")))
    assert [Path(f.meta["path"]).name for f in frames] == ["img1.png", "img10.png", "img11.png", "img12.png"]


def test_folder_loop(folder):
    frames = list(open_source(folder, loop=True, max_frames=14))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert frames[-1].meta == {"path": str(folder / "img3.png"), "loop": 1, "file_index": 2}


def test_tud_campus(tud_campus):
    src = open_source(tud_campus)
    assert (src.kind, src.fps, src.total, src.size, src.source_id) == ("mot", 25.0, 71, (640, 480), "TUD-Campus")
    frames = list(src)
    assert [f.index for f in frames] == list(range(71))
    assert [f.timestamp for f in frames] == [i / 25 for i in range(71)]
    assert frames[0].image.shape == (480, 640, 3)
    assert Path(frames[10].meta["path"]).name == "000011.jpg"  # index = image number - 1
    assert src.stats["read"] == 71 and src.stats["corrupt"] == 0


def test_tud_campus_fps_start_max(tud_campus):
    src = open_source(tud_campus, fps=10)
    assert [f.index for f in src] == [math.ceil(k * 2.5) for k in range(29)] and src.total == 29
    src = open_source(tud_campus / "img1", start=2.0, max_frames=4, fps=12.5)
    assert [f.index for f in src] == [50, 52, 54, 56] and src.total == 4


def test_pets_7fps(pets):
    src = open_source(pets, fps=3.5)
    assert src.fps == 7.0
    assert [f.index for f in src] == list(range(0, 107, 2)) and src.total == 54


def test_pets_img1_folder_pattern_and_file_take_fps_from_seqinfo(pets):
    """img1/ of a MOT sequence (or a pattern or a file in it) is 7 fps from ../seqinfo.ini, not the default 25:
    timestamps (dwell, loitering) would otherwise run 3.6x too fast."""
    src = open_source(pets / "img1", fps=3.5)
    assert (src.fps, src.kind, src.native_size, src.total) == (7.0, "mot", (768, 576), 54)
    assert [round(f.timestamp, 6) for f in src][:3] == [0.0, round(2 / 7, 6), round(4 / 7, 6)]
    assert open_source(str(pets / "img1" / "*.jpg")).fps == 7.0
    one = list(open_source(pets / "img1" / "000015.jpg"))
    assert [(f.index, round(f.timestamp, 6)) for f in one] == [(14, 2.0)]


def test_mot_missing_image_keeps_numbering(tmp_path, tud_campus):
    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    for n in (1, 2, 4, 5):
        shutil.copy(tud_campus / "img1" / f"{n:06d}.jpg", seq / "img1" / f"{n:06d}.jpg")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nimDir=img1\nframeRate=10\nseqLength=5\n"
                                     "imWidth=640\nimHeight=480\nimExt=.jpg\n")
    src = open_source(seq)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3, 4]
    assert [f.timestamp for f in frames] == [0.0, 0.1, 0.3, 0.4]


# -- errors --------------------------------------------------------------------------------
def test_missing_and_empty(tmp_path):
    with pytest.raises(SourceError, match=r"video file not found: .*nope\.mp4"):
        open_source(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match=r"source not found: .*nodir: no such file or folder"):
        open_source(tmp_path / "nodir")
    with pytest.raises(SourceError, match=r"image folder not found: .*nodir"):
        open_source(str(tmp_path / "nodir") + "/")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no images .* in folder .*empty"):
        open_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="no image matches"):
        open_source(str(tmp_path / "empty" / "*.jpg"))


def test_unreadable_video(tmp_path):
    bad = tmp_path / "fake.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match=r"fake\.mp4: OpenCV/FFmpeg cannot open this video"):
        open_source(bad)


def test_all_images_corrupt_raises_at_end(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.jpg").write_bytes(b"garbage")
    src = open_source(d)
    got = []
    with pytest.raises(SourceError, match=r"produced no frames \(read 0, corrupt 3"):
        for f in src:
            got.append(f)
    assert got == []


def test_bad_options(mp4, folder):
    with pytest.raises(SourceError, match=r"start=5.0 s is past the end of the video \(30 frames, 1.20 s\)"):
        open_source(mp4, start=5)
    with pytest.raises(SourceError, match="past the last image"):
        open_source(folder, start=100)
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['qeue_size'\] for a video source"):
        open_source(mp4, qeue_size=3)
    with pytest.raises(SourceError, match="target fps must be > 0"):
        open_source(mp4, fps=0)
    with pytest.raises(SourceError, match=r"resize must be \(width, height\)"):
        open_source(mp4, resize=640)
    with pytest.raises(SourceError, match="unknown URL scheme 'ftp'"):
        open_source("ftp://host/x.mp4")


def test_closed_source_rejects_iteration(mp4):
    src = open_source(mp4)
    src.close()
    with pytest.raises(SourceError, match="closed"):
        iter(src)


# -- probe, config, kinds ------------------------------------------------------------------
def test_probe(mp4, tud_campus, folder):
    p = probe(mp4)
    assert {k: p[k] for k in ("kind", "live", "fps", "width", "height", "frames", "codec")} == \
        {"kind": "video", "live": False, "fps": 25.0, "width": W, "height": H, "frames": 30, "codec": "FMP4"}
    assert p["duration"] == pytest.approx(1.2)
    p = probe(tud_campus)
    assert (p["kind"], p["fps"], p["size"], p["frames"], p["duration"], p["id"]) == \
        ("mot", 25.0, (640, 480), 71, pytest.approx(2.84), "TUD-Campus")
    p = probe(folder)
    assert (p["kind"], p["frames"], p["size"]) == ("images", 12, (W, H))


def test_open_source_config(mp4):
    cfg = SourceConfig(id="cam_a", uri=mp4.name, fps=5, max_frames=3, options={"timestamps": "index"})
    src = open_source_config(cfg, base_dir=mp4.parent)
    frames = list(src)
    assert [(f.index, f.source_id) for f in frames] == [(0, "cam_a"), (5, "cam_a"), (10, "cam_a")]
    with pytest.raises(SourceError, match=r"source 'x': .*unknown option\(s\) \['bogus'\]"):
        open_source_config(SourceConfig(id="x", uri=str(mp4), options={"bogus": 1}))


@pytest.mark.parametrize("uri,kind", [
    (0, "camera"), ("2", "camera"), ("/dev/video1", "camera"), ("rtsp://u:p@10.0.0.5/stream1", "stream"),
    ("http://cam.local/video.mjpg", "stream"), ("https://example.com/a/clip.mp4", "video"),
    ("videotestsrc ! appsink", "gstreamer"), ("gst:v4l2src ! appsink", "gstreamer"), ("csi://0", "gstreamer"),
    ("some/clip.avi", "video"), ("frames/*.jpg", "images"), ("x.png", "images"),
])
def test_detect_kind(uri, kind):
    assert detect_kind(uri) == kind


def test_fps_sampler_gap_keeps_phase():
    s = FpsSampler(10)
    ts = [0.0, 0.04, 0.1, 0.14, 0.55, 0.6, 0.65, 0.7]
    assert [t for t in ts if s.keep(t)] == [0.0, 0.1, 0.55, 0.6, 0.7]


# -- GStreamer -----------------------------------------------------------------------------
def test_pipeline_builders():
    csi = jetson_csi_pipeline(1, 1280, 720, 60, flip=2)
    assert csi.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=(int)1280, height=(int)720")
    assert "framerate=(fraction)60/1" in csi and "nvvidconv flip-method=2" in csi
    assert csi.endswith("appsink drop=true max-buffers=1 sync=false")
    r = jetson_rtsp_pipeline("rtsp://10.0.0.5/s1", latency=100, codec="h265")
    assert r == ('rtspsrc location="rtsp://10.0.0.5/s1" latency=100 protocols=tcp ! rtph265depay ! h265parse ! '
                 "nvv4l2decoder ! nvvidconv ! video/x-raw, format=(string)BGRx ! videoconvert ! "
                 "video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1 sync=false")
    assert "rtph264depay ! h264parse ! nvv4l2decoder" in jetson_rtsp_pipeline("rtsp://h/s")
    u = usb_pipeline(1, 640, 480, 15)
    assert u.startswith("v4l2src device=/dev/video1 ! image/jpeg, width=(int)640, height=(int)480, "
                        "framerate=(fraction)15/1 ! jpegdec")
    assert "nvv4l2decoder mjpeg=1" in usb_pipeline(jetson=True)
    assert "format=(string)YUY2" in usb_pipeline(fmt="raw")
    with pytest.raises(ValueError, match="codec"):
        jetson_rtsp_pipeline("rtsp://h/s", codec="vp9")


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_gstreamer_missing_is_a_clear_error():
    assert "GStreamer:                   NO" in cv2.getBuildInformation() or not gstreamer_available()
    with pytest.raises(SourceError, match="built without GStreamer"):
        open_source("videotestsrc num-buffers=5 ! videoconvert ! appsink")
    with pytest.raises(SourceError, match="built without GStreamer"):
        open_source("csi://0")


def test_second_pass_restarts_with_fresh_counters(folder):
    src = open_source(folder, max_frames=3)
    assert [f.index for f in src] == [0, 1, 2]
    assert [f.index for f in src] == [0, 1, 2]
    assert src.stats["read"] == 3 and src.stats["yielded"] == 3


def test_probe_cli(tud_campus, tmp_path):
    import json

    from click.testing import CliRunner

    from pockit.cli import cli

    out = tmp_path / "first.jpg"
    r = CliRunner().invoke(cli, ["probe", str(tud_campus), "-n", "5", "--save", str(out), "--json",
                                 "-o", "native_fps=10"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["kind"], info["fps"], info["frames"], info["read_frames"], info["stats"]["read"]) == \
        ("mot", 10.0, 71, 5, 5)
    assert cv2.imread(str(out)).shape == (480, 640, 3)
    r = CliRunner().invoke(cli, ["probe", str(tmp_path / "missing.mp4")])
    assert r.exit_code == 1 and "video file not found" in r.output


def test_probe_cli_data_and_media_uris(shared_data, monkeypatch):
    """The uris a PoC config accepts (data:REL, media:NAME) also work in `pockit probe`."""
    import json

    from click.testing import CliRunner

    from pockit.cli import cli

    monkeypatch.setenv("POCKIT_DATA_DIR", str(shared_data))
    r = CliRunner().invoke(cli, ["probe", "data:mot/PETS09-S3-MF1", "--json"])
    assert r.exit_code == 0, r.output
    assert (json.loads(r.output)["fps"], json.loads(r.output)["frames"]) == (7.0, 107)
    r = CliRunner().invoke(cli, ["probe", "media:car-detection", "--json"])
    assert r.exit_code == 0, r.output
    assert (json.loads(r.output)["frames"], json.loads(r.output)["fps"]) == (377, 12.5)
    r = CliRunner().invoke(cli, ["probe", "data:nope/x.mp4"])
    assert r.exit_code == 1 and "not found under the data directory" in r.output


def test_truncated_mp4_is_reported_as_ended_early(tmp_path, shared_data, caplog):
    # the first 300 KB of a 139 s recording: the container still announces 1394 frames, 120 decode
    src_file = shared_data / "video" / "one-by-one-person-detection.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src_file.read_bytes()[:300_000])
    with caplog.at_level(logging.WARNING, logger="pockit.sources"):
        with open_source(cut) as src:
            n = sum(1 for _ in src)
            stats = dict(src.stats)
    assert src.frame_count == 1394 and n == stats["read"] == 120
    assert stats["ended_early"] == {"decoded": 120, "expected": 1394, "ended_at_s": 12.1, "expected_s": 139.4}
    assert (f"{cut}: the video ended early, at 12.1 s of the 139.4 s (1394 frames) its container announces "
            "(120 frames decoded)") in caplog.text
    # the complete file is not flagged
    with open_source(src_file, max_frames=5) as full:
        assert sum(1 for _ in full) == 5 and "ended_early" not in full.stats


def test_a_few_missing_last_frames_are_not_ended_early(tmp_path, mp4):
    # containers often announce a frame or two more than they hold: not a truncation
    with open_source(mp4) as src:
        src.frame_count += 2
        assert sum(1 for _ in src) == src.frame_count - 2
        assert "ended_early" not in src.stats


def test_nvdec_auto_policy_large_frames_only_and_cpu_fallback(tmp_path, monkeypatch, caplog):
    """decoder auto: NVDEC is tried only when nvdec_min_pixels is set (the pipeline sets it for a CUDA model), the
    frames are that large and the codec is H.264 / HEVC; NVDEC that is unavailable or cannot open the file leaves
    the CPU decoding it."""
    import cv2

    av = pytest.importorskip("av")
    from pockit.sources import nvdec as nv
    from pockit.sources.files import VideoFileSource

    path, mjpg = tmp_path / "big.mp4", tmp_path / "big.avi"
    with av.open(str(path), "w") as out:  # H.264
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            out.mux(st.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="bgr24")))
        out.mux(st.encode())
    w = cv2.VideoWriter(str(mjpg), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(5):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    assert VideoFileSource(str(path))._probe_container() == (64 * 48, "h264")
    assert VideoFileSource(str(mjpg))._probe_container() == (64 * 48, "mjpg")
    # no threshold (a CPU model) or frames smaller than it: the CPU, NVDEC never asked
    monkeypatch.setattr(nv, "nvdec_available", lambda: (_ for _ in ()).throw(AssertionError("asked")))
    assert VideoFileSource(str(path)).decoder == "cpu"
    assert VideoFileSource(str(path), nvdec_min_pixels=64 * 48 + 1).decoder == "cpu"
    assert VideoFileSource(str(mjpg), nvdec_min_pixels=1).decoder == "cpu"  # a codec NVDEC was not measured on
    # large enough but NVDEC unavailable: the CPU, silently (auto)
    monkeypatch.setattr(nv, "nvdec_available", lambda: (False, "no CUDA device"))
    assert VideoFileSource(str(path), nvdec_min_pixels=64 * 48).decoder == "cpu"
    with pytest.raises(SourceError, match="decoder nvdec requested but unavailable: no CUDA device"):
        VideoFileSource(str(path), decoder="nvdec")
    # available but it cannot open this file: a warning, and OpenCV decodes every frame

    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("codec not supported by NVDEC")

    monkeypatch.setattr(nv, "nvdec_available", lambda: (True, ""))
    monkeypatch.setattr(nv, "NvdecCapture", Broken)
    with caplog.at_level("WARNING", logger="pockit.sources"):
        src = VideoFileSource(str(path), nvdec_min_pixels=64 * 48)
        frames = list(src)
    assert src.decoder == "cpu" and len(frames) == 5 and "NVDEC cannot decode it" in caplog.text
    with pytest.raises(SourceError, match="nvdec_convert must be 'cpu', 'gpu' or 'model'"):
        VideoFileSource(str(path), nvdec_convert="cuda")


def test_nvdec_stream_makes_one_decoder_when_decoding_starts(tmp_path, fake_nvdec):
    """The container is probed with OpenCV; the NVDEC decoder is created once, by the first read, never created
    and ended at once in the constructor (that crashed PyNvVideoCodec's ThreadedDecoder.end on the H200)."""
    import cv2

    from pockit.sources.files import VideoFileSource

    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(5):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    made = fake_nvdec
    src = VideoFileSource(str(path), decoder="nvdec")
    assert src.decoder == "nvdec" and made == [] and src.native_size == (64, 48)
    frames = list(src)
    assert len(frames) == 5 and made == [str(path)]
    assert [round(f.timestamp, 3) for f in frames] == [0.0, 0.04, 0.08, 0.12, 0.16]


def test_pipeline_asks_for_nvdec_only_with_a_cuda_model(tmp_path, monkeypatch):
    """The runner sets nvdec_min_pixels on video files only when the model is on CUDA."""
    from pockit.pipeline import runner as rn

    import cv2

    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(3):
        w.write(np.full((48, 64, 3), 50, np.uint8))
    w.release()
    cfg = {"name": "t", "sources": [{"id": "a", "uri": str(path)}], "model": {"path": "person-yolov8s"}}
    r = rn.Pipeline(cfg, run_dir=tmp_path / "r")
    cpu = r._open_sources(on_cuda=False)
    assert "nvdec_min_pixels" not in cpu[0].open_kwargs and cpu[0].source.decoder == "cpu"
    gpu = r._open_sources(on_cuda=True)
    assert gpu[0].open_kwargs["nvdec_min_pixels"] == rn.NVDEC_AUTO_MIN_PIXELS and gpu[0].source.decoder == "cpu"
    for st in cpu + gpu:
        st.source.close()


def test_nvdec_rewind_restarts_the_same_decoder(monkeypatch):
    """NvdecCapture.rewind (no GPU here: the decoder is a stand-in): the ThreadedDecoder is reconfigured on the same
    file from frame 0 and the capture's position and buffers start over; without reconfigure_decoder, after
    release, or with POCKIT_NVDEC_REWIND=0 it says no (the file source then opens the file again)."""
    from pockit.sources.nvdec import NvdecCapture

    class Dec:
        def __init__(self):
            self.calls = []

        def reconfigure_decoder(self, path, start):
            self.calls.append((path, start))

    cap = object.__new__(NvdecCapture)
    cap.path, cap._dec, cap._open = "/v/cam.mp4", Dec(), True
    cap._gpu, cap._raw, cap._next, cap._pos, cap._eof = object(), [object()], 5, 800, True
    assert cap.rewind() is True
    assert cap._dec.calls == [("/v/cam.mp4", 0)]
    assert (cap._gpu, cap._raw, cap._next, cap._pos, cap._eof) == (None, [], 0, 0, False)
    monkeypatch.setenv("POCKIT_NVDEC_REWIND", "0")
    assert cap.rewind() is False and len(cap._dec.calls) == 1
    monkeypatch.delenv("POCKIT_NVDEC_REWIND")
    cap._dec = object()  # an older PyNvVideoCodec without the method
    assert cap.rewind() is False
    cap._dec, cap._open = Dec(), False  # released
    assert cap.rewind() is False and cap._dec.calls == []
