"""pipeline.cuda_mps: when a run wants CUDA MPS, and the private daemon's life (a fake nvidia-cuda-mps-control;
the real one ran on the lent H200, benchmarks/README.md twelfth session)."""
import os
import stat

import pytest

from pockit.config import parse_config
from pockit.pipeline import mps


def cfg(n=1, device="cuda:0", decoder="nvdec", **pipeline):
    return parse_config({"sources": [{"id": f"c{i}", "uri": "a.mp4", "options": {"decoder": decoder}}
                                     for i in range(n)],
                         "model": {"path": "m.pt", "device": device}, "pipeline": pipeline}, "<test>")


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.setattr(mps, "_state", {"status": None, "daemon": None})
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    monkeypatch.delenv("CUDA_MPS_LOG_DIRECTORY", raising=False)
    monkeypatch.setattr(mps, "DEFAULT_PIPE_DIR", str(tmp_path / "no-default-daemon"))
    monkeypatch.setattr(mps, "is_jetson", lambda: False)
    monkeypatch.setattr(mps, "cuda_initialized", lambda: False)
    registered = []
    monkeypatch.setattr(mps.atexit, "register", registered.append)
    return registered


@pytest.fixture
def fake_control(tmp_path, monkeypatch):
    """A stand-in for nvidia-cuda-mps-control: -d makes the pipe directory's control file; otherwise it logs the
    command read on stdin (quit)."""
    log = tmp_path / "control-calls.txt"
    b = tmp_path / "bin" / "nvidia-cuda-mps-control"
    b.parent.mkdir()
    b.write_text('#!/bin/sh\nif [ "$1" = "-d" ]; then mkdir -p "$CUDA_MPS_PIPE_DIRECTORY"; '
                 'touch "$CUDA_MPS_PIPE_DIRECTORY/control"; echo "-d $CUDA_MPS_PIPE_DIRECTORY" >> "$FAKE_LOG"; '
                 'exit 0; fi\n'
                 'read cmd; echo "$cmd" >> "$FAKE_LOG"\n')
    b.chmod(b.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setattr(mps, "control_binary", lambda: str(b))
    return log


def test_wants_mps_only_for_nvdec_decode_processes_on_cuda():
    assert mps.wants_mps(cfg(8))[0]
    assert mps.wants_mps(cfg(1, decode_processes=True))[0]
    assert not mps.wants_mps(cfg(1))[0]  # one source: decoded in a thread of the inference process
    assert mps.wants_mps(cfg(1), n_sources=64)[0]  # pockit bench repeats it to 64 streams
    assert mps.wants_mps(cfg(8, device="cpu")) == (False, "not needed: the model is not on a CUDA GPU")
    assert not mps.wants_mps(cfg(8, decoder="cpu"))[0]


def test_wants_mps_for_auto_decoder_video_files_only_with_pynvvideocodec(monkeypatch):
    real = mps.importlib.util.find_spec
    have = {"PyNvVideoCodec": False}

    def find_spec(name, *a):
        if name in have:
            return object() if have[name] else None
        return real(name, *a)

    monkeypatch.setattr(mps.importlib.util, "find_spec", find_spec)
    assert mps.wants_mps(cfg(8, decoder="auto")) == (
        False, "not needed: no source is decoded by NVDEC (decoder: nvdec, or auto with PyNvVideoCodec)")
    have["PyNvVideoCodec"] = True
    assert mps.wants_mps(cfg(8, decoder="auto")) == (
        True, "NVDEC decode processes (8 video file(s) with decoder: auto, NVDEC at any size)")
    assert not mps.wants_mps(cfg(3, decoder="auto"))[0]  # fewer than 4: decode threads, as before
    assert mps.wants_mps(cfg(1, decoder="auto"), n_sources=32)[0]  # pockit bench: one file repeated
    rtsp = parse_config({"sources": [{"id": f"c{i}", "uri": f"rtsp://cam{i}/s"} for i in range(8)],
                         "model": {"path": "m.pt", "device": "cuda:0"}}, "<test>")
    assert not mps.wants_mps(rtsp)[0]  # live cameras: never NVDEC's here
    assert mps.auto_nvdec_sources(cfg(2, decoder="auto")) == ["c0", "c1"]
    assert not mps.wants_mps(cfg(8, decode_processes=False))[0]
    assert not mps.wants_mps(cfg(8, cuda_mps=False))[0]
    assert mps.wants_mps(cfg(1, device="cpu", cuda_mps=True))[0]  # asked for: tried


def test_no_control_binary_says_so_and_the_run_goes_on(fresh, monkeypatch, caplog):
    monkeypatch.setattr(mps, "control_binary", lambda: None)
    assert mps.ensure_mps(cfg(8)).startswith("not available: nvidia-cuda-mps-control is not installed")
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ and not mps.mps_active()
    assert mps.ensure_mps(cfg(8, device="cpu")) == "not needed: the model is not on a CUDA GPU"


def test_private_daemon_started_probed_used_and_told_to_quit(fresh, fake_control, monkeypatch):
    probes = []
    monkeypatch.setattr(mps, "probe", lambda env: (probes.append(env["CUDA_MPS_PIPE_DIRECTORY"]) or True, "ok"))
    got = mps.ensure_mps(cfg(8))
    assert got.startswith("started (") and got.endswith("for: NVDEC decode processes (8 source(s) with decoder: nvdec)")
    d = mps._state["daemon"]
    pipe = os.environ["CUDA_MPS_PIPE_DIRECTORY"]
    assert pipe == d.env["CUDA_MPS_PIPE_DIRECTORY"] == probes[0]  # the probe went through the new daemon
    assert os.path.exists(os.path.join(pipe, "control")) and mps.mps_active()
    assert mps.ensure_mps(cfg(8)) == got  # once per process
    assert fresh == [d.stop]  # told to quit at exit
    d.stop(wait=True)
    assert fake_control.read_text().splitlines() == [f"-d {pipe}", "quit"]
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ  # restored
    assert not d.dir.exists()  # removed after the daemon quit


def test_daemon_that_cannot_serve_a_context_is_stopped(fresh, fake_control, monkeypatch, caplog):
    monkeypatch.setattr(mps, "probe", lambda env: (False, "cuDevicePrimaryCtxRetain failed with CUDA error 805"))
    got = mps.ensure_mps(cfg(8))
    assert got.startswith("failed: the daemon started but a CUDA context through it failed "
                          "(cuDevicePrimaryCtxRetain failed with CUDA error 805)")
    assert fake_control.read_text().splitlines()[-1] == "quit"
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ and not mps.mps_active()
    assert "CUDA MPS not used" in caplog.text


def test_existing_daemon_is_used_and_none_started_after_cuda_init(fresh, fake_control, monkeypatch, tmp_path):
    other = tmp_path / "site-daemon"
    other.mkdir()
    (other / "control").touch()
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(other))
    assert mps.ensure_mps(cfg(8)) == f"in use (a daemon already runs: {other})"
    assert mps.mps_active()
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY")
    monkeypatch.setattr(mps, "cuda_initialized", lambda: True)
    assert mps.ensure_mps(cfg(8)).startswith("not started: CUDA was already initialised in this process")
    assert not fake_control.exists()  # never called
    monkeypatch.setattr(mps, "cuda_initialized", lambda: False)
    monkeypatch.setattr(mps, "is_jetson", lambda: True)
    assert mps.ensure_mps(cfg(8)) == "not available: Jetson has no CUDA MPS"


