"""The pipeline's parts: sharded worker processes, a dying worker, the bounded frame pool, counted drops."""
import hashlib
import json
import multiprocessing as mp
import os
import signal
import threading
import time

import numpy as np
import pytest

import pockit
from pockit.core import Detections, read_events, read_mot
from pockit.inference.base import Detector
from pockit.pipeline.framepool import FramePool
from pockit.pipeline.runner import DECODE_PROC_REF_BYTES, DECODE_PROC_SLOTS

RULES = [
    {"name": "right_half", "type": "zone_enter", "zone": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]},
    {"name": "centre_line", "type": "line_crossing", "line": [[0.5, 0.0], [0.5, 1.0]], "direction": "both"},
    {"name": "stay", "type": "loitering", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]], "dwell": 1.0},
]


def _key(img: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(img[::7, ::7]).tobytes()).hexdigest()


class GtDetector:
    """Returns the ground-truth boxes of the frame it is shown (found by the frame's pixels): a detector
    with known, deterministic output, so runs can be compared event for event."""

    class_names = {0: "person"}
    info = {"backend": "gt"}

    def __init__(self, seqs, on_call=None, delay=0.0):
        from pockit.sources import open_source

        self.table = {}
        for seq in seqs:
            gt = read_mot(seq / "gt" / "gt.txt", gt=True)
            for fr in open_source(str(seq)):
                d = gt.get(fr.index + 1)
                self.table[_key(fr.image)] = d.xyxy if d is not None else np.zeros((0, 4), np.float32)
        self.calls, self.on_call, self.delay = 0, on_call, delay
        self.last_timings = {}

    def detect(self, images):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.delay:
            time.sleep(self.delay)
        out = []
        for im in images:
            b = self.table[_key(im)]
            out.append(Detections(xyxy=b, scores=np.full(len(b), 0.9, np.float32), class_names=self.class_names))
        return out


def _cfg(shared, tmp, **pipeline):
    mot = shared / "mot"
    return {
        "name": "shard",
        "sources": [{"id": "campus", "uri": str(mot / "TUD-Campus")},
                    {"id": "pets", "uri": str(mot / "PETS09-S3-MF1"), "max_frames": 80},
                    {"id": "stadt", "uri": str(mot / "TUD-Stadtmitte"), "max_frames": 90}],
        "model": {"path": "unused.onnx", "batch": 4},
        "tracker": {"minimum_consecutive_frames": 1},
        "rules": RULES,
        "outputs": {"snapshots": True, "dir": str(tmp)},
        "pipeline": pipeline,
    }


def _events(run_dir):
    out = {}
    for e in read_events(run_dir / "events.jsonl"):
        d = e.to_dict()
        for k in ("id", "snapshot", "clip"):
            d.pop(k, None)
        out.setdefault(e.source, []).append(json.dumps(d, sort_keys=True))
    return out


@pytest.fixture(scope="module")
def gt_detector(shared_data):
    mot = shared_data / "mot"
    return GtDetector([mot / "TUD-Campus", mot / "PETS09-S3-MF1", mot / "TUD-Stadtmitte"])


@pytest.fixture(scope="module")
def reference(shared_data, gt_detector, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    s = pockit.run(_cfg(shared_data, tmp), run_dir=tmp / "run", detector=gt_detector, progress=False, workers=0)
    return s, tmp / "run"


def test_sharded_processes_give_exactly_the_events_of_one_thread(shared_data, gt_detector, reference, tmp_path):
    ref, ref_dir = reference
    assert not ref.errors and ref.pipeline["worker_kind"] == "thread"
    assert {k: v.frames for k, v in ref.sources.items()} == {"campus": 71, "pets": 80, "stadt": 90}
    assert sum(ref.events_per_rule.values()) >= 10  # the comparison below compares something
    s = pockit.run(_cfg(shared_data, tmp_path), run_dir=tmp_path / "run", detector=gt_detector, progress=False,
                   workers=2)
    assert not s.errors and s.pipeline["worker_kind"] == "process" and s.pipeline["workers"] == 2
    assert _events(tmp_path / "run") == _events(ref_dir)
    for sid in ("campus", "pets", "stadt"):  # per-stream frame order kept: identical track files
        assert (tmp_path / "run" / "tracks" / f"{sid}.txt").read_text() == \
            (ref_dir / "tracks" / f"{sid}.txt").read_text()
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "ok" and rec["pipeline"]["latency_capture_to_tracked"]["n"] == 241
    assert rec["pipeline"]["limiting_stage"]


def test_killed_worker_is_reported_and_other_streams_finish(shared_data, gt_detector, reference, tmp_path):
    ref, ref_dir = reference

    def kill_shard_1(call):
        if call == 8:  # shard 1 holds stream 1 (pets) of 0,1,2 over 2 shards
            (p,) = [c for c in mp.active_children() if c.name == "pockit-worker-1"]
            os.kill(p.pid, signal.SIGKILL)

    det = GtDetector([], on_call=kill_shard_1)
    det.table = gt_detector.table
    s = pockit.run(_cfg(shared_data, tmp_path), run_dir=tmp_path / "run", detector=det, progress=False, workers=2)
    assert len(s.errors) == 1 and s.errors[0].startswith("pets:") and "worker process died" in s.errors[0]
    assert s.sources["campus"].frames == 71 and s.sources["stadt"].frames == 90 and s.sources["pets"].frames < 80
    got, want = _events(tmp_path / "run"), _events(ref_dir)
    assert got.get("campus") == want.get("campus") and got.get("stadt") == want.get("stadt")
    assert set(got.get("pets", [])) <= set(want.get("pets", []))  # what pets raised before the kill is kept
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "errors" and rec["pipeline"]["frame_pool"]["high_water"] <= rec["pipeline"]["frame_pool"]["slots"]


def test_frame_pool_is_bounded():
    pool = FramePool(3, 64 * 48 * 3, shared=True)
    try:
        slots = [pool.acquire(timeout=0) for _ in range(3)]
        assert sorted(slots) == [0, 1, 2] and pool.acquire(timeout=0) is None and pool.acquire(timeout=0.05) is None
        pool.view(slots[0], 48, 64)[...] = 7
        assert pool.high_water == 3 and pool.in_use == 3 and not pool.fits(49, 64)
        pool.release(slots[0])
        assert pool.acquire(timeout=0) == slots[0] and pool.view(slots[0], 48, 64).max() == 7
    finally:
        pool.close()


def test_pool_bound_holds_in_a_run_and_files_lose_no_frame(shared_data, gt_detector, tmp_path):
    cfg = _cfg(shared_data, tmp_path, frame_slots=3)
    cfg["model"]["batch"] = 2
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=gt_detector, progress=False, workers=1)
    fp = s.pipeline["frame_pool"]
    assert fp["slots"] == 3 and 1 <= fp["high_water"] <= 3
    assert {k: v.frames for k, v in s.sources.items()} == {"campus": 71, "pets": 80, "stadt": 90}
    assert s.pipeline["dropped"] == 0


