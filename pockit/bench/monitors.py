"""Resource monitors sampled in a background thread while a benchmark runs.

- host: CPU utilisation and memory of this process and the system (psutil);
- NVIDIA GPUs: utilisation, memory, power and NVDEC load via NVML (``nvidia-ml-py``), where a driver is present;
- Jetson: ``tegrastats`` output (RAM, per-core CPU load@MHz, GR3D (iGPU) load, EMC, engines,
  temperatures, power rails), parsed by :func:`parse_tegrastats`, where the tool is present.

Absent sources are reported as ``{"available": false, "reason": ...}``, never silently dropped.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any

import psutil

from .stats import max_or_none, mean_or_none

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# tegrastats
# ----------------------------------------------------------------------------------------------

#: rails that measure the whole module input, in order of preference
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VDD_TOTAL")
#: temperature reported by a sensor that is powered off / absent
_TEMP_OFF = -256.0

_RE_DATE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4}\s+\d{2}:\d{2}:\d{2})\s+")
_RE_RAM = re.compile(r"\bRAM\s+(\d+)/(\d+)MB(?:\s*\(lfb\s+(\d+)x(\d+)([kM]B)\))?")
_RE_SWAP = re.compile(r"\bSWAP\s+(\d+)/(\d+)MB(?:\s*\(cached\s+(\d+)MB\))?")
_RE_CPU = re.compile(r"\bCPU\s+\[([^\]]*)\](?:@(\d+))?")
_RE_EMC = re.compile(r"\bEMC_FREQ\s+(\d+)%(?:@(\d+))?")
_RE_GR3D = re.compile(r"\b(GR3D2?_FREQ)\s+(?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_RE_ENGINE = re.compile(
    r"(?<![\w@])((?:NVENC|NVDEC|NVJPG|VIC|OFA|APE|NVDLA|DLA|PVA)\d*(?:_FREQ)?)\s+(off|\d+%@\d+|\d+)(?=\s|$)")
_RE_TEMP = re.compile(r"(?<![\w%@.])([A-Za-z][A-Za-z0-9_\-]*)@(-?\d+(?:\.\d+)?)C(?:/(-?\d+(?:\.\d+)?)C)?")
_RE_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*)\s+(\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_NOT_RAILS = {"RAM", "SWAP", "IRAM"}


class TegrastatsParseError(ValueError):
    """A line that is not tegrastats output."""


def parse_tegrastats(line: str) -> dict[str, Any]:
    """Parse one line of ``tegrastats`` output (JetPack 4 to 7 formats) into a dict.

    Keys (present when the line has them): ``time``, ``ram_used_mb``, ``ram_total_mb``, ``lfb``,
    ``swap_used_mb``, ``swap_total_mb``, ``swap_cached_mb``, ``cpu`` (per core: ``load_pct``,
    ``freq_mhz`` or ``off``), ``cpu_load_pct`` (mean over online cores), ``emc_load_pct``,
    ``emc_freq_mhz``, ``gpu_load_pct`` (GR3D), ``gpu_freq_mhz`` (list, one per GPC), ``engines``
    ({name: {"on": bool, "freq_mhz", "load_pct"}}), ``temps_c`` ({sensor: °C}; sensors reading
    -256 °C are off and left out), ``rails_mw`` ({rail: {"now", "avg"}}), ``power_mw`` and
    ``power_rail`` (the module input rail, or the sum of rails when none is named).
    Raises :class:`TegrastatsParseError` when the line has neither RAM nor CPU figures.
    """
    text = line.strip()
    out: dict[str, Any] = {}
    m = _RE_DATE.match(text)
    if m:
        out["time"] = m.group(1)
        text = text[m.end():]
    m = _RE_RAM.search(text)
    if m:
        out["ram_used_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
        if m.group(3):
            size = int(m.group(4)) * (1 if m.group(5) == "MB" else 1 / 1024)
            out["lfb"] = {"blocks": int(m.group(3)), "block_mb": size}
    m = _RE_SWAP.search(text)
    if m:
        out["swap_used_mb"], out["swap_total_mb"] = int(m.group(1)), int(m.group(2))
        if m.group(3):
            out["swap_cached_mb"] = int(m.group(3))
    m = _RE_CPU.search(text)
    if m:
        shared_freq = int(m.group(2)) if m.group(2) else None
        cores = []
        for i, tok in enumerate(t.strip() for t in m.group(1).split(",")):
            if not tok:
                continue
            if tok == "off":
                cores.append({"core": i, "off": True})
                continue
            cm = re.fullmatch(r"(\d+)%(?:@(\d+))?", tok)
            if not cm:
                raise TegrastatsParseError(f"unrecognised CPU entry {tok!r} in tegrastats line: {line!r}")
            freq = int(cm.group(2)) if cm.group(2) else shared_freq
            cores.append({"core": i, "load_pct": int(cm.group(1)), "freq_mhz": freq})
        out["cpu"] = cores
        online = [c["load_pct"] for c in cores if not c.get("off")]
        out["cpu_load_pct"] = sum(online) / len(online) if online else 0.0
    if "ram_used_mb" not in out and "cpu" not in out:
        raise TegrastatsParseError(f"not a tegrastats line (no RAM or CPU field): {line!r}")
    m = _RE_EMC.search(text)
    if m:
        out["emc_load_pct"] = int(m.group(1))
        if m.group(2):
            out["emc_freq_mhz"] = int(m.group(2))
    for m in _RE_GR3D.finditer(text):
        key = "gpu" if m.group(1) == "GR3D_FREQ" else "gpu2"
        if m.group(2) is not None:
            out[f"{key}_load_pct"] = int(m.group(2))
        if m.group(3):
            out[f"{key}_freq_mhz"] = [int(v) for v in m.group(3).split(",") if v]
    engines: dict[str, dict[str, Any]] = {}
    for m in _RE_ENGINE.finditer(text):
        name, val = m.group(1), m.group(2)
        if val == "off":
            engines[name] = {"on": False}
        elif "%" in val:
            load, freq = val.split("%@")
            engines[name] = {"on": True, "load_pct": int(load), "freq_mhz": int(freq)}
        else:
            engines[name] = {"on": True, "freq_mhz": int(val)}
    if engines:
        out["engines"] = engines
    temps = {}
    for m in _RE_TEMP.finditer(text):
        v = float(m.group(2))
        if v <= _TEMP_OFF:
            continue
        temps[m.group(1)] = v
    if temps:
        out["temps_c"] = temps
    rails = {}
    for m in _RE_RAIL.finditer(text):
        if m.group(1) in _NOT_RAILS:
            continue
        rails[m.group(1)] = {"now": int(m.group(2)), "avg": int(m.group(3))}
    if rails:
        out["rails_mw"] = rails
        for r in TOTAL_RAILS:
            if r in rails:
                out["power_mw"], out["power_rail"] = rails[r]["now"], r
                break
        else:
            out["power_mw"] = sum(v["now"] for k, v in rails.items() if k != "NC")
            out["power_rail"] = "sum of rails"
    return out


def find_tegrastats() -> str | None:
    """Path of the tegrastats binary (PATH, then /usr/bin), or None off Jetson."""
    p = shutil.which("tegrastats")
    if p:
        return p
    return "/usr/bin/tegrastats" if os.path.exists("/usr/bin/tegrastats") else None


# ----------------------------------------------------------------------------------------------
# NVML
# ----------------------------------------------------------------------------------------------

class _Nvml:
    """Thin NVML reader; ``available`` False with ``reason`` when there is no driver/GPU."""

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        self.handles: list[Any] = []
        self.names: list[str] = []
        self.mem_total_mb: list[float] = []
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            self.reason = "nvidia-ml-py (pynvml) is not installed"
            return
        self.nv = pynvml
        try:
            pynvml.nvmlInit()
            n = pynvml.nvmlDeviceGetCount()
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded ...
            self.reason = f"NVML unavailable: {e}"
            return
        if n == 0:
            self.reason = "NVML found no GPU"
            return
        for i in range(n):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            self.handles.append(h)
            self.names.append(name.decode() if isinstance(name, bytes) else str(name))
            self.mem_total_mb.append(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20)
        self.available = True

    def sample(self) -> list[dict[str, Any]]:
        nv, out = self.nv, []
        for i, h in enumerate(self.handles):
            s: dict[str, Any] = {"index": i}
            for key, fn in (
                ("util_pct", lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
                ("mem_used_mb", lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
                ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
                ("decoder_pct", lambda: nv.nvmlDeviceGetDecoderUtilization(h)[0]),
                ("temp_c", lambda: nv.nvmlDeviceGetTemperature(h, 0)),
            ):
                try:
                    s[key] = float(fn())
                except Exception:  # not supported on this board
                    s[key] = None
            out.append(s)
        return out

    def close(self) -> None:
        if self.available:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass


# ----------------------------------------------------------------------------------------------
# the monitor
# ----------------------------------------------------------------------------------------------

class ResourceMonitor:
    """Samples host, NVML and tegrastats figures every ``interval`` seconds in a background thread.

    Use as a context manager around the measured work; then :meth:`summary` gives JSON-ready
    means/maxima. ``samples`` keeps the raw time series (``t`` seconds from start).
    """

    def __init__(self, interval: float = 0.25, gpu: bool = True, tegrastats: bool = True,
                 pid: int | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"monitor interval must be > 0 s, got {interval}")
        self.interval = float(interval)
        self.proc = psutil.Process(pid or os.getpid())
        self.samples: list[dict[str, Any]] = []
        self.tegra_samples: list[dict[str, Any]] = []
        self.tegra_errors = 0
        self._want_gpu, self._want_tegra = gpu, tegrastats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tegra_proc: subprocess.Popen | None = None
        self._tegra_thread: threading.Thread | None = None
        self._tegra_reason = "disabled"
        self._nvml: _Nvml | None = None
        self._t0 = 0.0
        self._times = None  # the host's CPU times at the last sample (steal time between samples)
        self.cores = psutil.cpu_count(logical=True) or 1
        self.physical_cores = psutil.cpu_count(logical=False) or self.cores

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "ResourceMonitor":
        self._t0 = time.perf_counter()
        self.proc.cpu_percent(None)  # prime the counters (first call returns 0)
        psutil.cpu_percent(None)
        self._times = psutil.cpu_times()
        if self._want_gpu:
            self._nvml = _Nvml()
        if self._want_tegra:
            self._start_tegrastats()
        self._thread = threading.Thread(target=self._loop, name="pockit-bench-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._sample()  # one last sample at the end of the measured window
        if self._tegra_proc:
            self._tegra_proc.terminate()
            try:
                self._tegra_proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._tegra_proc.kill()
        if self._tegra_thread:
            self._tegra_thread.join(timeout=3)
        if self._nvml:
            self._nvml.close()

    def __enter__(self) -> "ResourceMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- sampling -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        try:
            with self.proc.oneshot():
                pcpu = self.proc.cpu_percent(None)
                rss = self.proc.memory_info().rss / 2**20
            vm = psutil.virtual_memory()
            steal = self._steal_pct()
            tcpu, trss, tpss, nproc = self._tree()
            s: dict[str, Any] = {
                "t": time.perf_counter() - self._t0,
                "tm": time.monotonic(),  # the pipeline's clock: which samples fall in its steady window
                "process_cpu_pct": pcpu,
                "system_cpu_pct": psutil.cpu_percent(None),
                # the share of the host's CPU time the hypervisor gave to someone else (a VM's 'steal'): a run
                # that is slower for no reason of its own shows it here (None where the OS does not count it)
                "system_steal_pct": steal,
                "process_rss_mb": rss,
                "system_mem_used_mb": (vm.total - vm.available) / 2**20,
                # this process and its children (decode, tracking/rules workers): CPU summed; memory as PSS
                # (shared pages, e.g. the frame pool, counted once), RSS summed for reference
                "tree_cpu_pct": pcpu + tcpu, "tree_rss_mb": rss + trss, "tree_pss_mb": tpss, "tree_processes": nproc,
            }
            if self._nvml and self._nvml.available:
                s["gpus"] = self._nvml.sample()
            self.samples.append(s)
        except Exception as e:  # the monitor must never break the benchmark
            log.warning("resource sample failed: %s", e)

    def _steal_pct(self) -> float | None:
        """Percent of all cores' time stolen by the hypervisor since the last sample (Linux VMs count it)."""
        now = psutil.cpu_times()
        last, self._times = self._times, now
        if last is None or not hasattr(now, "steal"):
            return None
        total = sum(now) - sum(last)
        return 100.0 * max(0.0, now.steal - last.steal) / total if total > 0 else 0.0

    def _tree(self) -> tuple[float, float, float | None, int]:
        """CPU % and RSS of the children (recursive), and PSS of the whole tree (None where unreadable)."""
        if not hasattr(self, "_children"):
            self._children: dict[int, psutil.Process] = {}
        cpu = rss = 0.0
        pss: float | None = 0.0
        # listing the children walks all of /proc (this thread shares the measured process's GIL: 7 % of its
        # samples in a 64-stream GPU profile when done every sample): at most every second, the processes kept
        now = time.perf_counter()
        if now - getattr(self, "_kids_t", -1e9) >= 1.0:
            self._kids_t = now
            try:
                self._kids = self.proc.children(recursive=True)
            except psutil.Error:
                self._kids = []
        kids = self._kids
        seen = set()
        for k in kids:
            p = self._children.setdefault(k.pid, k)
            seen.add(k.pid)
            try:
                with p.oneshot():
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss / 2**20
            except psutil.Error:
                seen.discard(k.pid)
                continue
        for pid in list(self._children):
            if pid not in seen:
                del self._children[pid]
        # PSS reads every process's smaps (costly, and this thread shares the measured process's GIL): at most
        # every 2 s, the last value in between
        if now - getattr(self, "_pss_t", -1e9) >= 2.0:
            self._pss_t = now
            for p in [self.proc, *kids]:
                try:
                    pss += p.memory_full_info().pss / 2**20
                except psutil.NoSuchProcess:  # a child that ended since the last listing
                    continue
                except (psutil.Error, AttributeError):
                    pss = None
                    break
            self._pss = pss
        return cpu, rss, getattr(self, "_pss", None), 1 + len(kids)

    def _start_tegrastats(self) -> None:
        path = find_tegrastats()
        if not path:
            self._tegra_reason = "tegrastats not found (not a Jetson)"
            return
        try:
            self._tegra_proc = subprocess.Popen(
                [path, "--interval", str(max(int(self.interval * 1000), 100))],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as e:
            self._tegra_reason = f"could not start {path}: {e}"
            return
        self._tegra_reason = ""
        self._tegra_thread = threading.Thread(target=self._read_tegrastats, daemon=True,
                                              name="pockit-bench-tegrastats")
        self._tegra_thread.start()

    def _read_tegrastats(self) -> None:
        assert self._tegra_proc and self._tegra_proc.stdout
        for line in self._tegra_proc.stdout:
            if not line.strip():
                continue
            try:
                rec = parse_tegrastats(line)
            except TegrastatsParseError:
                self.tegra_errors += 1
                continue
            rec["t"] = time.perf_counter() - self._t0
            self.tegra_samples.append(rec)

    # -- results --------------------------------------------------------------------------------
    def summary(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        """Means and maxima over the samples, JSON-ready. ``window``: the (first, last) time.monotonic() of the
        run's steady part (the pipeline's ``steady_window``): CPU means over the samples inside it are added as
        ``cpu.steady`` (start-up and model loading, a few idle cores, otherwise dilute the whole-run means)."""
        S = self.samples
        vm = psutil.virtual_memory()
        out: dict[str, Any] = {
            "interval_s": self.interval,
            "n_samples": len(S),
            "cpu": {
                "logical_cores": self.cores,
                "physical_cores": self.physical_cores,
                "process_pct_mean": mean_or_none(s["process_cpu_pct"] for s in S),
                "process_pct_max": max_or_none(s["process_cpu_pct"] for s in S),
                "process_cores_busy_mean": (mean_or_none(s["process_cpu_pct"] for s in S) or 0.0) / 100.0,
                "tree_cores_busy_mean": (mean_or_none(s.get("tree_cpu_pct") for s in S) or 0.0) / 100.0,
                "system_pct_mean": mean_or_none(s["system_cpu_pct"] for s in S),
                "system_pct_max": max_or_none(s["system_cpu_pct"] for s in S),
                "steal_pct_mean": mean_or_none(s.get("system_steal_pct") for s in S),
                "steal_pct_max": max_or_none(s.get("system_steal_pct") for s in S),
            },
            "memory": {
                "process_rss_mb_mean": mean_or_none(s["process_rss_mb"] for s in S),
                "process_rss_mb_max": max_or_none(s["process_rss_mb"] for s in S),
                "process_rss_mb_first": S[0]["process_rss_mb"] if S else None,
                "process_rss_mb_last": S[-1]["process_rss_mb"] if S else None,
                "system_used_mb_max": max_or_none(s["system_mem_used_mb"] for s in S),
                "tree_processes_max": max_or_none(s.get("tree_processes") for s in S),
                "tree_rss_mb_first": S[0].get("tree_rss_mb") if S else None,
                "tree_rss_mb_last": S[-1].get("tree_rss_mb") if S else None,
                "tree_pss_mb_first": S[0].get("tree_pss_mb") if S else None,
                "tree_pss_mb_last": S[-1].get("tree_pss_mb") if S else None,
                "tree_pss_mb_max": max_or_none(s.get("tree_pss_mb") for s in S),
                "system_total_mb": vm.total / 2**20,
            },
        }
        if window and window[0] is not None and window[1] is not None:
            W = [x for x in S if window[0] <= x.get("tm", -1.0) <= window[1]]
            out["cpu"]["steady"] = {
                "n_samples": len(W),
                "tree_cores_busy_mean": ((mean_or_none(x.get("tree_cpu_pct") for x in W) or 0.0) / 100.0
                                         if W else None),
                "system_pct_mean": mean_or_none(x["system_cpu_pct"] for x in W),
                "steal_pct_mean": mean_or_none(x.get("system_steal_pct") for x in W),
            }
        nv = self._nvml
        if nv is None:
            out["gpu"] = {"available": False, "reason": "disabled"}
        elif not nv.available:
            out["gpu"] = {"available": False, "reason": nv.reason}
        else:
            devs = []
            for i, name in enumerate(nv.names):
                g = [s["gpus"][i] for s in S if "gpus" in s]
                devs.append({
                    "index": i, "name": name, "mem_total_mb": nv.mem_total_mb[i],
                    "util_pct_mean": mean_or_none(x["util_pct"] for x in g),
                    "util_pct_max": max_or_none(x["util_pct"] for x in g),
                    "mem_used_mb_max": max_or_none(x["mem_used_mb"] for x in g),
                    "mem_used_mb_first": g[0]["mem_used_mb"] if g else None,
                    "mem_used_mb_last": g[-1]["mem_used_mb"] if g else None,
                    "power_w_mean": mean_or_none(x["power_w"] for x in g),
                    "decoder_pct_mean": mean_or_none(x["decoder_pct"] for x in g),
                    "temp_c_max": max_or_none(x["temp_c"] for x in g),
                })
            out["gpu"] = {"available": True, "devices": devs}
        out["jetson"] = summarize_tegrastats(self.tegra_samples, self._tegra_reason, self.tegra_errors)
        return out


def summarize_tegrastats(samples: list[dict[str, Any]], reason: str = "", errors: int = 0) -> dict[str, Any]:
    """Means/maxima of parsed tegrastats samples; ``available`` False with a reason when none."""
    if not samples:
        return {"available": False, "reason": reason or "no tegrastats samples were read"}
    temps: dict[str, list[float]] = {}
    for s in samples:
        for k, v in s.get("temps_c", {}).items():
            temps.setdefault(k, []).append(v)
    rails = sorted({r for s in samples for r in s.get("rails_mw", {})})
    return {
        "available": True,
        "n_samples": len(samples),
        "unparsed_lines": errors,
        "ram_used_mb_max": max_or_none(s.get("ram_used_mb") for s in samples),
        "ram_total_mb": samples[-1].get("ram_total_mb"),
        "cpu_load_pct_mean": mean_or_none(s.get("cpu_load_pct") for s in samples),
        "gpu_load_pct_mean": mean_or_none(s.get("gpu_load_pct") for s in samples),
        "gpu_load_pct_max": max_or_none(s.get("gpu_load_pct") for s in samples),
        "emc_load_pct_mean": mean_or_none(s.get("emc_load_pct") for s in samples),
        "power_w_mean": (lambda v: v / 1000 if v is not None else None)(
            mean_or_none(s.get("power_mw") for s in samples)),
        "power_rail": samples[-1].get("power_rail"),
        "rails_w_mean": {r: mean_or_none(s["rails_mw"][r]["now"] for s in samples if r in s.get("rails_mw", {})) / 1000
                         for r in rails},
        "temps_c_max": {k: max(v) for k, v in temps.items()},
    }
