"""CUDA MPS for a run whose decode processes use NVDEC.

Each NVDEC decode process has a CUDA context of its own; without MPS the GPU time-slices those contexts against
the model's, and the model waits (measured on a lent H200, 64 streams of 768x576, NVDEC in 3 decode processes,
same call: 2,757 frames/s = 67 % of the model alone without MPS, 3,177 = 78 % with it; benchmarks/README.md,
twelfth session). Under MPS (Multi-Process Service) the contexts of every process share one GPU context on the
MPS server and their kernels run side by side.

``pipeline.cuda_mps``: ``auto`` (default) starts a private MPS control daemon for this run when the model is on a
CUDA GPU, file sources are decoded by NVDEC in decode processes (``decoder: nvdec``; or ``decoder: auto`` video
files when PyNvVideoCodec is installed: under MPS those (H.264 / HEVC) then decode on NVDEC at any frame size, their
frames staying NV12 for the model unless ``nvdec_convert`` says otherwise), at least 4 sources (or
``decode_processes: true``), ``nvidia-cuda-mps-control`` is installed and this process has not touched CUDA yet;
``true`` asks for it whenever it can be had (a warning says why not); ``false`` never. A daemon someone already runs
(``CUDA_MPS_PIPE_DIRECTORY`` set, or the default pipe directory present) is used as it is. The private daemon lives
in a temporary pipe directory (no effect on other processes of the machine), is probed with a throw-away CUDA
context before anything relies on it (a daemon that cannot serve clients is stopped and the run goes on without MPS)
and is told to quit when this process exits (a detached shell: the daemon waits for its clients to finish, then its
directory is removed). Jetson has no MPS: never started there. A run killed with SIGKILL (or by the OOM killer)
leaves its daemon (``/tmp/pockit-mps-*``) running: the next run that starts one first stops the daemons whose owner
process is gone (the directory's ``owner`` file: pid and start time) and removes their directories. By hand:
``echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/pockit-mps-<suffix>/pipe nvidia-cuda-mps-control`` (the run.json's
``pipeline.cuda_mps`` names the directory).

What was used is in run.json (``pipeline.cuda_mps``).
"""
from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("pockit.pipeline")

CONTROL = "nvidia-cuda-mps-control"
DEFAULT_PIPE_DIR = "/tmp/nvidia-mps"

#: a child process creating (and dropping) a CUDA context through the driver API, no torch needed
_PROBE = r"""
import ctypes, sys
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print(f"no libcuda: {e}"); sys.exit(3)
ctx = ctypes.c_void_p(); dev = ctypes.c_int()
for name, call in (("cuInit", lambda: cuda.cuInit(0)), ("cuDeviceGet", lambda: cuda.cuDeviceGet(ctypes.byref(dev), 0)),
                   ("cuDevicePrimaryCtxRetain", lambda: cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev))):
    rc = call()
    if rc != 0:
        print(f"{name} failed with CUDA error {rc}"); sys.exit(4)
cuda.cuDevicePrimaryCtxRelease(dev)
print("ok")
"""

_state: dict = {"status": None, "daemon": None}


def control_binary() -> str | None:
    """``nvidia-cuda-mps-control`` on PATH or where NVIDIA's container runtime mounts it."""
    found = shutil.which(CONTROL)
    if found:
        return found
    for d in ("/usr/local/nvidia/bin", "/usr/bin", "/usr/local/bin"):
        p = Path(d) / CONTROL
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def running_elsewhere() -> str | None:
    """The pipe directory of an MPS daemon this process's CUDA contexts would already go through, or None."""
    d = os.environ.get("CUDA_MPS_PIPE_DIRECTORY")
    if d and (Path(d) / "control").exists():
        return d
    if not d and (Path(DEFAULT_PIPE_DIR) / "control").exists():
        return DEFAULT_PIPE_DIR
    return None


def cuda_initialized() -> bool:
    """Has this process created a CUDA context through torch already (it would not go through a daemon started
    now)?"""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a torch without CUDA
        return False


def is_jetson() -> bool:
    return Path("/etc/nv_tegra_release").exists()