def test_realtime_backpressure_drops_are_counted(shared_data, gt_detector, tmp_path):
    det = GtDetector([], delay=0.12)  # slower than the 25 fps camera
    det.table = gt_detector.table
    cfg = _cfg(shared_data, tmp_path, frame_slots=2)
    cfg["sources"] = [{"id": "campus", "uri": str(shared_data / "mot" / "TUD-Campus"), "realtime": True}]
    cfg["model"]["batch"] = 1
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    st = s.sources["campus"]
    dropped = st.stats["dropped_pipeline"]
    assert dropped > 10 and st.frames + dropped == 71 and s.pipeline["dropped"] == dropped
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["sources"]["campus"]["stats"]["dropped_pipeline"] == dropped


def test_undelivered_alarms_are_in_run_json(shared_data, gt_detector, tmp_path):
    """A webhook nobody answers: the run says which alarms were not delivered and where they wait."""
    cfg = _cfg(shared_data, tmp_path)
    cfg["sources"] = cfg["sources"][:1]
    cfg["outputs"]["sinks"] = [{"type": "jsonl"},
                               {"type": "webhook", "url": "http://127.0.0.1:9/hook", "retries": 1, "timeout": 0.2,
                                "drain_timeout": 0.5}]
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=gt_detector, progress=False, workers=0)
    raised = len(read_events(tmp_path / "run" / "events.jsonl"))
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert raised > 0 and not s.all_delivered and rec["status"] == "undelivered"
    hook = [d for d in rec["delivery"]["sinks"] if d["sink"] == "webhook"][0]
    assert hook["raised"] == raised and hook["delivered"] == 0 and hook["pending"] + hook["dead_letter"] == raised
    assert rec["delivery"]["problems"]


class OverlapGtDetector(GtDetector):
    """The two-phase interface of the GPU backend (launch a batch, finish it on another thread)."""

    def __init__(self, table):
        super().__init__([])
        self.table, self.launched, self.pinned_flags = table, 0, set()

    def launch(self, images, pinned=False):
        self.launched += 1
        self.pinned_flags.add(pinned)
        return [im.copy() for im in images]  # what the GPU would hold

    def finish(self, pending):
        return self.detect(pending)


def test_launch_finish_overlap_gives_the_same_events(shared_data, gt_detector, reference, tmp_path):
    ref, ref_dir = reference
    det = OverlapGtDetector(gt_detector.table)
    s = pockit.run(_cfg(shared_data, tmp_path), run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    assert s.pipeline["launch_finish_overlap"] is True and det.launched == s.pipeline["inference_calls"] > 0
    assert det.pinned_flags == {False}  # a CPU pool is not page-locked: the backend must stage its copies
    assert _events(tmp_path / "run") == _events(ref_dir) and not s.errors


class TimedOverlapGtDetector(OverlapGtDetector):
    """A two-phase backend that reports how its finish splits into GPU wait and NMS (as the torch backend)."""

    def finish(self, pending):
        self.last_finish_timings = {"inference": 0.002, "postprocess": 0.001}
        return super().finish(pending)


def test_overlap_run_reports_gpu_wait_and_postprocess_as_separate_stages(shared_data, gt_detector, tmp_path):
    cfg = _cfg(shared_data, tmp_path)
    cfg["sources"] = cfg["sources"][:1]
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=TimedOverlapGtDetector(gt_detector.table),
                   progress=False, workers=0)
    t = s.timings
    assert t["postprocess"]["n"] == t["inference"]["n"] == 71
    assert abs(t["postprocess"]["total_s"] - 0.001 * s.pipeline["inference_calls"]) < 1e-6
    assert "NMS" in s.pipeline["note"]
    waits = s.pipeline["thread_waits_s"]  # the launch thread waited for frames and/or for the finish
    assert set(waits) == {"launch_for_frames_s", "launch_for_finish_s", "finish_for_gpu_s"}
    assert waits["launch_for_frames_s"] > 0
    assert waits["finish_for_gpu_s"] == pytest.approx(0.002 * s.pipeline["inference_calls"])
    fin = s.pipeline["stages"]["finish"]  # the GPU wait is the finish's wait, not its work
    assert fin["wait_s"] >= waits["finish_for_gpu_s"] - 1e-9
    cpu = s.pipeline["cpu_s"]  # the threads' CPU time, to set against their busy time
    assert set(cpu) == {"launch", "finish", "results", "inference_process"}
    assert all(v >= 0 for v in cpu.values()) and cpu["launch"] > 0 and cpu["finish"] > 0
    assert cpu["inference_process"] >= max(cpu["launch"], cpu["finish"])


