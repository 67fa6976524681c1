"""The CUDA path: the torch backend (GPU letterbox, FP16, CUDA graph, launch/finish) and the product pipeline on a
GPU, on real footage. Skipped, with the reason, where torch sees no CUDA GPU (every CPU machine and CI).

Run on a GPU machine (benchmarks/README.md, GPU section):
    python -m pytest -q tests/test_torch_backend.py tests/test_cuda_path.py
The pinned person detector's ``.pt`` comes from ``POCKIT_TEST_PT``, else ``.devdata/models/person-yolov8s.pt`` beside
the checkout's root, else pockit's cache (``person-yolov8s-pt``); on a CUDA machine without any of them the tests fail
saying so (a GPU run must not pass by skipping).
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[ml]')")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU (torch.cuda.is_available() is False): run on a GPU machine, "
                                       "see benchmarks/README.md (GPU section)")

import pockit  # noqa: E402
from pockit.core import box_iou, read_mot  # noqa: E402
from pockit.resolve import match_detections  # noqa: E402

FRAMES = 16


@pytest.fixture(scope="module")
def weights() -> Path:
    env = os.environ.get("POCKIT_TEST_PT")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".devdata" / "models" / "person-yolov8s.pt")
    for c in cands:
        if c.is_file():
            return c
    from pockit.inference import resolve_model

    try:
        return Path(resolve_model("person-yolov8s-pt"))
    except Exception as e:  # noqa: BLE001 - any failure to find the weights is reported the same way
        pytest.fail(f"CUDA is available but the person-yolov8s .pt is not: set POCKIT_TEST_PT or copy pockit's cached "
                    f"person-yolov8s-pt to .devdata/models/person-yolov8s.pt ({type(e).__name__}: {e})")


@pytest.fixture(scope="module")
def frames(tud_campus):
    import cv2

    files = sorted((tud_campus / "img1").glob("*.jpg"))[:FRAMES]
    return [cv2.imread(str(f)) for f in files]


def _agreement(ref, other, iou=0.5):
    """(matched, boxes in ref, boxes in other, mean IoU, largest score difference) over frames."""
    m = n_ref = n_other = 0
    ious, dscore = [], 0.0
    for a, b in zip(ref, other):
        pairs = match_detections(a, b, iou)
        m, n_ref, n_other = m + len(pairs), n_ref + len(a), n_other + len(b)
        ious += [v for _, _, v in pairs]
        dscore = max([dscore] + [abs(float(a.scores[i]) - float(b.scores[j])) for i, j, _ in pairs])
    return m, n_ref, n_other, float(np.mean(ious)) if ious else 1.0, dscore


def test_cuda_fp32_matches_cpu(weights, frames):
    from pockit.inference.torch_backend import TorchDetector

    cpu = TorchDetector(weights, device="cpu", half=False, batch=8, cuda_graph=False, conf=0.3)
    gpu = TorchDetector(weights, device="cuda:0", half=False, batch=8, cuda_graph=False, conf=0.3)
    assert gpu.info["providers"][1] == "cuda:0" and "fp32" in gpu.info["providers"]
    ref, got = cpu.detect(frames), gpu.detect(frames)
    assert len(got) == FRAMES and all(d.xyxy.dtype == np.float32 for d in got)
    m, n_ref, n_got, miou, dscore = _agreement(ref, got)
    assert n_ref >= 3 * FRAMES  # several walkers per frame
    # the same model in FP32 (cuDNN may use TF32): the same boxes up to rounding
    assert m >= 0.97 * max(n_ref, n_got), (m, n_ref, n_got)
    assert miou >= 0.97 and dscore <= 0.03, (miou, dscore)


def test_cuda_fp16_graph_and_launch_finish(weights, frames, monkeypatch):
    from pockit.inference.torch_backend import TorchDetector

    monkeypatch.delenv("POCKIT_GRAPH_SIZES", raising=False)  # the default: a graph per batch size bucket

    fp32 = TorchDetector(weights, device="cuda:0", half=False, batch=8, cuda_graph=False, conf=0.3)
    fp16 = TorchDetector(weights, device="cuda:0", half=True, batch=8, cuda_graph=True, conf=0.3)
    assert "fp16" in fp16.info["providers"] and "cuda-graph" in fp16.info["providers"]
    ref = fp32.detect(frames)
    got = fp16.detect(frames)
    m, n_ref, n_got, miou, _ = _agreement(ref, got)
    assert m >= 0.95 * max(n_ref, n_got) and miou >= 0.95, (m, n_ref, n_got, miou)
    # the pipeline's two-phase path gives the same detections as detect(), batch by batch
    two_phase = []
    for s in range(0, FRAMES, 8):
        two_phase += fp16.finish(fp16.launch(frames[s:s + 8]))
    for a, b in zip(got, two_phase):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
    with pytest.raises(ValueError, match="at most batch=8"):
        fp16.launch(frames[:9])
    # NMS runs on a stream of the device's highest priority (ahead of the next batch's model kernels)
    import torch

    assert fp16._post_stream.priority == min(torch.cuda.Stream.priority_range()) < 0
    # every batch size runs on a graph of its own size (1, 2, 4, 8) and gives the frames' own detections
    assert sorted(fp16._graphs) == fp16.graph_sizes() == [1, 2, 4, 8]
    for n in (1, 3, 5):
        part = fp16.finish(fp16.launch(frames[:n]))
        assert len(part) == n
        m, n_ref, n_got, miou, _ = _agreement(got[:n], part)  # FP16 kernels may differ by batch size
        assert m >= 0.95 * max(n_ref, n_got) and miou >= 0.95, (n, m, n_ref, n_got, miou)


@pytest.mark.slow
def test_pipeline_on_cuda(weights, tud_campus, tmp_path):
    cfg = {
        "name": "cuda",
        "sources": [{"id": "campus", "uri": str(tud_campus)}],
        "model": {"path": str(weights), "backend": "torch", "device": "cuda:0", "half": True, "batch": 4, "conf": 0.3},
        "tracker": {"minimum_consecutive_frames": 2},
        "rules": [{"name": "centre_line", "type": "line_crossing", "line": [[320, 470], [320, 320]], "direction": "both"}],
        "outputs": {"snapshots": True},
    }
    run_dir = tmp_path / "run"
    summary = pockit.run(cfg, run_dir=run_dir, progress=False)
    assert summary.frames == 71 and summary.sources["campus"].frames == 71 and not summary.errors
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "ok" and rec["model"]["backend"] == "torch"
    assert "cuda:0" in rec["model"]["providers"] and "fp16" in rec["model"]["providers"]
    assert rec["pipeline"]["max_batch"] == 4 and rec["pipeline"]["mean_batch"] >= 1
    # the same quality bar as the CPU pipeline test (tests/test_pipeline.py): recall of the walkers >= 0.70
    pred, gt = read_mot(run_dir / "tracks" / "campus.txt"), read_mot(tud_campus / "gt" / "gt.txt", gt=True)
    hit = total = 0
    for f, g in gt.items():
        total += len(g)
        if f in pred and len(pred[f]):
            hit += int((box_iou(g.xyxy, pred[f].xyxy).max(axis=1) >= 0.5).sum())
    assert hit / total >= 0.70, hit / total
    assert 6 <= summary.sources["campus"].tracks <= 20  # 8 identities in the ground truth
    assert summary.events_per_rule["centre_line"] >= 1


def _h264(tud_campus, path) -> Path:
    """An H.264 mp4 (the codec NVDEC decodes on every NVIDIA GPU): ``POCKIT_TEST_H264``, else the GPU benchmark's
    ``.devdata/video/pets576.mp4``, else TUD-Campus encoded here with PyAV."""
    env = os.environ.get("POCKIT_TEST_H264")
    bench = Path(__file__).resolve().parents[1] / ".devdata" / "video" / "pets576.mp4"
    for c in ([Path(env)] if env else []) + [bench]:
        if c.is_file():
            return c
    av = pytest.importorskip("av", reason="no H.264 test video and PyAV is not installed to make one")
    import cv2

    files = sorted((tud_campus / "img1").glob("*.jpg"))
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        first = cv2.imread(str(files[0]))
        s.height, s.width, s.pix_fmt = first.shape[0], first.shape[1], "yuv420p"
        for f in files:
            for p in s.encode(av.VideoFrame.from_ndarray(cv2.imread(str(f)), format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return Path(path)


@pytest.mark.parametrize("convert", ["gpu", "cpu"])
def test_nvdec_frames_match_cpu_and_feed_the_pipeline(weights, tud_campus, tmp_path, convert, monkeypatch):
    """NVDEC (PyNvVideoCodec), colour conversion on the GPU or the CPU: frames match OpenCV's, a frame-pool-like
    buffer is filled in place, and the pipeline analyses every frame of 4 NVDEC streams."""
    pytest.importorskip("PyNvVideoCodec", reason="PyNvVideoCodec is not installed (pip install PyNvVideoCodec)")
    from pockit.sources import open_source

    monkeypatch.setenv("POCKIT_NVDEC_CONVERT", convert)
    video, n = _h264(tud_campus, tmp_path / "campus.mp4"), 60
    gpu = [f.image for f in open_source(str(video), decoder="nvdec", max_frames=n)]
    cpu = [f.image for f in open_source(str(video), decoder="cpu", max_frames=n)]
    assert len(gpu) == len(cpu) == n
    diff = float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(gpu, cpu)]))
    assert diff < 3.0, diff  # colour conversion differs a little between NVDEC and FFmpeg
    src = open_source(str(video), decoder="nvdec", max_frames=3)
    buf = np.zeros((src.native_size[1], src.native_size[0], 3), np.uint8)
    src.into = buf
    first = next(iter(src))
    assert np.shares_memory(first.image, buf) and np.abs(buf.astype(int) - cpu[0].astype(int)).mean() < 3.0
    src.close()
    cfg = {
        "name": "nvdec",
        "sources": [{"id": f"cam{i}", "uri": str(video), "max_frames": n, "options": {"decoder": "nvdec"}}
                    for i in range(4)],
        "model": {"path": str(weights), "backend": "torch", "device": "cuda:0", "half": True, "batch": 8, "conf": 0.3},
    }
    summary = pockit.run(cfg, run_dir=tmp_path / "run", progress=False)
    assert not summary.errors and summary.frames == 4 * n
    assert all(summary.sources[f"cam{i}"].tracks >= 1 for i in range(4))
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["pipeline"]["decoders"]["threads"] >= 1 and rec["pipeline"]["decoders"]["processes"] == 0
    if convert == "cpu":  # pipeline.decode_processes: true puts the NVDEC sessions in the decode processes
        cfg["pipeline"] = {"decode_processes": True}
        summary = pockit.run(cfg, run_dir=tmp_path / "run_proc", progress=False)
        assert not summary.errors and summary.frames == 4 * n
        rec = json.loads((tmp_path / "run_proc" / "run.json").read_text())
        assert rec["pipeline"]["decoders"]["processes"] >= 1


def test_cuda_nv12_planes_give_the_detections_of_bgr_frames(weights, frames, bgr_to_nv12):
    """NVDEC's NV12 planes handed to the model as they are (converted on the GPU while letterboxing) give the
    detections of the BGR frames OpenCV makes of the same planes, through launch/finish as the pipeline calls it."""
    import cv2

    from pockit.inference.torch_backend import TorchDetector

    det = TorchDetector(weights, device="cuda:0", half=True, batch=8, cuda_graph=True, conf=0.3)
    assert det.accepts_nv12
    planes = [bgr_to_nv12(f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2]) for f in frames]
    bgr = [cv2.cvtColor(p, cv2.COLOR_YUV2BGR_NV12) for p in planes]
    ref, got = [], []
    for s in range(0, FRAMES, 8):
        ref += det.finish(det.launch(bgr[s:s + 8]))
        got += det.finish(det.launch(planes[s:s + 8]))
    m, n_ref, n_got, miou, dscore = _agreement(ref, got)
    assert n_ref >= 3 * FRAMES
    assert m >= 0.97 * max(n_ref, n_got) and miou >= 0.97 and dscore <= 0.05, (m, n_ref, n_got, miou, dscore)


@pytest.mark.parametrize("procs", [False, True])
def test_nvdec_nv12_pipeline_matches_the_bgr_pipeline(weights, tud_campus, tmp_path, monkeypatch, procs):
    """NVDEC streams and the torch model on CUDA: frames stay NV12 in the pool slots (``nv12_streams``), in decode
    threads and in decode processes; the tracks are those of the BGR path (POCKIT_NVDEC_NV12=0) up to the
    conversion's rounding."""
    pytest.importorskip("PyNvVideoCodec", reason="PyNvVideoCodec is not installed (pip install PyNvVideoCodec)")
    monkeypatch.delenv("POCKIT_NVDEC_CONVERT", raising=False)
    video, n = _h264(tud_campus, tmp_path / "campus.mp4"), 60
    cfg = {
        "name": "nv12",
        "sources": [{"id": f"cam{i}", "uri": str(video), "max_frames": n, "options": {"decoder": "nvdec"}}
                    for i in range(4)],
        "model": {"path": str(weights), "backend": "torch", "device": "cuda:0", "half": True, "batch": 8, "conf": 0.3},
        "pipeline": {"decode_processes": procs},
    }
    runs = {}
    for name, flag in (("nv12", "1"), ("bgr", "0")):
        monkeypatch.setenv("POCKIT_NVDEC_NV12", flag)
        s = pockit.run(cfg, run_dir=tmp_path / name, progress=False)
        assert not s.errors and s.frames == 4 * n
        rec = json.loads((tmp_path / name / "run.json").read_text())
        assert rec["pipeline"]["nv12_streams"] == (4 if flag == "1" else 0)
        assert (rec["pipeline"]["decoders"]["processes"] >= 1) == procs
        runs[name] = read_mot(tmp_path / name / "tracks" / "cam0.txt")
    a, b = runs["nv12"], runs["bgr"]
    boxes_a = sum(len(d) for d in a.values())
    boxes_b = sum(len(d) for d in b.values())
    assert boxes_b >= 3 * n and abs(boxes_a - boxes_b) <= 0.05 * boxes_b, (boxes_a, boxes_b)
    ious = [box_iou(a[k].xyxy, b[k].xyxy).max(1).mean() for k in a if k in b and len(a[k]) and len(b[k])]
    assert float(np.mean(ious)) >= 0.95