def test_probe_reports_a_missing_driver_instead_of_raising():
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("a CUDA driver is installed here: the probe's failure path needs a machine without one")
    except OSError:
        pass
    ok, why = mps.probe(dict(os.environ))
    assert not ok and why.startswith("no libcuda")


def test_under_mps_auto_decoder_files_ask_nvdec_at_any_size(monkeypatch, tmp_path):
    """With the model on CUDA and MPS up, 4+ video files with decoder auto ask for NVDEC from 1 pixel (NV12 slots
    unless the config says otherwise); without MPS the 1.5 MP threshold stays. (Here NVDEC is not installed:
    the files then decode on the CPU either way.)"""
    import cv2
    import numpy as np

    from pockit.pipeline.runner import NVDEC_AUTO_MIN_PIXELS, Pipeline

    av = pytest.importorskip("av")
    video, mp4v = tmp_path / "v.mp4", tmp_path / "mp4v.mp4"  # H.264 and MPEG-4 part 2
    with av.open(str(video), "w") as out:  # H.264, the codec NVDEC was measured on
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            out.mux(st.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="bgr24")))
        out.mux(st.encode())
    w = cv2.VideoWriter(str(mp4v), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(3):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    srcs = [{"id": f"c{i}", "uri": str(video)} for i in range(3)]
    srcs.append({"id": "c3", "uri": str(video), "options": {"nvdec_convert": "cpu"}})
    srcs.append({"id": "c4", "uri": str(mp4v)})

    def opened(active, n=5):
        monkeypatch.setattr(mps, "mps_active", lambda: active)
        r = Pipeline.__new__(Pipeline)
        r.cfg = parse_config({"sources": srcs[:n], "model": {"path": "m.pt", "device": "cuda:0"}}, "<test>")
        r.max_frames = None
        streams = r._open_sources(on_cuda=True)
        for st in streams:
            st.source.close()
        return [(st.open_kwargs["nvdec_min_pixels"], st.open_kwargs.get("nvdec_convert")) for st in streams]

    thr = NVDEC_AUTO_MIN_PIXELS
    # the config's own nvdec_convert kept (the MPEG-4 part 2 file is then left on the CPU by the source's codec
    # rule, test_sources.py)
    assert opened(True) == [(1, "model")] * 3 + [(1, "cpu"), (1, "model")]
    assert opened(False) == [(thr, None)] * 3 + [(thr, "cpu"), (thr, None)]
    assert opened(True, n=3) == [(thr, None)] * 3  # fewer than 4 files: as before


def test_daemons_left_by_killed_runs_are_stopped_before_a_new_one(fresh, fake_control, monkeypatch, tmp_path):
    """A run killed with SIGKILL leaves its private daemon: the next run that starts one stops those whose owner
    process is gone (or whose pid now belongs to another process) and removes their directories; it leaves
    alone the daemons of runs still going and directories it cannot attribute."""
    import subprocess

    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(mps.tempfile, "tempdir", str(root))
    monkeypatch.setattr(mps, "probe", lambda env: (True, "ok"))
    p = subprocess.Popen(["true"])
    p.wait()
    me = os.getpid()
    owners = {"dead": f"{p.pid} 12345", "reused": f"{me} 1", "alive": f"{me} {mps._start_time(me)}", "unknown": None}
    for name, owner in owners.items():
        d = root / f"pockit-mps-{name}"
        (d / "pipe").mkdir(parents=True)
        (d / "pipe" / "control").touch()
        if owner:
            (d / "owner").write_text(owner + "\n")
    got = mps.ensure_mps(cfg(8))
    assert got.startswith("started (")
    left = sorted(x.name for x in root.iterdir())
    new = mps._state["daemon"].dir
    assert left == sorted(["pockit-mps-alive", "pockit-mps-unknown", new.name])
    calls = fake_control.read_text().splitlines()
    assert calls[:2] == ["quit", "quit"] and calls[2].startswith("-d ")  # the two stale ones, then the new one
    assert (new / "owner").read_text().split()[0] == str(me)  # a later run can tell whose it is
    assert mps.reap_stale(mps.control_binary(), str(root)) == []  # the new one's owner runs: kept
    mps._state["daemon"].stop(wait=True)
    assert not new.exists()