class RequestsGtDetector(Detector):
    """A CPU backend with two requests in flight (``model.requests: 2``): the base Detector's own launch/finish,
    its calls run on two threads at once. Odd calls take longer than even ones, so a later batch often
    completes before an earlier one: the results must still reach tracking in launch order."""

    backend = "gt-requests"

    def __init__(self, table):
        super().__init__("gt.onnx", batch=4, requests=2)
        self.table, self.model_names = table, {0: "person"}
        self.requests = self._resolve_requests(True)
        self.calls = self.active = self.peak = 0
        self._count = threading.Lock()
        self._finish_init()

    def _detect_timed(self, images):
        with self._count:
            self.calls += 1
            slow = self.calls % 2
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.012 if slow else 0.002)
        out = [Detections(xyxy=self.table[_key(im)], scores=np.full(len(self.table[_key(im)]), 0.9, np.float32),
                          class_names=self.class_names) for im in images]
        with self._count:
            self.active -= 1
        return out, {"preprocess": 0.001, "inference": 0.002, "postprocess": 0.0005}


def test_cpu_requests_in_flight_give_exactly_the_events_of_one_call_at_a_time(shared_data, gt_detector, reference,
                                                                               tmp_path):
    ref, ref_dir = reference
    det = RequestsGtDetector(gt_detector.table)
    assert det.requests == 2 and callable(det.launch) and callable(det.finish)
    s = pockit.run(_cfg(shared_data, tmp_path), run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    assert not s.errors and s.pipeline["launch_finish_overlap"] is True and s.pipeline["inference_requests"] == 2
    assert det.peak == 2  # two calls ran at the same time
    assert _events(tmp_path / "run") == _events(ref_dir)
    for sid in ("campus", "pets", "stadt"):  # per-stream frame order kept through out-of-order completion
        assert (tmp_path / "run" / "tracks" / f"{sid}.txt").read_text() == \
            (ref_dir / "tracks" / f"{sid}.txt").read_text()
    t, n = s.timings, s.pipeline["inference_calls"]  # each call's own stage times, booked per frame
    assert t["inference"]["n"] == t["preprocess"]["n"] == 241
    assert t["inference"]["total_s"] == pytest.approx(0.002 * n) and t["preprocess"]["total_s"] == pytest.approx(0.001 * n)
    waits = s.pipeline["thread_waits_s"]
    assert set(waits) == {"launch_for_frames_s", "launch_for_finish_s", "finish_for_requests_s"}
    inf = s.pipeline["stages"]["inference"]
    assert inf["units"] == 2 and inf["busy_s"] == pytest.approx(0.0035 * n, rel=0.01)
    assert not s.pipeline["limiting_stage"].startswith("gpu")
    det.close()


def test_decode_threads_shared_by_streams_keep_each_streams_order(shared_data, gt_detector, reference, tmp_path):
    """One decode thread serving all three files in turn gives exactly the per-stream results of three."""
    ref, ref_dir = reference
    cfg = _cfg(shared_data, tmp_path, decode_threads=1)
    s = pockit.run(cfg, run_dir=tmp_path / "one", detector=gt_detector, progress=False, workers=0)
    assert s.pipeline["stages"]["decode"]["units"] == 1 and not s.errors
    assert _events(tmp_path / "one") == _events(ref_dir)
    for sid in ("campus", "pets", "stadt"):
        assert (tmp_path / "one" / "tracks" / f"{sid}.txt").read_text() == \
            (ref_dir / "tracks" / f"{sid}.txt").read_text()


def test_decode_processes_give_exactly_the_events_of_decode_threads(shared_data, gt_detector, reference, tmp_path):
    """Files decoded in child processes (frames written into the shared pool, slot numbers queued) give the
    per-stream results of decoding in threads, with tracking in a thread or in worker processes, and with the
    decode processes at a lower priority (``decode_nice``, their niceness in run.json)."""
    import os

    ref, ref_dir = reference
    base = os.nice(0)
    for workers, nice in ((0, 0), (2, 5)):  # decode_nice 5: the decode processes run at a lower priority
        cfg = _cfg(shared_data, tmp_path, decode_processes=True, decode_threads=2, decode_nice=nice)
        run_dir = tmp_path / f"w{workers}"
        s = pockit.run(cfg, run_dir=run_dir, detector=gt_detector, progress=False, workers=workers)
        assert not s.errors and s.pipeline["decoders"] == {"processes": 2, "threads": 0,
                                                           "process_niceness": [min(base + nice, 19)]}
        assert {k: v.frames for k, v in s.sources.items()} == {"campus": 71, "pets": 80, "stadt": 90}
        assert _events(run_dir) == _events(ref_dir)
        for sid in ("campus", "pets", "stadt"):
            assert (run_dir / "tracks" / f"{sid}.txt").read_text() == (ref_dir / "tracks" / f"{sid}.txt").read_text()
        fp = s.pipeline["frame_pool"]
        assert fp["shared"] and 1 <= fp["high_water"] <= fp["slots"]
        # the default pool gives each decode process the memory of DECODE_PROC_SLOTS 768x576 frames (batch x 4 + 3
        # is far less here); PETS09's 768x576 frames are the largest
        assert fp["slots"] == 2 * (DECODE_PROC_SLOTS * DECODE_PROC_REF_BYTES // (768 * 576 * 3)) == 108
        assert s.timings["decode"]["n"] >= 241  # the children's decode timings reach run.json


def test_auto_decoders_leave_four_cores_and_never_exceed_the_streams(monkeypatch, tmp_path):
    from pockit.config import parse_config
    from pockit.pipeline.runner import DECODE_SPARE_CORES, Pipeline

    r = Pipeline.__new__(Pipeline)
    r.cfg = parse_config({"sources": [{"id": "a", "uri": str(tmp_path)}], "model": {"path": "unused.onnx"}}, "<test>")
    for cores, streams, want in ((16, 64, 16 - DECODE_SPARE_CORES), (16, 5, 5), (2, 8, 2), (8, 8, 4)):
        monkeypatch.setattr(os, "cpu_count", lambda c=cores: c)
        assert r._decode_threads(streams) == want
    # every stream NVDEC's (the GPU decodes): NVDEC_DECODE_PROCS for 768x576, more for larger frames, capped
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert r._decode_threads(64, nvdec=True, pixels=768 * 576) == 3
    assert r._decode_threads(64, nvdec=True, pixels=1280 * 720) == 7
    assert r._decode_threads(64, nvdec=True, pixels=1920 * 1080) == 8
    assert r._decode_threads(2, nvdec=True, pixels=1920 * 1080) == 2  # never more than the streams
    assert r._decode_threads(64, nvdec=True) == 3  # frame size unknown


def test_auto_workers_one_per_4_gpu_decoded_streams_one_per_8_else(monkeypatch, tmp_path):
    from pockit.config import parse_config
    from pockit.pipeline.runner import Pipeline

    r = Pipeline.__new__(Pipeline)
    r.workers_arg = None
    r.cfg = parse_config({"sources": [{"id": "a", "uri": str(tmp_path)}], "model": {"path": "unused.onnx"}}, "<test>")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert [r._n_workers(n) for n in (2, 8, 32, 64)] == [0, 1, 4, 7]
    assert [r._n_workers(n, gpu_decoded=True) for n in (2, 8, 32, 64)] == [0, 2, 7, 7]
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert r._n_workers(32, gpu_decoded=True) == 0


def test_killed_decode_process_is_reported_and_other_streams_finish(shared_data, gt_detector, reference, tmp_path):
    ref, ref_dir = reference

    def kill_decoder_1(call):
        if call == 8:  # three decode processes, one per stream: process 1 decodes pets
            (p,) = [c for c in mp.active_children() if c.name == "pockit-decode-1"]
            os.kill(p.pid, signal.SIGKILL)

    det = GtDetector([], on_call=kill_decoder_1)
    det.table = gt_detector.table
    cfg = _cfg(shared_data, tmp_path, decode_processes=True, decode_threads=3)
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    assert len(s.errors) == 1 and s.errors[0].startswith("pets:") and "decode process 1 died" in s.errors[0]
    assert s.sources["campus"].frames == 71 and s.sources["stadt"].frames == 90 and s.sources["pets"].frames < 80
    got, want = _events(tmp_path / "run"), _events(ref_dir)
    assert got.get("campus") == want.get("campus") and got.get("stadt") == want.get("stadt")
    assert set(got.get("pets", [])) <= set(want.get("pets", []))
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "errors"


def test_decode_processes_keep_the_pool_bound_and_lose_no_frame(shared_data, gt_detector, tmp_path):
    cfg = _cfg(shared_data, tmp_path, frame_slots=3, decode_processes=True, decode_threads=3)
    cfg["model"]["batch"] = 2
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=gt_detector, progress=False, workers=1)
    fp = s.pipeline["frame_pool"]  # one slot per decode process: each still gets its files through
    assert fp["slots"] == 3 and 1 <= fp["high_water"] <= 3 and s.pipeline["decoders"]["processes"] == 3
    assert {k: v.frames for k, v in s.sources.items()} == {"campus": 71, "pets": 80, "stadt": 90}
    assert s.pipeline["dropped"] == 0 and not s.errors


def test_decode_process_realtime_drops_are_counted(shared_data, gt_detector, tmp_path):
    det = GtDetector([], delay=0.12)
    det.table = gt_detector.table
    cfg = _cfg(shared_data, tmp_path, frame_slots=2, decode_processes=True)
    cfg["sources"] = [{"id": "campus", "uri": str(shared_data / "mot" / "TUD-Campus"), "realtime": True}]
    cfg["model"]["batch"] = 1
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    st = s.sources["campus"]
    dropped = st.stats["dropped_pipeline"]
    assert s.pipeline["decoders"]["processes"] == 1
    assert dropped > 10 and st.frames + dropped == 71 and s.pipeline["dropped"] == dropped


def _chatty(conn, n, big):
    from pockit.pipeline.channels import Sender

    out = Sender(conn)
    for i in range(n):
        out.put(("msg", i, b"x" * big))


def test_a_child_killed_mid_send_does_not_block_the_others():
    """Each child has its own pipe: killing one while it writes (a shared queue's write lock would be held
    for good) leaves the other's messages flowing, and the dead one's pipe ends."""
    from pockit.pipeline.channels import Receiver

    ctx = mp.get_context("spawn")
    recv = Receiver()
    procs = []
    for key, (n, big) in enumerate([(10**6, 200_000), (300, 10)]):
        r, w = ctx.Pipe(duplex=False)
        recv.add(key, r)
        p = ctx.Process(target=_chatty, args=(w, n, big), daemon=True)
        p.start()
        w.close()
        procs.append(p)
    got = {0: 0, 1: 0}
    killed = False
    deadline = time.monotonic() + 60
    while not (recv.ended(0) and recv.ended(1)) and time.monotonic() < deadline:
        try:
            msg = recv.get(timeout=0.2)
        except Exception:
            continue
        got[0 if len(msg[2]) > 10 else 1] += 1
        if got[0] == 3 and not killed:
            os.kill(procs[0].pid, signal.SIGKILL)  # the big writer, most likely in the middle of a send
            killed = True
    assert killed and recv.ended(0) and recv.ended(1)
    assert got[1] == 300 and got[0] < 10**6
    for p in procs:
        p.join(5)


def test_limiting_stage_names_decode_when_realtime_streams_fall_behind():
    from pockit.pipeline.timing import limiting_stage

    meters = {"decode": {"busy_frac": 0.84, "wait_frac": 0.0, "units": 10},
              "finish": {"busy_frac": 0.95, "wait_frac": 0.04, "units": 1}}
    assert limiting_stage(meters, 0.0) == "finish (95% busy over 1 unit(s))"  # saturated: no remark
    assert limiting_stage(meters, 0.0, realtime_lag=0.2).startswith("finish")
    got = limiting_stage(meters, 0.0, realtime_lag=19.5)
    assert got.startswith("decode") and "19.5 s behind" in got


def test_limiting_stage_names_decode_for_unpaced_files_and_sources_otherwise():
    """A starved batcher: with every stream an unpaced file, decode sets the pace (quoted with its numbers, as
    measured on the H200: decoders 65 % busy, 9 % waiting for a slot); with cameras it may be their rate."""
    from pockit.pipeline.timing import limiting_stage

    meters = {"decode": {"busy_frac": 0.6506, "wait_frac": 0.0888, "units": 10},
              "inference": {"busy_frac": 0.2745, "wait_frac": 0.6884, "units": 1},
              "finish": {"busy_frac": 0.7054, "wait_frac": 0.259, "units": 1}}
    assert limiting_stage(meters, 0.6884).startswith("sources (")
    got = limiting_stage(meters, 0.6884, unpaced=True, decode_ms=3.78)
    assert got == ("decode (files read as fast as they decode: the batcher waited 69% of the time for frames; "
                   "decoders 65% busy, 3.8 ms per frame and 9% waiting for a free frame slot, over 10 unit(s))")
    # not starved: the busiest stage, whatever the sources
    got = limiting_stage(meters, 0.2, unpaced=True, decode_ms=3.78)
    assert got.startswith("finish (71% busy") and "no stage is saturated" in got  # 71 % < SATURATED


def test_limiting_stage_names_the_gpu_when_the_finish_waits_for_it_and_the_launch_for_the_finish():
    """With launch/finish overlap: the finish waiting for the GPU most of the time while the launch thread waits
    for the finish is the model's pace ('gpu'); the same GPU wait with a starved batcher is not."""
    from pockit.pipeline.timing import limiting_stage

    meters = {"decode": {"busy_frac": 0.45, "wait_frac": 0.5, "units": 10},
              "inference": {"busy_frac": 0.2, "wait_frac": 0.75, "units": 1},
              "finish": {"busy_frac": 0.15, "wait_frac": 0.8, "units": 1}}
    got = limiting_stage(meters, 0.05, unpaced=True, decode_ms=3.0, gpu_wait=0.78, launch_blocked=0.7)
    assert got == ("gpu (the model: the finish waited 78% of the time for the GPU to compute a batch and the "
                   "launch thread 70% for the finish)")
    got = limiting_stage(meters, 0.7, unpaced=True, decode_ms=3.0, gpu_wait=0.6, launch_blocked=0.05)
    assert got.startswith("decode (files read as fast as they decode: the batcher waited 70%")
    got = limiting_stage(meters, 0.05, gpu_wait=0.6, launch_blocked=0.58, nvdec_procs=3)  # NVDEC x3, 64 streams
    assert got.endswith("for the finish); the GPU also runs 3 NVDEC decode process(es), each with a CUDA context of "
                        "its own, time-sliced against the model's (pipeline.cuda_mps shares the GPU between them "
                        "instead)")
    got = limiting_stage(meters, 0.05, gpu_wait=0.6, launch_blocked=0.58, nvdec_procs=3, mps=True)
    assert got.endswith("for the finish); the GPU also runs 3 NVDEC decode process(es), under CUDA MPS")


def test_live_camera_in_a_thread_beside_files_in_decode_processes(shared_data, gt_detector, reference, tmp_path):
    """A live camera (here a video file read by the live reader) keeps its decode thread while the files go to
    decode processes; the batcher takes frames from both, and the files' results are those of the reference."""
    ref, ref_dir = reference
    cfg = _cfg(shared_data, tmp_path, decode_processes=True, decode_threads=2)
    video = shared_data / "video" / "one-by-one-person-detection.mp4"
    cfg["sources"].append({"id": "cam", "uri": str(video), "max_frames": 40, "options": {"live": True}})
    det = GtDetector([])
    det.table = gt_detector.table
    det.detect = lambda images: [Detections(xyxy=det.table.get(_key(im), np.zeros((0, 4), np.float32)),
                                            scores=np.full(len(det.table.get(_key(im), ())), 0.9, np.float32),
                                            class_names=GtDetector.class_names) for im in images]
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=det, progress=False, workers=0)
    dec = s.pipeline["decoders"]
    assert (dec["processes"], dec["threads"]) == (2, 1), dec
    assert {k: s.sources[k].frames for k in ("campus", "pets", "stadt")} == {"campus": 71, "pets": 80, "stadt": 90}
    assert s.sources["cam"].frames > 0 and not [e for e in s.errors if not e.startswith("cam")]
    got = _events(tmp_path / "run")
    got.pop("cam", None)
    assert got == _events(ref_dir)