def test_pockit_run_starts_cuda_mps_for_nvdec_decode_processes(weights, tud_campus, tmp_path):
    """``pockit run`` (its own process: MPS must start before the process's first CUDA context) with 4 NVDEC
    cameras (``decoder: nvdec``, and the default ``decoder: auto``): a private MPS daemon is started (or run.json
    says why not), the files go to NVDEC decode processes under it with NV12 slots, every frame is analysed, the
    tracks are those of the same run with ``cuda_mps: false`` (NVDEC in threads), and the daemon is gone after the
    process exits."""
    import subprocess
    import sys
    import time

    import yaml

    pytest.importorskip("PyNvVideoCodec", reason="PyNvVideoCodec is not installed (pip install PyNvVideoCodec)")
    from pockit.pipeline import mps

    video, n = _h264(tud_campus, tmp_path / "campus.mp4"), 60
    recs, tracks = {}, {}
    nvdec = {"decoder": "nvdec", "nvdec_convert": "model"}
    # "auto": no decoder option at all (a 576p / 480p file: CPU decode without MPS, NVDEC at any size under it)
    for name, mode, opts in (("mps", "auto", nvdec), ("auto", "auto", {}), ("off", False, nvdec)):
        cfg = {"name": name,
               "sources": [{"id": f"cam{i}", "uri": str(video), "max_frames": n, "options": opts}
                           for i in range(4)],
               "model": {"path": str(weights), "backend": "torch", "device": "cuda:0", "half": True, "batch": 8,
                         "conf": 0.3},
               "pipeline": {"cuda_mps": mode}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_MPS_")}
        cli = "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))"
        r = subprocess.run([sys.executable, "-c", cli, "run", str(path), "--run-dir", str(tmp_path / name),
                            "--no-progress"], capture_output=True, text=True, timeout=600, env=env, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        recs[name] = json.loads((tmp_path / name / "run.json").read_text())
        assert sum(s["frames"] for s in recs[name]["sources"].values()) == 4 * n
        tracks[name] = read_mot(tmp_path / name / "tracks" / "cam0.txt")
    for name in ("mps", "auto"):
        got = recs[name]["pipeline"]["cuda_mps"]
        if mps.control_binary() is None or mps.running_elsewhere():
            assert got.startswith(("not available", "in use")), got
            continue
        assert got.startswith("started ("), got
        assert recs[name]["pipeline"]["decoders"]["processes"] >= 1  # NVDEC files in decode processes under MPS
        assert recs[name]["pipeline"]["nv12_streams"] == 4  # auto too: NVDEC at any size, NV12 slots
        pipe = got.split("(", 1)[1].split(")", 1)[0]
        for _ in range(50):  # the detached quit: the daemon goes once the run's process has
            if not os.path.exists(pipe):
                break
            time.sleep(0.2)
        assert not os.path.exists(pipe), f"the MPS daemon's directory {pipe} is still there"
    assert recs["off"]["pipeline"]["cuda_mps"].startswith("off")
    assert recs["off"]["pipeline"]["decoders"]["processes"] == 0  # without MPS, NVDEC stays in threads
    b = tracks["off"]
    boxes_b = sum(len(d) for d in b.values())
    assert boxes_b >= 3 * n
    for name in ("mps", "auto"):
        boxes_a = sum(len(d) for d in tracks[name].values())
        assert abs(boxes_a - boxes_b) <= 0.05 * boxes_b, (name, boxes_a, boxes_b)