def wants_mps(cfg, n_sources: int | None = None) -> tuple[bool, str]:
    """Does this config's run ask for MPS (see the module doc)? (wanted, why) from the config alone: nothing here
    touches CUDA. ``n_sources``: the streams the run will have (``pockit bench`` repeats one source)."""
    mode = getattr(cfg.pipeline, "cuda_mps", "auto")
    if mode is False:
        return False, "off (pipeline.cuda_mps: false)"
    if mode is True:
        return True, "asked for (pipeline.cuda_mps: true)"
    dev = str(cfg.model.device or "auto")
    if not (dev.startswith("cuda") or (dev in ("auto", "") and _has_nvidia_gpu())):
        return False, "not needed: the model is not on a CUDA GPU"
    if cfg.pipeline.decode_processes is False:
        return False, "not needed: no decode processes (pipeline.decode_processes: false)"
    if cfg.pipeline.decode_processes is not True and (n_sources or len(cfg.sources)) < 4:
        return False, "not needed: fewer than 4 sources decode in this process's threads"
    nvdec = [sc.id for sc in cfg.sources if (sc.options or {}).get("decoder") == "nvdec"]
    if nvdec:
        return True, f"NVDEC decode processes ({len(nvdec)} source(s) with decoder: nvdec)"
    auto = auto_nvdec_sources(cfg)
    if auto and importlib.util.find_spec("PyNvVideoCodec") is not None:
        return True, f"NVDEC decode processes ({len(auto)} video file(s) with decoder: auto, NVDEC at any size)"
    return False, "not needed: no source is decoded by NVDEC (decoder: nvdec, or auto with PyNvVideoCodec)"


def auto_nvdec_sources(cfg) -> list[str]:
    """Ids of the local video files whose ``decoder`` is auto: under MPS they decode on NVDEC at any frame size
    (``Pipeline._open_sources``); without it only from NVDEC_AUTO_MIN_PIXELS up."""
    from .runner import _is_video_file

    return [sc.id for sc in cfg.sources
            if (sc.options or {}).get("decoder", "auto") == "auto" and _is_video_file(str(sc.uri))]


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def probe(env: dict | None = None, timeout: float = 60.0) -> tuple[bool, str]:
    """Create and drop a CUDA context in a child process (through the daemon the environment names)."""
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout,
                           check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"probe did not finish: {type(e).__name__}: {e}"
    out = (r.stdout.strip() or r.stderr.strip()).splitlines()
    return r.returncode == 0, (out[-1] if out else f"exit code {r.returncode}")


DIR_PREFIX = "pockit-mps-"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), or None when there is no such
    process; "" where /proc cannot say (the process exists)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # another user's process: it exists
        return ""
    return ""


def _owner_alive(owner: Path) -> bool:
    """Is the process that wrote this ``owner`` file ("PID START") still the one running under that pid?"""
    try:
        pid_s, _, start = owner.read_text().strip().partition(" ")
        pid = int(pid_s)
    except (OSError, ValueError):
        return True  # unreadable: leave it alone
    now = _start_time(pid)
    return now is not None and (not start or not now or now == start)