class HashDetector:
    """Finds nothing; remembers a hash of every frame it is shown (the whole image)."""

    class_names = {0: "person"}
    info = {"backend": "hash"}

    def __init__(self):
        self.seen = []
        self.last_timings = {}

    def detect(self, images):
        self.seen += [hashlib.md5(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]
        return [Detections.empty() for _ in images]


def test_video_frames_decoded_into_the_pool_slots_are_the_frames_of_the_copy_path(shared_data, tmp_path,
                                                                                 monkeypatch):
    """Unpaced video files decode straight into a free frame slot (no allocation, no copy per frame). The
    detector sees exactly the frames of the old path (decode into a new array, then copy into the slot), in
    decode threads and in decode processes, and every frame was decoded in place."""
    from collections import Counter

    from pockit.pipeline.decode import DecodeWorker
    from pockit.sources.files import VideoFileSource

    video = shared_data / "video"
    cfg = {"name": "into", "model": {"path": "unused.onnx", "batch": 4},
           "sources": [{"id": "a", "uri": str(video / "one-by-one-person-detection.mp4"), "max_frames": 40},
                       {"id": "b", "uri": str(video / "car-detection.mp4"), "max_frames": 30},
                       {"id": "c", "uri": str(video / "one-by-one-person-detection.mp4"), "start": 5,
                        "max_frames": 25}],
           "outputs": {"dir": str(tmp_path)}, "pipeline": {"decode_processes": False, "decode_threads": 2}}

    def run(name, **pipe):
        det = HashDetector()
        c = json.loads(json.dumps(cfg))
        c["pipeline"].update(pipe)
        s = pockit.run(c, run_dir=tmp_path / name, detector=det, progress=False, workers=0)
        assert not s.errors and {k: v.frames for k, v in s.sources.items()} == {"a": 40, "b": 30, "c": 25}
        return Counter(det.seen)

    reads = Counter()
    real_read = VideoFileSource._read

    def counting(self, cap):
        reads["into" if self.into is not None else "new"] += 1
        return real_read(self, cap)

    monkeypatch.setattr(VideoFileSource, "_read", counting)
    into = run("into")
    assert reads["into"] == 95 and reads["new"] == 0, reads
    monkeypatch.setattr(DecodeWorker, "_into_ok", lambda self, st: False)
    copied = run("copy")
    assert reads["new"] == 95
    assert into == copied and sum(into.values()) == 95
    monkeypatch.undo()
    assert run("procs", decode_processes=True) == copied  # the same in decode processes (spawned: unpatched)



def test_default_pool_gives_decode_processes_frame_memory_by_bytes(tmp_path):
    """Default pool: batch x 4 + streams, or per decode process the memory of DECODE_PROC_SLOTS 768x576 frames
    (the H200 measurement), whichever is larger; larger frames get proportionally fewer slots; 1.5 GB cap."""
    from types import SimpleNamespace

    from pockit.config import parse_config
    from pockit.pipeline.runner import NVDEC_PROC_SLOTS_PER_STREAM, Pipeline

    r = Pipeline.__new__(Pipeline)
    r.cfg = parse_config({"sources": [{"id": "a", "uri": str(tmp_path)}], "model": {"path": "unused.onnx"}}, "<t>")

    def slots(n_streams, size, batch, procs, nvdec=0):
        streams = [SimpleNamespace(source=SimpleNamespace(size=size, native_size=size), cfg=SimpleNamespace(id="s"))
                   for _ in range(n_streams)]
        pool = r._make_pool(streams, batch, on_cuda=False, processes=False, decode_procs=procs,
                            nvdec_proc_streams=nvdec)
        return pool.n, pool.n * pool.slot_bytes

    # streams NVDEC decodes in decode processes: NVDEC_PROC_SLOTS_PER_STREAM each (under the cap)
    assert slots(32, (768, 576), 32, 3, nvdec=32)[0] == 32 * NVDEC_PROC_SLOTS_PER_STREAM == 640
    assert slots(16, (768, 576), 32, 3, nvdec=16)[0] == 320
    # 64 x 20 slots of 768x576 are over the 1.5 GB cap: as many as fit
    assert slots(64, (768, 576), 64, 3, nvdec=64)[0] == int(1.5 * 2**30 // (768 * 576 * 3)) == 1213
    assert slots(64, (1920, 1080), 64, 8, nvdec=64)[0] == 258  # 1080p: the 1.5 GB cap

    assert slots(32, (768, 576), 32, 12)[0] == 12 * DECODE_PROC_SLOTS == 648  # was 160
    assert slots(32, (768, 576), 32, 0)[0] == 32 * 4 + 32  # no decode processes: as before
    # 12 x 11 slots of 1080p is less than 64 x 4 + 64 = 320, which the 1.5 GB cap brings down to 258
    assert slots(64, (1920, 1080), 64, 12)[0] == int(1.5 * 2**30 // (1920 * 1080 * 3)) == 258
    n, nbytes = slots(4, (3840, 2160), 2, 12)  # 4K: 12 x 2 slots, above batch x 4 + streams = 12
    assert n == 12 * 2 and nbytes <= 1.5 * 2**30
    r.cfg = parse_config({"sources": [{"id": "a", "uri": str(tmp_path)}], "model": {"path": "unused.onnx"},
                          "pipeline": {"frame_slots": 7}}, "<t>")
    assert slots(32, (768, 576), 32, 12)[0] == 7  # an explicit size is kept


class Nv12Detector:
    """The GPU backend's NV12 contract on the CPU: takes NVDEC's (H*3/2, W) planes as they are (``accepts_nv12``),
    converts them itself; finds nothing; remembers every frame it was shown (as BGR) and its layout."""

    class_names = {0: "person"}
    info = {"backend": "nv12"}
    accepts_nv12 = True

    def __init__(self):
        self.layouts, self.frames = [], []
        self.last_timings = {}

    def launch(self, images, pinned=False):
        import cv2

        for im in images:
            self.layouts.append(im.ndim)
            self.frames.append(cv2.cvtColor(im, cv2.COLOR_YUV2BGR_NV12) if im.ndim == 2 else im.copy())
        return len(images)

    def finish(self, n):
        return [Detections.empty() for _ in range(n)]

    def detect(self, images):
        return self.finish(self.launch(images))


@pytest.mark.parametrize("workers", [0, 1])
def test_nvdec_frames_stay_nv12_for_a_detector_that_takes_them(shared_data, tmp_path, monkeypatch, workers,
                                                              fake_nvdec):
    """NVDEC streams with nvdec_convert: model and a detector that takes NV12: the slots keep NVDEC's NV12 (no
    conversion in the decoder), the detector gets the planes, the tracking workers (thread or process) convert
    only the frames an output asks for; the frames are those of the BGR path, frame for frame. A detector that
    does not take NV12 gets BGR from the same config. POCKIT_NVDEC_NV12=1 asks it for every NVDEC stream."""
    import cv2

    video = shared_data / "video" / "one-by-one-person-detection.mp4"

    def cfg(convert):
        opts = {"decoder": "nvdec", "nvdec_convert": convert}
        return {"name": "nv12", "model": {"path": "unused.onnx", "batch": 4},
                "sources": [{"id": "a", "uri": str(video), "max_frames": 12, "options": opts},
                            {"id": "b", "uri": str(video), "start": 3, "max_frames": 10, "options": opts}],
                "outputs": {"dir": str(tmp_path)}, "pipeline": {"decode_processes": False, "decode_threads": 2}}

    def run(name, convert, det=None):
        det = det or Nv12Detector()
        s = pockit.run(cfg(convert), run_dir=tmp_path / name, detector=det, progress=False, workers=workers)
        assert not s.errors and {k: v.frames for k, v in s.sources.items()} == {"a": 12, "b": 10}
        return s, det

    s, det = run("nv12", "model")
    assert s.pipeline["nv12_streams"] == 2 and det.layouts == [2] * 22
    assert s.pipeline["cuda_mps"].startswith("not needed: ")  # said in run.json (no decode process, or no GPU)
    s0, det0 = run("bgr", "cpu")
    assert s0.pipeline["nv12_streams"] == 0 and det0.layouts == [3] * 22
    key = lambda frames: sorted(hashlib.md5(f.tobytes()).hexdigest() for f in frames)  # noqa: E731
    assert key(det.frames) == key(det0.frames)  # the detector saw the same frames either way
    # the outputs got BGR frames: each stream's reference still is the first frame, as the BGR path wrote it
    for sid in ("a", "b"):
        ref = cv2.imread(str(tmp_path / "nv12" / "reference" / f"{sid}.jpg")).astype(np.int16)
        ref0 = cv2.imread(str(tmp_path / "bgr" / "reference" / f"{sid}.jpg")).astype(np.int16)
        assert np.abs(ref - ref0).max() == 0
    hashes = HashDetector()  # takes BGR only: nvdec_convert model falls back to the decoder's conversion
    s2, _ = run("plain", "model", det=hashes)
    assert s2.pipeline["nv12_streams"] == 0 and len(hashes.seen) == 22
    monkeypatch.setenv("POCKIT_NVDEC_NV12", "1")
    s3, det3 = run("env", "cpu")
    assert s3.pipeline["nv12_streams"] == 2 and det3.layouts == [2] * 22


def test_nv12_frame_converts_once_and_only_when_asked():
    """The worker's NV12 frame: size without converting; the BGR image made on first access, then the same array."""
    import cv2

    from pockit.pipeline.streamwork import Nv12Frame

    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[10:30, 20:50] = (30, 160, 220)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    uv = np.stack([i420[48:60].reshape(24, 32), i420[60:].reshape(24, 32)], -1).reshape(24, 64)
    f = Nv12Frame(np.concatenate([i420[:48], uv], 0), 7, 0.28, "cam")
    assert f.size == (64, 48) and f._bgr is None and f.index == 7 and f.source_id == "cam"
    img = f.image
    assert img.shape == (48, 64, 3) and f.image is img
    assert np.abs(img.astype(int) - bgr.astype(int)).max() <= 3


def test_frame_pool_census_places_every_slot():
    """The census puts each slot in one place: free in the pool, owned by decode processes, waiting for a batch,
    on the GPU or in tracking; its means over samples sum to the pool's size."""
    from pockit.pipeline.runner import Census

    pool = FramePool(20, 64, shared=False)
    home = object()
    pool.take_slots(6, home, lambda h, s: None)  # a decode process owns 6 (4 of them later arrive here)
    pool.count_acquired(4)
    taken = [pool.acquire(timeout=0) for _ in range(5)]  # a decode thread's frames
    cen = Census()
    cen.sample(pool, gpu=3, tracking=4)  # of the 9 in use here: 3 launched, 4 with the workers, 2 waiting
    pool.release_many(taken)
    cen.sample(pool, gpu=0, tracking=0)
    m = cen.mean()
    assert m["samples"] == 2
    assert m["free"] == (9 + 14) / 2 and m["decode"] == 2.0 and m["gpu"] == 1.5 and m["tracking"] == 2.0
    assert m["batching"] == (2 + 4) / 2
    assert m["free"] + m["decode"] + m["batching"] + m["gpu"] + m["tracking"] == pool.n


def test_frame_pool_census_tells_slots_free_in_decode_processes_from_frames_on_their_way():
    """Slots a decode process has free (its messages say how many) are ``decode_free``, the rest of its slots
    ``decode`` (being decoded, or on their way); the limiting-stage remark says when the decoders were ahead."""
    from pockit.pipeline.runner import Census
    from pockit.pipeline.timing import limiting_stage

    pool = FramePool(20, 64, shared=False)
    pool.take_slots(16, object(), lambda h, s: None)
    pool.count_acquired(6)  # 6 arrived: 10 still with the decode process, 7 of them free there
    cen = Census()
    cen.sample(pool, gpu=2, tracking=3, tracked=10, decode_free=7)
    cen.sample(pool, gpu=2, tracking=3, tracked=20, decode_free=99)  # a stale count never exceeds what it owns
    m = cen.mean()
    assert (m["free"], m["decode_free"], m["decode"]) == (4.0, 8.5, 1.5)
    assert (m["batching"], m["gpu"], m["tracking"]) == (1.0, 2.0, 3.0)
    assert sum(m[k] for k in Census.PLACES) == pool.n
    meters = {"tracking_rules": {"busy_frac": 0.6, "wait_frac": 0.0, "units": 4}}
    got = limiting_stage(meters, 0.1, census=m)
    assert got.endswith("; frame slots mostly in tracking/rules/outputs (3 of 8 in use, mean); 8 more free in the "
                        "decode processes (decoders ahead)"), got


def test_frame_pool_census_keeps_to_the_steady_window():
    """With the tracked-frame count, samples before the first tracked frame (start-up: decode processes hold all
    their slots while they open their sources) and after the last one (the end) are left out of the means."""
    from pockit.pipeline.runner import Census

    pool = FramePool(10, 64, shared=False)
    pool.take_slots(10, object(), lambda h, s: None)
    cen = Census()
    for _ in range(5):
        cen.sample(pool, gpu=0, tracking=0, tracked=0)  # start-up: all 10 with the decode processes
    assert cen.mean() is None
    pool.count_acquired(6)
    cen.sample(pool, gpu=2, tracking=4, tracked=32)
    cen.sample(pool, gpu=2, tracking=2, tracked=64)  # 2 waiting for a batch
    pool.release_many([])
    pool.in_use = 0
    for _ in range(4):
        cen.sample(pool, gpu=0, tracking=0, tracked=64)  # the end: nothing more tracked
    m = cen.mean()
    assert m["samples"] == 2 and m["decode"] == 4.0 and m["gpu"] == 2.0 and m["tracking"] == 3.0
    assert m["batching"] == 1.0


def test_limiting_stage_says_where_the_frames_wait_when_no_stage_is_saturated():
    """No stage saturated: the pool census names where most frame slots were (as on the H200: CPU decode, 4
    tracking workers 69 % busy holding 269 slots)."""
    from pockit.pipeline.timing import limiting_stage

    meters = {"decode": {"busy_frac": 0.6, "wait_frac": 0.1, "units": 12},
              "tracking_rules": {"busy_frac": 0.69, "wait_frac": 0.0, "units": 4}}
    census = {"free": 8.0, "decode": 150.0, "batching": 14.0, "gpu": 56.0, "tracking": 269.0, "samples": 50}
    got = limiting_stage(meters, 0.2, census=census)
    assert got.startswith("tracking_rules (69% busy") and "no stage is saturated" in got
    assert got.endswith("; frame slots mostly in tracking/rules/outputs (269 of 489 in use, mean)")
    assert limiting_stage(meters, 0.2) == limiting_stage(meters, 0.2, census={"samples": 0})  # no census: as before
    sat = {"finish": {"busy_frac": 0.95, "wait_frac": 0.0, "units": 1}}
    assert limiting_stage(sat, 0.0, census=census) == "finish (95% busy over 1 unit(s))"  # saturated: no remark


def test_frames_message_round_trips_every_field_in_order():
    """The finisher packs a shard's frames into one message (four arrays instead of three per frame); the worker
    gets back exactly the tuples that went in: scalars, boxes, scores, class ids, extra data, NV12 flag, order."""
    import pickle

    from pockit.pipeline.streamwork import pack_frames, unpack_frames

    rng = np.random.default_rng(0)
    items = []
    for i, k in enumerate((3, 0, 5, 1)):
        data = {"kpt": rng.random((k, 2)).astype(np.float32)} if i == 2 else None
        items.append((7 + i, 100 + i, 576, 768, 10**9 + i, 12.345678901 + i, 98765.4321 + i,
                      rng.random((k, 4)).astype(np.float32), rng.random(k).astype(np.float32),
                      rng.integers(0, 80, k).astype(np.int32), data, i % 2 == 1))
    msg = pickle.loads(pickle.dumps(pack_frames(items), protocol=pickle.HIGHEST_PROTOCOL))
    back = list(unpack_frames(msg))
    assert len(back) == len(items)
    for a, b in zip(items, back):
        assert a[:7] == b[:7] and a[11] == b[11]
        assert all(type(x) is int for x in b[:5])
        np.testing.assert_array_equal(a[7], b[7])
        np.testing.assert_array_equal(a[8], b[8])
        np.testing.assert_array_equal(a[9], b[9])
        assert b[7].dtype == np.float32 and b[9].dtype == np.int32 and b[7].shape == (len(a[8]), 4)
        if a[10] is None:
            assert b[10] is None
        else:
            np.testing.assert_array_equal(a[10]["kpt"], b[10]["kpt"])
    empty = list(unpack_frames(pack_frames([items[1]])))
    assert empty[0][7].shape == (0, 4) and empty[0][10] is None
