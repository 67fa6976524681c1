"""The pipeline: Source -> Detector -> Tracker -> RuleEngine -> Sinks, for one or many streams.

:class:`Pipeline` wires the stages of this package (decode workers into a bounded frame pool, a batcher,
inference with launch/finish overlap where the backend has it, tracking + rules + outputs sharded by
stream over worker processes) and writes the run directory (layout in docs/CONTRACTS.md): run.json is
written at the start (status "running") and at the end, events are flushed as raised, and everything is
closed cleanly on Ctrl-C, on a source error or when a worker process dies.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import PocConfig, load_config
from ..core import Event
from ..resolve import resolve_path, resolve_uri
from .rundir import make_run_dir
from .timing import StageTimer

log = logging.getLogger("pockit.pipeline")
_END = object()


@dataclass
class SourceSummary:
    id: str
    uri: str
    frames: int = 0
    fps: float | None = None  # frames analysed per second
    native_fps: float | None = None  # the source's own rate: frame numbers (tracks, frame indices) count these
    width: int | None = None
    height: int | None = None
    duration_s: float = 0.0
    tracks: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunSummary:
    name: str
    run_dir: str
    frames: int
    wall_s: float
    fps: float
    sources: dict[str, SourceSummary]
    events_per_rule: dict[str, int]
    timings: dict[str, dict[str, float]]
    model: dict[str, Any]
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)
    pipeline: dict[str, Any] = field(default_factory=dict)
    delivery: dict[str, Any] = field(default_factory=dict)

    @property
    def all_delivered(self) -> bool:
        """False when a sink (webhook, MQTT) still holds events pending, dead-lettered or dropped."""
        return bool(self.delivery.get("all_delivered", True))

    @property
    def events_path(self) -> Path:
        return Path(self.run_dir) / "events.jsonl"

    def events(self) -> list[Event]:
        from ..core import read_events

        return read_events(self.events_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = {k: asdict(v) for k, v in self.sources.items()}
        return d

    def table(self) -> str:
        lines = [f"run: {self.run_dir}", f"{'source':<16}{'frames':>8}{'fps':>8}{'tracks':>8}  status"]
        for s in self.sources.values():
            status = "ERROR: " + s.error if s.error else "ok"
            fps = s.frames / self.wall_s if self.wall_s else 0.0
            lines.append(f"{s.id:<16}{s.frames:>8}{fps:>8.1f}{s.tracks:>8}  {status}")
        lines.append(f"total: {self.frames} frames in {self.wall_s:.1f} s = {self.fps:.1f} fps"
                     + ("  (interrupted)" if self.interrupted else ""))
        if self.events_per_rule:
            lines.append("events: " + ", ".join(f"{k}={v}" for k, v in sorted(self.events_per_rule.items())))
        else:
            lines.append("events: none")
        stages = "  ".join(f"{k} {v['mean_ms']:.1f}" for k, v in self.timings.items())
        lines.append(f"mean ms/frame: {stages}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # notebooks
        import html

        return "<pre>" + html.escape(self.table()) + "</pre>"


#: frames of at least this many pixels decode on NVDEC when the model is on CUDA and the source's decoder is auto:
#: 64 cameras on the lent H200, 1920x1080 (2.1 MP) 1,222 frames/s with NVDEC vs 739 on the CPU; 768x576 (0.44 MP)
#: 1,658 vs 2,241 (benchmarks/README.md). In between it is not measured; 1.5 MP puts 1080p and above on NVDEC.
NVDEC_AUTO_MIN_PIXELS = 1_500_000
INFLIGHT = 2  # batches launched and not yet finished (launch/finish overlap)
POOL_BYTES_MAX = 1.5 * 2**30  # default cap of the frame pool's memory
# default frame memory per decode process, in 768x576 frames: each process owns its share of the pool, and a slot
# stays taken from decode until its stream's worker is done with it (~60-150 ms at 32-64 unpaced streams); at
# ~300 frames/s a process, fewer than ~45 slots leave it waiting for a free one. Measured on the lent H200
# (benchmarks/README.md, seventh session): 32 streams, 12 processes, 384 slots: 2,813 frames/s; 640: 3,069.
# Larger frames decode proportionally slower and need proportionally fewer slots: the budget is in bytes
# (54 x 768 x 576 x 3 = 72 MB a process; 11 slots of 1080p)
DECODE_PROC_SLOTS = 54
DECODE_PROC_REF_BYTES = 768 * 576 * 3
# NVDEC decode processes hold more frames a stream in flight (a round over their streams, sent as one message,
# and NV12 copies from the GPU); under CUDA MPS, 64 streams of 768x576: 648 slots 3,268 frames/s (79 % of the model
# alone), 972 slots 3,521 (85 %), same call (benchmarks/README.md, twelfth session); 32 streams at batch 32, 15 slots
# a stream (480) 76-78 % in four runs, 20 (640) 78-87 %, median 87 % in five (thirteenth session; two more runs in a
# slow spell of the host, 52 and 59 %). At 64 streams the 1.5 GB cap (1,213 slots) leaves slots free: 76-82 %
NVDEC_PROC_SLOTS_PER_STREAM = 20
# auto decode processes when NVDEC decodes every file they would serve: NVDEC_DECODE_PROCS for frames of 768x576,
# in proportion to the frame's pixels above that, at most NVDEC_DECODE_PROCS_MAX. Measured on the lent H200 under
# CUDA MPS (benchmarks/README.md, twelfth session): 64 streams of 768x576, 3 processes 78-83 % of the model alone,
# 4 processes 72 %; 64 cameras of 1080p paced at 25 fps, 3 processes 963 frames/s (76 % busy, 10.8 s behind the
# cameras at the end), 8 processes kept up (0.005 s behind at the end, 102 of 19,200 frames dropped at start-up)
NVDEC_DECODE_PROCS = 3
NVDEC_DECODE_PROCS_MAX = 8
DECODE_SPARE_CORES = 4  # auto decode_threads = all cores but these (inference process + tracking workers)


class Census:
    """Where the frame pool's slots are, sampled now and then: ``free`` (in the pool), ``decode_free`` (free in the
    decode processes, as their latest messages said: the decoders are ahead and have room), ``decode`` (being
    decoded in a decode process, or decoded and on their way), ``batching`` (received, waiting for a batch),
    ``gpu`` (launched, not yet handed to tracking), ``tracking`` (sent to the tracking/rules workers, not yet
    back). A pipeline that has most slots in one place waits there: the pool's size is what ``decode`` starves of.

    ``tracked`` (frames tracked so far, given with each sample) keeps the means to the steady part of the run,
    the window steady_fps is measured over: samples before the first tracked frame (start-up: decode processes
    still opening their sources hold all their slots) and after the last one (the end: slots back home) are
    left out. Without it every sample counts."""

    PLACES = ("free", "decode_free", "decode", "batching", "gpu", "tracking")

    def __init__(self) -> None:
        self.sums = dict.fromkeys(self.PLACES, 0.0)
        self.n = 0
        self._kept = (dict(self.sums), 0)  # the sums up to the last sample that saw frames tracked
        self._tracked = 0

    def sample(self, pool, gpu: int, tracking: int, tracked: int | None = None, decode_free: int = 0) -> None:
        if tracked is not None and tracked <= 0:
            return  # start-up: nothing tracked yet
        free = pool.free_count()
        in_use = pool.in_use
        gpu = max(0, min(gpu, in_use))
        tracking = max(0, min(tracking, in_use - gpu))
        decode = max(0, pool.n - in_use - free)
        idle = max(0, min(int(decode_free), decode))
        got = {"free": free, "decode_free": idle, "decode": decode - idle,
               "batching": max(0, in_use - gpu - tracking), "gpu": gpu, "tracking": tracking}
        for k, v in got.items():
            self.sums[k] += v
        self.n += 1
        if tracked is None or tracked > self._tracked:  # still tracking frames: the window reaches this sample
            self._kept = (dict(self.sums), self.n)
            self._tracked = tracked or 0

    def mean(self) -> dict[str, float] | None:
        sums, n = self._kept
        if not n:
            return None
        return {**{k: round(v / n, 1) for k, v in sums.items()}, "samples": n}


class _Stream:
    """Per-source state kept by the main process."""

    def __init__(self, index: int, cfg, source) -> None:
        self.index, self.cfg, self.source = index, cfg, source
        self.summary = SourceSummary(id=cfg.id, uri=str(cfg.uri))
        self.decoder = None
        self.pbar = None
        self.realtime = bool(source.live) if cfg.realtime is None else bool(cfg.realtime)


class Pipeline:
    """Run a PoC config. ``Pipeline(cfg).run()`` returns a :class:`RunSummary`.

    One pipeline for every caller (``pockit run``, ``pockit bench``, :func:`pockit.run`, notebooks,
    benchmarks). Stages, each in its own module: decode workers (:mod:`.decode`, one thread per source,
    writing into the bounded :mod:`.framepool`), the :mod:`.batcher` (up to ``model.batch`` frames of any
    streams, waiting at most ``pipeline.max_wait_ms``), inference (``launch``/``finish`` overlap of two
    batches in flight for backends that have it, e.g. the torch GPU backend; a synchronous ``detect`` for
    the others), and tracking + rules + outputs sharded by stream over worker processes (:mod:`.workers`,
    :mod:`.streamwork`). Stage busy/wait, latencies and the limiting stage go to run.json.

    ``detector`` may be passed in (an already loaded :class:`pockit.inference.Detector`) to reuse a model.
    ``workers`` overrides ``pipeline.workers`` (0 = tracking/rules in a thread of this process).
    """

    def __init__(self, config: str | Path | dict | PocConfig, run_dir: str | Path | None = None,
                 detector=None, progress: bool = True, max_frames: int | None = None,
                 overwrite: bool = False, workers: int | None = None) -> None:
        self.cfg = load_config(config)
        self.run_dir_arg = run_dir
        self.detector = detector
        self.progress = progress
        self.max_frames = max_frames
        self.overwrite = overwrite
        self.workers_arg = workers
        self.timer = StageTimer()
        self._stop = threading.Event()
        self.failure: BaseException | None = None
        self._interrupted = False
        self.batch_sizes: list[int] = []

    # -- setup ---------------------------------------------------------------------------------
    def _open_sources(self, on_cuda: bool = False) -> list[_Stream]:
        """Open every source. With the model on CUDA, video files of >= NVDEC_AUTO_MIN_PIXELS whose ``decoder``
        is auto decode on the GPU's NVDEC where PyNvVideoCodec is installed (see VideoFileSource); under CUDA MPS
        (:mod:`.mps`) with at least 4 of them, at any size (H.264 / HEVC: VideoFileSource), their frames NV12 in the
        pool for the model."""
        from ..sources import open_source
        from .mps import auto_nvdec_sources, mps_active

        # the decode processes' CUDA contexts share the GPU under MPS (started for this run when the config asked
        # for NVDEC, pipeline.cuda_mps): then NVDEC carries more than CPU decode at 576p too (benchmarks/README.md,
        # twelfth session: 82-83 % of the model alone at 64 streams against 62-70 % with CPU decode)
        auto_any_size = (on_cuda and self.cfg.pipeline.cuda_mps is not False and mps_active()
                         and self.cfg.pipeline.decode_processes is not False
                         and (len(auto_nvdec_sources(self.cfg)) >= 4 or self.cfg.pipeline.decode_processes is True))
        streams = []
        try:
            for i, sc in enumerate(self.cfg.sources):
                uri = resolve_uri(sc.uri, self.cfg, field=f"sources[{i}].uri")
                max_frames = sc.max_frames
                if self.max_frames is not None:
                    max_frames = min(max_frames or self.max_frames, self.max_frames)
                kw = dict(uri=uri, source_id=sc.id, fps=sc.fps, max_frames=max_frames, start=sc.start,
                          loop=sc.loop, resize=sc.resize, **sc.options)
                if on_cuda and _is_video_file(uri) and "nvdec_min_pixels" not in kw:
                    kw["nvdec_min_pixels"] = NVDEC_AUTO_MIN_PIXELS
                    if auto_any_size and kw.get("decoder", "auto") == "auto":
                        kw["nvdec_min_pixels"] = 1  # NVDEC at any size: its decode processes run under MPS
                        kw.setdefault("nvdec_convert", "model")  # NV12 slots (back to cpu for other detectors)
                src = open_source(**kw)
                st = _Stream(i, sc, src)
                st.open_kwargs = kw  # a decode process reopens the source from these
                st.summary.uri = str(uri)
                st.summary.fps = float(sc.fps or src.fps or 25.0)
                st.summary.native_fps = float(src.fps) if src.fps else None
                streams.append(st)
        except BaseException:
            for st in streams:
                st.source.close()
            raise
        return streams

    def _load_detector(self):
        if self.detector is None:
            from ..inference import load_detector
            from ..inference.multi import load_multi

            m = self.cfg.model.model_copy()
            m.path = resolve_path(m.path, self.cfg)
            self.detector = load_multi(self.cfg, load_detector(m), lambda p: resolve_path(p, self.cfg))
        return self.detector

    def _n_workers(self, n_streams: int, gpu_decoded: bool = False) -> int:
        """Tracking/rules processes: ``pipeline.workers``, or auto = one per 8 streams (CPU decode needs the other
        cores), one per 4 when NVDEC decodes every stream in decode processes (they need little CPU). Measured on
        the lent H200 under CUDA MPS, 32 NVDEC streams: 4 workers 2,793 frames/s with 315 of 480 frame slots
        waiting in tracking, 8 workers 3,235 (benchmarks/README.md, twelfth session); CPU decode: 6 or 8 workers
        took the decoders' cores (62 / 50 % of the model alone against 63 % with 4, eleventh session)."""
        w = self.workers_arg if self.workers_arg is not None else self.cfg.pipeline.workers
        if w == "auto":
            import os

            cores = os.cpu_count() or 1
            per = 4 if gpu_decoded else 8
            # a process per `per` streams, leaving cores to decode and inference; a thread for a few streams
            w = 0 if n_streams <= 2 or cores < 4 else min(-(-n_streams // per), max(1, (cores - 2) // 2), 8)
        return max(0, min(int(w), n_streams))

    def _decode_threads(self, n_streams: int, nvdec: bool = False, pixels: int = 0) -> int:
        """Threads (or processes) decoding files: ``pipeline.decode_threads``, or auto = all cores but
        DECODE_SPARE_CORES (at least 2): the inference process and the worker processes need the rest. Measured on
        the lent H200's 16 cores (benchmarks/README.md, seventh session), 32 unpaced 576p streams: 12 decode
        processes 2,931 / 3,069 frames/s against 2,346 / 2,276 with 10 (cores - 6, the earlier default); 14 no
        better than 12 at 64 streams. ``nvdec`` (every stream decoded in processes is NVDEC's): auto =
        NVDEC_DECODE_PROCS for frames of 768x576 (the GPU decodes, a process has little CPU work and a CUDA context
        of its own), in proportion to ``pixels`` (the largest frame) above that, at most NVDEC_DECODE_PROCS_MAX."""
        d = self.cfg.pipeline.decode_threads
        if d == "auto" and nvdec:
            import math

            scale = max(1.0, pixels / (768 * 576)) if pixels else 1.0
            d = min(NVDEC_DECODE_PROCS_MAX, math.ceil(NVDEC_DECODE_PROCS * scale))
        elif d == "auto":
            import os

            d = max(2, (os.cpu_count() or 2) - DECODE_SPARE_CORES)
        return max(1, min(int(d), n_streams))

    def _process_decoded(self, streams: list[_Stream]) -> list[_Stream]:
        """The streams decoded in child processes (``pipeline.decode_processes``): file sources; NVDEC ones only
        with ``decode_processes: true`` or under CUDA MPS (:mod:`.mps`). Otherwise (auto) NVDEC streams are decoded
        in threads of this process, in its CUDA context: measured on the H200, NVDEC sessions in decode processes
        (a CUDA context each) took 3.8-6.1 ms a frame in the pipeline against 0.12-0.29 ms alone, the GPU
        time-slicing between contexts while the model runs (benchmarks/README.md, fifth session)."""
        import os

        from .mps import mps_active

        dp = self.cfg.pipeline.decode_processes
        nvdec_ok = dp is True or mps_active()  # under CUDA MPS the contexts are not time-sliced (pipeline.mps)
        files = [st for st in streams if not st.source.live
                 and (nvdec_ok or getattr(st.source, "decoder", None) != "nvdec")]
        if dp == "auto":
            dp = len(files) >= 4 and (os.cpu_count() or 1) >= 4
        return files if dp else []

    @staticmethod
    def _nv12_streams(streams: list[_Stream], detector, launchable: bool) -> int:
        """NVDEC streams whose frames stay NV12 in their pool slots (source option ``nvdec_convert: model``, or
        every NVDEC stream with ``POCKIT_NVDEC_NV12=1``): the detector converts them on the GPU as it letterboxes
        (``accepts_nv12``: the torch backend on CUDA; with any other detector such streams are converted by the
        decoder as usual), the tracking workers only for the frames an output or a rule looks at. The decoder
        then neither converts nor copies BGR. Opt-in: measured on the lent H200 (benchmarks/README.md, tenth
        session) the decoders took 0.5 instead of 1.1 ms a frame, but the run was slower (44-46 % of model-only
        against 58 %) while the workers converted every frame; the conversion is now made only on demand,
        not yet measured on a GPU. Returns how many streams."""
        import os

        ok = (launchable and bool(getattr(detector, "accepts_nv12", False))
              and os.environ.get("POCKIT_NVDEC_NV12") != "0")
        every = os.environ.get("POCKIT_NVDEC_NV12") == "1"
        n = 0
        for st in streams:
            src = st.source
            opts = getattr(src, "options", None)
            if getattr(src, "decoder", None) != "nvdec" or not isinstance(opts, dict):
                continue
            asked = opts.get("nvdec_convert") == "model"
            if not (asked or (every and opts.get("nvdec_convert") == "cpu")):
                continue
            conv = "model" if ok else "cpu"
            if asked and not ok and "nvdec_convert" in (st.cfg.options or {}):  # asked by the config, not by auto
                log.warning("source %s: nvdec_convert model needs a detector that takes NV12 frames (the torch "
                            "backend on CUDA, one model); converting on the CPU", st.cfg.id)
            opts["nvdec_convert"] = conv
            kw = getattr(st, "open_kwargs", None)
            if isinstance(kw, dict):
                kw["nvdec_convert"] = conv
            n += conv == "model"
        return n

    def _make_pool(self, streams: list[_Stream], batch: int, on_cuda: bool, processes: bool, decode_procs: int = 0,
                   nvdec_proc_streams: int = 0):
        """The bounded frame pool: ``pipeline.frame_slots``, or by default enough for the batches in flight and
        a frame per stream (batch x (INFLIGHT + 2) + streams) and, with ``decode_procs`` decode processes,
        the memory of DECODE_PROC_SLOTS 768x576 frames for each (54 slots at 576p, 11 at 1080p), and
        NVDEC_PROC_SLOTS_PER_STREAM for each of ``nvdec_proc_streams`` (streams NVDEC decodes in a decode
        process); capped at POOL_BYTES_MAX."""
        from .framepool import FramePool

        sizes = []
        for st in streams:
            size = st.source.size or st.source.native_size
            if size is None:
                size = (1920, 1080)
                log.warning("source %s: frame size unknown before the first frame; frame slots sized for 1920x1080",
                            st.cfg.id)
            sizes.append(size)
        slot_bytes = max(w * h * 3 for w, h in sizes)
        pc = self.cfg.pipeline
        per_proc = max(1, DECODE_PROC_SLOTS * DECODE_PROC_REF_BYTES // slot_bytes)
        n = pc.frame_slots or max(batch * (INFLIGHT + 2) + len(streams), per_proc * decode_procs,
                                  NVDEC_PROC_SLOTS_PER_STREAM * nvdec_proc_streams)
        if not pc.frame_slots and n * slot_bytes > POOL_BYTES_MAX:
            n = max(batch * (INFLIGHT + 1) + 1, int(POOL_BYTES_MAX // slot_bytes))
        return FramePool(n, slot_bytes, shared=processes, pin=on_cuda)

    def _write_record(self, record: dict[str, Any]) -> None:
        tmp = self.run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        tmp.replace(self.run_dir / "run.json")

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        from ..sinks import delivery_summary, make_sinks
        from ..sinks.delivery import QueuedSink
        from .batcher import Batcher
        from .decode import DecodeState, make_decode_workers
        from .streamwork import StreamSpec
        from .timing import Reservoir, StageMeter, limiting_stage
        from .workers import WorkerPool

        cfg = self.cfg
        from .mps import ensure_mps, mps_active
        from .rundir import refuse_existing_run

        refuse_existing_run(self.run_dir_arg, self.overwrite)  # before minutes of model loading, not after
        self.cuda_mps = ensure_mps(cfg)  # before this process's first CUDA context (the detector's)
        detector = self._load_detector()
        on_cuda = bool(getattr(detector, "is_cuda", False)) or str(cfg.model.device).startswith("cuda")
        streams = self._open_sources(on_cuda=on_cuda)
        self.run_dir = make_run_dir(cfg, self.run_dir_arg, self.overwrite)
        cfg.to_yaml(self.run_dir / "config.yaml")
        started = datetime.now().isoformat(timespec="seconds")
        from ..report.environment import run_environment

        env = self.env = run_environment()  # machine (CPU/GPU/Jetson model) and package versions
        if getattr(cfg.outputs, "box_id", None):
            env["box"] = cfg.outputs.box_id
        self._write_record({"name": cfg.name, "run_dir": str(self.run_dir), "status": "running", "started": started,
                            "config": cfg.redacted_dump(), **env,
                            "model": dict(getattr(detector, "info", {}) or {}),
                            "sources": {st.cfg.id: asdict(st.summary) for st in streams}})
        self.events_per_rule: Counter = Counter()
        sinks = make_sinks(cfg.outputs, self.run_dir)
        # an alarm goes into the network sinks' durable queues before the local files: a box killed between
        # the two writes then has it delivered (the next run resends its queue), not written here and never sent
        dispatch = sorted(sinks, key=lambda s: not isinstance(s, QueuedSink))
        names = dict(getattr(detector, "class_names", {}) or {})
        batch = max(1, int(cfg.model.batch))
        proc_decoded = self._process_decoded(streams)
        nvdec_proc = sum(getattr(st.source, "decoder", None) == "nvdec" for st in proc_decoded)
        all_nvdec = bool(proc_decoded) and nvdec_proc == len(proc_decoded)
        # every stream NVDEC's, in decode processes: the decoders leave the host's cores to the workers
        n_workers = self._n_workers(len(streams), gpu_decoded=all_nvdec and len(proc_decoded) == len(streams))
        px = max((w * h for w, h in (st.source.size or st.source.native_size or (0, 0) for st in proc_decoded)),
                 default=0)
        n_decode_procs = self._decode_threads(len(proc_decoded), nvdec=all_nvdec, pixels=px) if proc_decoded else 0
        pool = self._make_pool(streams, batch, on_cuda, processes=n_workers > 0 or bool(proc_decoded),
                               decode_procs=n_decode_procs,
                               nvdec_proc_streams=nvdec_proc)
        if proc_decoded and pool.name is None:
            log.warning("decoding in threads: shared frame memory is unavailable")
            proc_decoded = []
        overlap = callable(getattr(detector, "launch", None)) and callable(getattr(detector, "finish", None))
        # a CPU detector with several requests in flight (model.requests): launch hands the frames to one of its
        # threads, finish waits for that call; the call's own stage times come back with the finish
        cpu_requests = overlap and int(getattr(detector, "requests", 1) or 1) > 1
        from ..inference.multi import MultiDetector

        by_source = isinstance(detector, MultiDetector)  # extra models may run on some sources only
        nv12_streams = self._nv12_streams(streams, detector, overlap and not cpu_requests and not by_source)
        stream_ids = [st.cfg.id for st in streams]
        meters = {"decode": StageMeter("decode", len(streams)), "inference": StageMeter("inference"),
                  "finish": StageMeter("finish"), "tracking_rules": StageMeter("tracking_rules", max(1, n_workers))}
        lat_tracked, lat_event = Reservoir(), Reservoir()
        ready: queue.SimpleQueue = queue.SimpleQueue()
        by_index = {st.index: st for st in streams}
        dead_workers: list[str] = []

        progress = self.progress
        total_bar = None
        if progress:
            from tqdm.auto import tqdm

            if len(streams) <= 8:
                for i, st in enumerate(streams):
                    st.pbar = tqdm(total=st.source.total, desc=st.cfg.id, position=i, unit="frame", leave=True,
                                   dynamic_ncols=True)
            else:
                totals = [st.source.total for st in streams]
                total_bar = tqdm(total=sum(totals) if all(t is not None for t in totals) else None,
                                 desc=f"{len(streams)} streams", unit="frame", dynamic_ncols=True)

        flow = {"first": None, "last": None, "first_n": 0, "n": 0}  # steady throughput (after start-up)

        def on_result(msg) -> None:  # the results thread: the only writer of events and sinks
            kind = msg[0]
            if kind == "done":
                _, wid, slots, counts, events, lats, busy = msg
                if counts:
                    n_done = sum(counts.values())
                    if flow["first"] is None:
                        flow["first"], flow["first_n"] = time.monotonic(), n_done
                    flow["last"] = time.monotonic()
                    flow["n"] += n_done
                pool.release_many(slots)
                meters["tracking_rules"].add(busy=busy, items=len(slots))
                lat_tracked.extend(lats)
                for s, n in counts.items():
                    st = by_index[s]
                    st.summary.frames += n
                    if st.pbar is not None:
                        st.pbar.update(n)
                if total_bar is not None and counts:
                    total_bar.update(sum(counts.values()))
                now = time.monotonic()
                for s, d, tcap in events:
                    ev = Event.from_dict(d)
                    for sink in dispatch:
                        try:
                            sink.write(ev)
                        except Exception as e:
                            log.error("sink %s failed on event %s: %s", type(sink).__name__, ev.id, e)
                    if ev.end is None:  # closing records (crowd end) are not new alarms
                        self.events_per_rule[ev.rule] += 1
                        if tcap is not None:
                            lat_event.add(now - tcap)
            elif kind == "final":
                _, wid, s, summ = msg
                st = by_index[s]
                st.summary.width, st.summary.height = summ["width"], summ["height"]
                st.summary.tracks = summ["tracks"]
                st.summary.duration_s = float(summ["last_ts"]) if summ["frames"] else 0.0
            elif kind == "error":
                _, wid, s, text = msg
                if s is None:
                    dead_workers.append(text.splitlines()[0])
                    log.error("%s", text)
                else:
                    st = by_index[s]
                    st.summary.error = st.summary.error or text
                    if st.decoder is not None:
                        st.decoder.stop_me.set()
            elif kind == "dead":
                _, wid, dead_streams, code, slots = msg
                pool.release_many(slots)
                ids = [by_index[s].cfg.id for s in dead_streams]
                text = (f"tracking/rules worker process {wid} died (exit code {code}); its streams "
                        f"{ids} stopped; events raised before are kept")
                log.error("%s", text)
                for s in dead_streams:
                    st = by_index[s]
                    st.summary.error = st.summary.error or f"worker process died (exit code {code}) after " \
                                                           f"{st.summary.frames} frames"
                    if st.decoder is not None:
                        st.decoder.stop_me.set()
                dead_workers.append(text)
            elif kind == "bye":
                self.timer.merge(msg[2])

        specs = [StreamSpec(st.index, st.cfg.id, st.summary.fps, st.source.size or st.source.native_size)
                 for st in streams]
        base_dir = str(cfg.base_dir) if getattr(cfg, "base_dir", None) is not None else None
        workers = WorkerPool(max(1, n_workers), specs, processes=n_workers > 0, cfg_data=cfg.model_dump(mode="json"),
                             base_dir=base_dir, run_dir=str(self.run_dir), class_names=names, pool=pool,
                             on_result=on_result)
        if n_workers > 0 and not workers.processes:
            log.warning("tracking/rules run in a thread: shared frame memory is unavailable")
        batcher = Batcher(ready, batch, cfg.pipeline.max_wait_ms / 1000.0)
        inflight: queue.Queue = queue.Queue(maxsize=INFLIGHT)
        interrupted = False
        t_start = time.perf_counter()

        def inference_failed(e: BaseException, refs: list) -> None:
            """The model call failed (or Ctrl-C landed inside it): stop, and free the batch's frames."""
            if isinstance(e, KeyboardInterrupt):
                self._interrupted = True
            else:
                self.failure = self.failure or e
                log.error("inference failed: %s: %s", type(e).__name__, e)
            self._stop.set()  # the decoders stop too: nothing more can be analysed
            pool.release_many(r.slot for r in refs)

        # the launch thread's waits for frames (the batcher) and for the finish (both batches in flight); the
        # finish's for the GPU to compute a batch
        waits = {"launch_for_frames_s": 0.0, "launch_for_finish_s": 0.0, "finish_for_gpu_s": 0.0}
        if cpu_requests:  # the finish's waits for the CPU requests (not for a GPU)
            waits = {"launch_for_frames_s": 0.0, "launch_for_finish_s": 0.0, "finish_for_requests_s": 0.0}
            meters["inference"].units = detector.requests

        # where the frame slots are (sampled by the main thread, mean over the steady window in run.json's
        # frame_pool.census): frames launched and not yet handed to the workers are counted here, each counter
        # written by one thread only
        on_gpu = {"launched": 0, "finished": 0}
        census = Census()
        # CPU time of the inference process's busiest threads (their "busy" also holds waits for the interpreter
        # lock and for CUDA syncs: busy minus CPU is roughly that), and of the whole process
        thread_cpu: dict[str, float] = {}
        cpu0 = time.process_time()

        def cpu_timed(name: str, loop):
            """``loop`` as a thread's target that books the thread's CPU seconds under ``name``."""
            def run() -> None:
                c0 = time.thread_time()
                try:
                    loop()
                finally:
                    thread_cpu[name] = time.thread_time() - c0
            return run

        def launcher() -> None:
            live = len(streams)
            while live:
                items = batcher.next()
                frames = []
                for it in items:
                    if hasattr(it, "slot"):
                        frames.append(it)
                    else:
                        live -= 1
                        frames.append(it)  # end markers keep their place in the stream's order
                refs = [f for f in frames if hasattr(f, "slot")]
                if refs and (self._stop.is_set() or self.failure is not None):
                    pool.release_many(r.slot for r in refs)  # stopping: frames not yet inferred are let go
                    frames = [f for f in frames if not hasattr(f, "slot")]
                    refs = []
                if not frames:
                    continue
                result = None
                if refs:
                    t0 = time.perf_counter()
                    try:
                        images = [pool.nv12_view(r.slot, r.h, r.w) if r.nv12 else pool.view(r.slot, r.h, r.w)
                                  for r in refs]
                        result = (detector.launch(images, pinned=pool.pinned) if overlap
                                  else detector.detect(images, sources=[stream_ids[r.stream] for r in refs])
                                  if by_source else detector.detect(images))
                    except BaseException as e:
                        inference_failed(e, refs)
                        frames = [f for f in frames if not hasattr(f, "slot")]
                        refs = []
                    dt = time.perf_counter() - t0
                    if not cpu_requests:  # else the requests' own time is booked by the finish
                        meters["inference"].add(busy=dt, items=len(refs))
                    if refs:
                        on_gpu["launched"] += len(refs)
                        self.batch_sizes.append(len(refs))
                        lt = getattr(detector, "last_timings", None) if not overlap else None
                        if lt:
                            for stage in ("preprocess", "inference", "postprocess"):
                                if stage in lt:
                                    self.timer.add(stage, lt[stage], len(refs))
                        elif overlap and not cpu_requests:
                            self.timer.add("preprocess", dt, len(refs))  # upload + letterbox + enqueue
                t1 = time.perf_counter()
                inflight.put((frames, result))
                waits["launch_for_finish_s"] += time.perf_counter() - t1
            waits["launch_for_frames_s"] = batcher.wait_s
            meters["inference"].add(wait=waits["launch_for_frames_s"] + waits["launch_for_finish_s"])

        def finisher() -> None:
            while True:
                t0 = time.perf_counter()
                got = inflight.get()
                t1 = time.perf_counter()
                meters["finish"].add(wait=t1 - t0)
                if got is None:
                    return
                frames, result = got
                refs = [f for f in frames if hasattr(f, "slot")]
                dets = []
                gw = 0.0  # of this call: waiting for the GPU to compute the batch (a wait, not the finish's work)
                if refs:
                    try:
                        dets = detector.finish(result) if overlap else result
                        if cpu_requests:  # the call's own stage times; the finish only waited for it
                            ft = detector.last_finish_timings
                            for stage in ("preprocess", "inference", "postprocess"):
                                self.timer.add(stage, ft[stage], len(refs))
                            meters["inference"].add(busy=ft["preprocess"] + ft["inference"] + ft["postprocess"],
                                                    items=len(refs))
                            gw = ft["wait"]
                            waits["finish_for_requests_s"] += gw
                        elif overlap:
                            ft = getattr(detector, "last_finish_timings", None)
                            if ft:  # the GPU's model time as the finish saw it, and NMS + copy to the host
                                gw = ft.get("inference", 0.0)
                                self.timer.add("inference", gw, len(refs))
                                self.timer.add("postprocess", ft.get("postprocess", 0.0), len(refs))
                                waits["finish_for_gpu_s"] += gw
                            else:
                                self.timer.add("inference", time.perf_counter() - t1, len(refs))  # GPU wait + NMS
                    except BaseException as e:
                        inference_failed(e, refs)
                        refs, dets = [], []
                per_shard: dict[int, list] = {}
                k = 0
                for f in frames:
                    if hasattr(f, "slot"):
                        if not refs:
                            continue
                        d = dets[k]
                        k += 1
                        per_shard.setdefault(workers.shard_of[f.stream], []).append(
                            (f.stream, f.slot, f.h, f.w, f.index, f.timestamp, f.t_capture, d.xyxy, d.scores,
                             d.class_ids, d.data or None, f.nv12))
                    else:
                        if per_shard:
                            pool.release_many(workers.send_frames(per_shard))
                            per_shard = {}
                        workers.end_stream(f.stream)
                if per_shard:
                    pool.release_many(workers.send_frames(per_shard))
                on_gpu["finished"] += len(refs)
                meters["finish"].add(busy=time.perf_counter() - t1 - gw, wait=gw, items=len(refs))

        decoders: list = []
        dprocs = None
        t_launch = threading.Thread(target=cpu_timed("launch", launcher), name="batch-infer", daemon=True)
        t_finish = threading.Thread(target=cpu_timed("finish", finisher), name="infer-finish", daemon=True)
        try:
            workers.start()
            in_proc = {st.index for st in proc_decoded}
            for st in streams:
                st.decoder = DecodeState(st.index, st.source, st.realtime)
            in_threads = [st.decoder for st in streams if st.index not in in_proc]
            decoders = make_decode_workers(in_threads, pool, ready, stop=self._stop, timer=self.timer,
                                           meter=meters["decode"], threads=self._decode_threads(len(streams)))
            if proc_decoded:
                from .decodeproc import DecodeProcesses

                dprocs = DecodeProcesses([st.decoder for st in proc_decoded], n_decode_procs,
                                         pool, ready if in_threads else None,
                                         open_kwargs={st.index: _one_thread(st) for st in proc_decoded},
                                         timer=self.timer, meter=meters["decode"], thread_streams=len(in_threads),
                                         nice=cfg.pipeline.decode_nice)
                for st in proc_decoded:
                    st.decoder = dprocs.states[st.index]
                batcher.ready = dprocs.ready
                dprocs.start()
            meters["decode"].units = len(decoders) + (len(dprocs.procs) if dprocs else 0)
            t_launch.start()
            t_finish.start()
            for d in decoders:
                d.start()
            while t_launch.is_alive():
                try:
                    t_launch.join(0.2)
                    census.sample(pool, on_gpu["launched"] - on_gpu["finished"], workers.outstanding(), flow["n"],
                                  dprocs.idle_slots() if dprocs is not None else 0)
                    if dprocs is not None and self._stop.is_set():
                        dprocs.stop()
                except KeyboardInterrupt:
                    if not interrupted:
                        interrupted = True
                        log.warning("interrupted: finishing frames in flight, flushing outputs to %s", self.run_dir)
                        self._stop.set()
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
        except Exception as e:  # e.g. a worker or decode process that cannot start: flushed and recorded below
            log.error("pipeline failed to start or run: %s: %s", type(e).__name__, e)
            self.failure = self.failure or e
        finally:
            self._stop.set()
            if dprocs is not None:
                dprocs.stop()
            while t_launch.is_alive():  # a second Ctrl-C does not skip the flush
                try:
                    t_launch.join(0.2)
                except KeyboardInterrupt:
                    continue
            while True:
                try:
                    if t_finish.is_alive():
                        inflight.put(None)
                        while t_finish.is_alive():
                            t_finish.join(0.2)
                    workers.close()
                    break
                except KeyboardInterrupt:
                    continue
            wall = time.perf_counter() - t_start
            thread_cpu["results"] = getattr(workers, "collector_cpu_s", 0.0)
            thread_cpu["inference_process"] = time.process_time() - cpu0
            for d in decoders:
                d.join(timeout=2)
            if dprocs is not None:
                dprocs.close()
            for st in streams:
                if st.pbar is not None:
                    st.pbar.close()
                try:
                    st.source.close()
                except Exception:
                    pass
            if total_bar is not None:
                total_bar.close()
            for s in sinks:
                try:
                    s.close()
                except Exception as e:
                    log.error("closing sink %s failed: %s", type(s).__name__, e)
            try:
                delivery = delivery_summary(sinks)
            except Exception as e:  # never lose run.json over the summary
                delivery = {"all_delivered": False, "problems": [f"delivery summary failed: {e}"]}
            pool_info = {"slots": pool.n, "slot_bytes": pool.slot_bytes, "shared": pool.name is not None,
                         "pinned": pool.pinned, "high_water": pool.high_water,
                         "bytes": pool.n * pool.slot_bytes, "census": census.mean()}
            pool.close()
        failure = self.failure
        interrupted = interrupted or self._interrupted
        if interrupted:
            log.warning("interrupted: outputs flushed to %s", self.run_dir)
        for st in streams:
            dec = st.decoder
            st.summary.stats = dict(getattr(st.source, "stats", {}) or {})
            if dec is not None:
                if getattr(dec, "stats", None) is not None:  # decoded in a child process: its source's stats
                    st.summary.stats = dict(dec.stats)
                st.summary.stats["dropped_pipeline"] = dec.dropped
                if dec.error and st.summary.error is None:
                    st.summary.error = dec.error
            early = st.summary.stats.get("ended_early")
            if early and st.summary.error is None:
                st.summary.error = f"decoding ended early: {early}"
            if st.summary.frames == 0 and st.summary.error is None and not interrupted and failure is None:
                st.summary.error = "no frames decoded"
        total = sum(st.summary.frames for st in streams)
        stage_meters = {k: m.summary(wall) for k, m in meters.items()}
        timings = self.timer.summary()
        # the batcher starved: the launch thread waited for frames (not for the finish) most of the time
        starve = (waits["launch_for_frames_s"] / max(wall, 1e-9)
                  if stage_meters["inference"]["busy_frac"] < 0.5 else 0.0)
        lags = [st.decoder.lag for st in streams if st.decoder is not None and st.realtime and not st.source.live]
        lag = max(lags) if lags else None
        # time.monotonic() of the first and last tracked frames: the window steady_fps is measured over (the
        # bench's resource monitor takes its steady CPU figures from the same window)
        self.steady_window = (flow["first"], flow["last"])
        nvdec_procs = (sum(any(getattr(dprocs.states[i].source, "decoder", None) == "nvdec" for i in p.streams)
                           for p in dprocs.procs) if dprocs is not None else 0)
        under_mps = mps_active()
        pipe = {
            "workers": n_workers, "worker_kind": "process" if workers.processes else "thread",
            "decoders": {"processes": len(dprocs.procs) if dprocs else 0, "threads": len(decoders),
                         "process_niceness": sorted({v for v in dprocs.niceness.values() if v is not None})
                         if dprocs else []},
            "max_batch": batch, "max_wait_ms": cfg.pipeline.max_wait_ms, "launch_finish_overlap": overlap,
            "nv12_streams": nv12_streams, "cuda_mps": self.cuda_mps if not under_mps or nvdec_procs else
            f"{self.cuda_mps} (no NVDEC decode process in this run)",
            "steady_fps": (round((flow["n"] - flow["first_n"]) / (flow["last"] - flow["first"]), 2)
                           if flow["first"] is not None and flow["last"] > flow["first"] else None),
            "inference_calls": len(self.batch_sizes),
            "thread_waits_s": {k: round(v, 4) for k, v in waits.items()},
            "mean_batch": round(sum(self.batch_sizes) / len(self.batch_sizes), 3) if self.batch_sizes else None,
            "frame_pool": pool_info, "stages": stage_meters,
            # CPU seconds over the run: the launch thread (batcher + upload/letterbox/launch), the finish thread
            # (NMS, copy to host, routing to the workers), the results thread, and the whole inference process
            # (decode threads included); against the stages' busy fractions it shows how much of "busy" was
            # waiting for the interpreter lock or a CUDA sync
            "cpu_s": {k: round(v, 3) for k, v in thread_cpu.items()},
            "dropped": sum(st.decoder.dropped for st in streams if st.decoder is not None),
            "latency_capture_to_tracked": lat_tracked.summary(), "latency_capture_to_event": lat_event.summary(),
            "limiting_stage": limiting_stage(
                stage_meters, starve, realtime_lag=lag,
                unpaced=bool(streams) and all(not st.realtime and not st.source.live for st in streams),
                decode_ms=timings.get("decode", {}).get("mean_ms"),
                gpu_wait=waits["finish_for_gpu_s"] / max(wall, 1e-9) if overlap and not cpu_requests else None,
                launch_blocked=(waits["launch_for_finish_s"] / max(wall, 1e-9) if overlap and not cpu_requests
                                else None),
                census=pool_info.get("census"), nvdec_procs=nvdec_procs, mps=under_mps),
        }
        if lag is not None:  # realtime files: how far behind their own clock the slowest stream ended
            pipe["realtime_lag_s"] = round(lag, 3)
            pipe["realtime_max_lag_s"] = round(max(st.decoder.max_lag for st in streams if st.decoder is not None), 3)
        if cpu_requests:
            pipe["inference_requests"] = detector.requests
            pipe["note"] = (f"{detector.requests} CPU inference calls in flight (model.requests): 'preprocess', "
                            "'inference', 'postprocess' are each call's own times; calls overlap, so their sum "
                            "exceeds the wall time per frame")
        elif overlap:
            pipe["note"] = ("launch/finish overlap: 'preprocess' = upload + letterbox + model launch, 'inference' = "
                            "waiting for the GPU to finish the model, 'postprocess' = NMS + copy to the host (a "
                            "backend that does not split them: 'inference' = both)")
        summary = RunSummary(
            name=cfg.name, run_dir=str(self.run_dir), frames=total, wall_s=wall,
            fps=total / wall if wall > 0 else 0.0,
            sources={st.cfg.id: st.summary for st in streams},
            events_per_rule={r.name: self.events_per_rule.get(r.name, 0) for r in cfg.rules},
            timings=timings, model=dict(getattr(detector, "info", {}) or {}),
            interrupted=interrupted,
            errors=[f"{st.cfg.id}: {st.summary.error}" for st in streams if st.summary.error]
            + [f"pipeline: {t}" for t in dead_workers if not t.startswith("tracking/rules worker process")]
            + ([f"pipeline: {type(failure).__name__}: {failure}"] if failure is not None else []),
            pipeline=pipe, delivery=delivery,
        )
        status = "failed" if failure is not None else "interrupted" if interrupted else \
            "errors" if summary.errors else "undelivered" if not summary.all_delivered else "ok"
        record = summary.to_dict()
        record.update(status=status, config=cfg.redacted_dump(), **self.env, started=started,
                      finished=datetime.now().isoformat(timespec="seconds"),
                      batch=cfg.model.batch, tracks_per_source={k: v.tracks for k, v in summary.sources.items()})
        self._write_record(record)
        if failure is not None:
            raise RuntimeError(f"run failed after {total} frames: {type(failure).__name__}: {failure} "
                               f"(events, tracks and run.json so far are in {self.run_dir})") from failure
        return summary


def _is_video_file(uri) -> bool:
    """A local video file (where NVDEC could apply), not images, a camera or a network stream."""
    from ..sources import detect_kind

    try:
        return detect_kind(uri) == "video" and "://" not in str(uri)
    except Exception:
        return False


def _one_thread(st: _Stream) -> dict:
    """open_source arguments of a stream decoded in a decode process: one FFmpeg thread per video (each
    process serves several streams in turn) unless the source's options say otherwise."""
    kw = dict(st.open_kwargs)
    if getattr(st.source, "kind", None) == "video" and "threads" not in kw:
        kw["threads"] = 1
    return kw


def run(config, run_dir=None, detector=None, progress: bool = True, max_frames: int | None = None,
        overwrite: bool = False, workers: int | None = None, live=None) -> RunSummary:
    """Run a PoC config (YAML path, dict or PocConfig) to the end; returns the :class:`RunSummary`.

    run_dir: where outputs go (default ``outputs.dir/<name>-<time>``); an earlier run there is
    refused unless ``overwrite``. detector: an already loaded detector to reuse. workers: processes for
    tracking/rules/outputs (default ``pipeline.workers``; 0 = a thread of this process).
    live: serve the annotated live view (MJPEG, ``pockit.sinks.live``) while it runs: True (defaults:
    http://127.0.0.1:8090/), a :class:`pockit.config.LiveConfig`, or None (only if ``outputs.live`` is set)."""
    p = Pipeline(config, run_dir=run_dir, detector=detector, progress=progress, max_frames=max_frames,
                 overwrite=overwrite, workers=workers)
    if not live and p.cfg.outputs.live is None:
        return p.run()
    from ..config import LiveConfig
    from ..sinks.live import serving

    with serving(p.cfg, LiveConfig() if live is True else (live or None)) as server:
        if server is not None:
            log.warning("live view of %s: %s", p.cfg.name, server.url)
        return p.run()