def reap_stale(binary: str, root: str | None = None) -> list[str]:
    """Stop the private daemons of earlier runs whose process is gone (killed with SIGKILL: no atexit ran) and
    remove their directories; returns those directories. Directories without an ``owner`` file, or whose owner
    still runs, are left alone."""
    reaped = []
    for d in sorted(Path(root or tempfile.gettempdir()).glob(DIR_PREFIX + "*")):
        owner = d / "owner"
        if not d.is_dir() or not owner.is_file() or _owner_alive(owner):
            continue
        pipe = d / "pipe"
        if (pipe / "control").exists():
            env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(d / "log")}
            try:  # its clients died with the run: quit returns at once
                subprocess.run([binary], input="quit\n", env=env, capture_output=True, text=True, timeout=10,
                               check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                log.warning("CUDA MPS: the stale daemon in %s did not take 'quit': %s", d, e)
                continue
        shutil.rmtree(d, ignore_errors=True)
        reaped.append(str(d))
    if reaped:
        log.warning("CUDA MPS: stopped %d daemon(s) left by runs that were killed: %s", len(reaped), ", ".join(reaped))
    return reaped


class MpsDaemon:
    """A private MPS control daemon (pipe and log directories of its own)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        # who owns it: a later run stops it if this process dies without its atexit (SIGKILL)
        (self.dir / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid()) or ''}\n")
        self.env = {"CUDA_MPS_PIPE_DIRECTORY": str(self.dir / "pipe"),
                    "CUDA_MPS_LOG_DIRECTORY": str(self.dir / "log")}
        self._saved: dict[str, str | None] = {}
        self.started = False

    def start(self, timeout: float = 20.0) -> tuple[bool, str]:
        for d in self.env.values():
            Path(d).mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        try:
            r = subprocess.run([self.binary, "-d"], env=env, capture_output=True, text=True, timeout=timeout,
                               check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"{self.binary} -d: {type(e).__name__}: {e}"
        if r.returncode != 0:
            return False, f"{self.binary} -d exited with {r.returncode}: {(r.stderr or r.stdout).strip()[:200]}"
        self.started = True
        ok, why = probe(env)
        if not ok:
            self.stop(wait=True)
            return False, f"the daemon started but a CUDA context through it failed ({why}); {self.log_tail()}"
        for k, v in self.env.items():  # this process's CUDA context and every child's go through it
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        return True, f"started ({self.env['CUDA_MPS_PIPE_DIRECTORY']})"

    def log_tail(self, n: int = 3) -> str:
        try:
            lines = (Path(self.env["CUDA_MPS_LOG_DIRECTORY"]) / "control.log").read_text().splitlines()
            return "control.log: " + " | ".join(lines[-n:])
        except OSError:
            return "no control.log"

    def stop(self, wait: bool = False) -> None:
        """Tell the daemon to quit: it waits for its clients (this process included, when called at exit) to
        finish, then its directory is removed. ``wait``: block until then (no client left), else hand it to a
        detached shell and return at once."""
        if not self.started:
            return
        self.started = False
        script = f'echo quit | "{self.binary}"; rm -rf "{self.dir}"'
        env = {**os.environ, **self.env}
        try:
            if wait:
                subprocess.run(["sh", "-c", script], env=env, capture_output=True, timeout=30, check=False)
            else:
                subprocess.Popen(["sh", "-c", script], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("CUDA MPS daemon (%s) did not take 'quit': %s", self.dir, e)
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ensure_mps(cfg, n_sources: int | None = None) -> str:
    """Start (once per process) or find the MPS daemon this config's run wants; returns what happened, for
    run.json. Call before anything in this process touches CUDA."""
    wanted, why = wants_mps(cfg, n_sources)
    if not wanted:
        return why
    if _state["daemon"] is not None:
        return _state["status"]
    other = running_elsewhere()
    if other:
        return f"in use (a daemon already runs: {other})"
    if is_jetson():
        return "not available: Jetson has no CUDA MPS"
    binary = control_binary()
    if binary is None:
        msg = f"not available: {CONTROL} is not installed (NVIDIA driver utilities)"
        if getattr(cfg.pipeline, "cuda_mps", "auto") is True:
            _warn_once(f"pipeline.cuda_mps: {msg}")
        return msg
    if cuda_initialized():
        msg = ("not started: CUDA was already initialised in this process (load the detector after the run "
               "starts, or start the daemon before Python)")
        _warn_once(f"CUDA MPS {msg}")
        return msg
    reap_stale(binary)
    daemon = MpsDaemon(binary)
    ok, what = daemon.start()
    if not ok:
        log.warning("CUDA MPS not used: %s; NVDEC decode processes time-slice the GPU with the model", what)
        return f"failed: {what}"
    log.info("CUDA MPS daemon %s for the NVDEC decode processes", what)
    _state["daemon"], _state["status"] = daemon, f"{what}, for: {why}"
    atexit.register(daemon.stop)
    return _state["status"]


def _warn_once(msg: str) -> None:
    seen = _state.setdefault("warned", set())
    if msg not in seen:
        seen.add(msg)
        log.warning("%s", msg)


def mps_active() -> bool:
    """Do this process's new CUDA contexts (and its children's) go through an MPS daemon?"""
    return _state["daemon"] is not None or running_elsewhere() is not None
