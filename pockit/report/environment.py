"""The machine and software a run ran on, for run.json (``machine``, ``versions``) and the report.

:func:`run_environment` is what the pipeline stores in run.json; the report reads it back with
:func:`machine_rows` (older run.json files without ``machine`` show "not recorded" instead of the
report machine's own, which did not run the analysis).
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: module -> distribution names to ask importlib.metadata for, in order (the module itself may lack __version__,
#: as ``trackers`` does, which made run.json say "trackers ?")
PACKAGES: dict[str, tuple[str, ...]] = {
    "pockit": ("pockit",),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    "openvino": ("openvino",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "torch": ("torch",),
    "ultralytics": ("ultralytics-opencv-headless", "ultralytics"),
    "trackers": ("trackers",),
    "supervision": ("supervision",),
    "pydantic": ("pydantic",),
    "av": ("av",),
}


def software_versions() -> dict[str, str]:
    """Python, OS and the installed version of each package in :data:`PACKAGES` (from the installed
    distribution's metadata, not the module's ``__version__``); packages not installed are left out.
    Imports nothing heavy (no torch, no TensorRT)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for key, dists in PACKAGES.items():
        for d in dists:
            try:
                out[key] = metadata.version(d)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5, check=False).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


#: the CPU features that decide how fast this CPU runs a network (and which CPU default pockit picks: bf16 where
#: the CPU computes it, else INT8): x86 AVX2 / AVX-512 / VNNI / BF16 / AMX, arm64 NEON dot product / SVE / BF16 / I8MM
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
                "asimd", "asimddp", "sve", "bf16", "i8mm")


def _cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The :data:`CPU_FEATURES` this CPU has, from /proc/cpuinfo's ``flags`` (x86) or ``Features`` (arm64) line;
    ``[]`` where there is no such file (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            have = set(value.split())
            return [f for f in CPU_FEATURES if f in have]
    return []


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _gpus() -> tuple[list[str], str | None]:
    """NVIDIA GPU names and driver: NVML, then nvidia-smi; ([], None) without either."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            names = [_text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                     for i in range(pynvml.nvmlDeviceGetCount())]
            return names, _text(pynvml.nvmlSystemGetDriverVersion())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001, S110 - no NVML library, no driver, no GPU: try the command line tool
        pass
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return [], None
    rows = [[c.strip() for c in line.split(",")] for line in res.stdout.splitlines() if line.strip()]
    if res.returncode != 0 or not rows:
        return [], None
    return [r[0] for r in rows], (rows[0][1] if len(rows[0]) > 1 else None)


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, memory, OS, NVIDIA GPU names (``[]`` without one) and driver, Jetson model."""
    import psutil

    gpus, driver = _gpus()
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_features": _cpu_features(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "gpus": gpus,
    }
    if driver:
        info["nvidia_driver"] = driver
    try:
        info["jetson_model"] = Path("/proc/device-tree/model").read_text(encoding="utf-8").strip("\x00\n ")
    except OSError:
        pass
    return info


def run_environment() -> dict[str, Any]:
    """``{"machine": machine_info(), "versions": software_versions()}``: merge into run.json."""
    return {"machine": machine_info(), "versions": software_versions()}


def gpu_text(gpus: Any) -> str:
    """``["NVIDIA H200", "NVIDIA H200"]`` -> ``"2 x NVIDIA H200"`` (a string is returned as it is)."""
    if isinstance(gpus, str):
        return gpus
    counted: dict[str, int] = {}
    for g in gpus or []:
        counted[str(g)] = counted.get(str(g), 0) + 1
    return ", ".join(f"{n} x {g}" if n > 1 else g for g, n in counted.items())


def machine_rows(run: dict[str, Any], bench_host: dict[str, Any] | None = None) -> list[tuple[str, str]] | None:
    """(label key, value) rows describing the machine that ran ``run`` (run.json), or None when run.json
    does not record it; ``bench_host`` (bench.json ``host``) is used when run.json has no ``machine``."""
    m = run.get("machine") or bench_host
    if not m:
        return None
    rows: list[tuple[str, str]] = []
    cpu = m.get("cpu")
    if cpu:
        cores = m.get("physical_cores"), m.get("logical_cores")
        extra = (f" ({cores[0]} cores / {cores[1]} threads)" if cores[0] and cores[1] and cores[0] != cores[1]
                 else f" ({cores[1] or cores[0]} cores)" if (cores[1] or cores[0]) else "")
        feats = m.get("cpu_features")
        rows.append(("machine_cpu", f"{cpu}{extra}" + (f"; {', '.join(feats)}" if feats else "")))
    gpus = m.get("gpus")
    if isinstance(gpus, str):
        gpus = [gpus]
    if gpus:
        txt = gpu_text(gpus)
        if m.get("nvidia_driver"):
            txt += f" (driver {m['nvidia_driver']})"
        rows.append(("machine_gpu", txt))
    elif gpus is not None:
        rows.append(("machine_gpu", "-"))
    if m.get("jetson_model"):
        rows.append(("machine_jetson", str(m["jetson_model"])))
    if m.get("memory_gb"):
        rows.append(("machine_memory", f"{m['memory_gb']} GB"))
    os_name = m.get("os") or m.get("platform")
    if os_name:
        rows.append(("machine_os", str(os_name)))
    return rows
