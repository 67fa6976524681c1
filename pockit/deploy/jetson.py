"""Jetson platform detection: L4T release, JetPack, module, power mode, and tuning hints.

Reads ``/etc/nv_tegra_release`` (L4T release), ``/proc/device-tree/model`` (module) and
``nvpmodel -q`` (power mode). ``root`` lets tests point at a fake filesystem. tegrastats parsing
lives in :mod:`pockit.bench.monitors` (``parse_tegrastats``), re-exported here.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

# L4T release -> (JetPack, TensorRT, CUDA). From NVIDIA's JetPack archive / release notes.
JETPACK = {
    "36.4.4": ("6.2.1", "10.3", "12.6"),
    "36.4.3": ("6.2", "10.3", "12.6"),
    "36.4": ("6.1", "10.3", "12.6"),
    "36.3": ("6.0", "8.6.2", "12.2"),
    "36.2": ("6.0 DP", "8.6.2", "12.2"),
    "35.6": ("5.1.4", "8.5.2", "11.4"),
    "35.5": ("5.1.3", "8.5.2", "11.4"),
    "35.4.1": ("5.1.2", "8.5.2", "11.4"),
    "35.3.1": ("5.1.1", "8.5.2", "11.4"),
    "35.2.1": ("5.1", "8.5.2", "11.4"),
    "35.1": ("5.0.2", "8.4.1", "11.4"),
    "32.7.6": ("4.6.6", "8.2.1", "10.2"),
    "32.7.5": ("4.6.5", "8.2.1", "10.2"),
    "32.7.4": ("4.6.4", "8.2.1", "10.2"),
    "32.7.3": ("4.6.3", "8.2.1", "10.2"),
    "32.7.2": ("4.6.2", "8.2.1", "10.2"),
    "32.7.1": ("4.6.1", "8.2.1", "10.2"),
    "32.6.1": ("4.6", "8.0.1", "10.2"),
}
# nvcr.io/nvidia/l4t-jetpack tags published per L4T release (the container must match the host's L4T major.minor)
L4T_JETPACK_TAGS = ["r36.4.0", "r36.3.0", "r36.2.0", "r35.4.1", "r35.3.1", "r35.2.1", "r35.1.0"]

# module name fragment -> (compute capability, DLA cores, GPU name)
MODULES = [
    ("AGX Orin", "8.7", 2, "Orin (nvgpu)"),
    ("Orin NX", "8.7", 2, "Orin (nvgpu)"),
    ("Orin Nano", "8.7", 0, "Orin (nvgpu)"),
    ("AGX Xavier", "7.2", 2, "Xavier (nvgpu)"),
    ("Xavier NX", "7.2", 2, "Xavier (nvgpu)"),
    ("TX2", "6.2", 0, "TX2 (nvgpu)"),
    ("Nano", "5.3", 0, "Maxwell (nvgpu)"),
]


@dataclass
class JetsonPlatform:
    is_jetson: bool
    l4t: str | None = None
    jetpack: str | None = None
    tensorrt: str | None = None
    cuda: str | None = None
    module: str | None = None
    compute_capability: str | None = None
    dla_cores: int | None = None
    gpu_name: str | None = None
    power_mode: str | None = None
    power_mode_id: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def hints(self) -> list[str]:
        """What to set before benchmarking or deploying (power mode, clocks)."""
        if not self.is_jetson:
            return []
        h = []
        if self.power_mode is None:
            h.append("power mode unknown (nvpmodel not found): run 'sudo nvpmodel -q' to see it")
        elif "MAXN" not in self.power_mode.upper():
            h.append(f"power mode is {self.power_mode} (id {self.power_mode_id}), not MAXN: for the best figures run "
                     "'sudo nvpmodel -m 0' (MAXN on Orin/Xavier; check 'nvpmodel -p --verbose' for your module), "
                     "then size the PoC at the mode the customer will really run")
        h.append("lock clocks while benchmarking: 'sudo jetson_clocks' (undo: 'sudo jetson_clocks --restore'); "
                 "watch temperature and power with tegrastats (pockit bench records it)")
        if self.dla_cores:
            h.append(f"this module has {self.dla_cores} DLA cores: offload a second model or stream with "
                     "'pockit deploy engine --dla 0' (FP16/INT8, GPU fallback on)")
        return h


def parse_tegra_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.3, ...' -> '36.4.3'."""
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def jetpack_for(l4t: str) -> tuple[str, str, str] | None:
    """(JetPack, TensorRT, CUDA) for an L4T release: exact match, then the longest known prefix."""
    if l4t in JETPACK:
        return JETPACK[l4t]
    parts = l4t.split(".")
    for n in range(len(parts) - 1, 0, -1):
        k = ".".join(parts[:n])
        if k in JETPACK:
            return JETPACK[k]
    return None


def l4t_image_tag(l4t: str | None) -> str:
    """The newest l4t-jetpack tag with the same L4T major.minor (default: the newest JetPack 6 tag)."""
    if l4t:
        mm = ".".join(l4t.split(".")[:2])
        for t in L4T_JETPACK_TAGS:
            if t[1:].startswith(mm + "."):
                return t
        major = l4t.split(".")[0]
        for t in L4T_JETPACK_TAGS:
            if t[1:].startswith(major + "."):
                return t
    return L4T_JETPACK_TAGS[0]


def parse_nvpmodel(text: str) -> tuple[str | None, int | None]:
    """'NV Power Mode: MAXN\\n0' -> ('MAXN', 0)."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    mode = m.group(1) if m else None
    mid = None
    for line in text.splitlines():
        if line.strip().isdigit():
            mid = int(line.strip())
    return mode, mid


def module_info(model: str) -> tuple[str | None, int | None, str | None]:
    for frag, cc, dla, gpu in MODULES:
        if frag.lower() in model.lower():
            if frag == "Orin NX" and "8GB" in model.replace(" ", ""):
                dla = 1
            return cc, dla, gpu
    return None, None, None


def detect_platform(root: str | Path = "/", run_nvpmodel: bool = True) -> JetsonPlatform:
    """Detect a Jetson (or not) from files under ``root``."""
    root = Path(root)
    rel = root / "etc" / "nv_tegra_release"
    model_f = root / "proc" / "device-tree" / "model"
    if not rel.exists():
        return JetsonPlatform(is_jetson=False)
    p = JetsonPlatform(is_jetson=True)
    p.l4t = parse_tegra_release(rel.read_text(errors="replace"))
    if p.l4t is None:
        p.notes.append(f"{rel}: unrecognised format")
    else:
        jp = jetpack_for(p.l4t)
        if jp:
            p.jetpack, p.tensorrt, p.cuda = jp
        else:
            p.notes.append(f"L4T {p.l4t} is newer than pockit's JetPack table")
    if model_f.exists():
        p.module = model_f.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
        p.compute_capability, p.dla_cores, p.gpu_name = module_info(p.module)
    if run_nvpmodel:
        exe = shutil.which("nvpmodel")
        if exe:
            try:
                out = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=10)
                p.power_mode, p.power_mode_id = parse_nvpmodel(out.stdout)
            except (OSError, subprocess.SubprocessError) as e:
                p.notes.append(f"nvpmodel -q failed: {e}")
    return p


def parse_tegrastats(line: str):
    """tegrastats line -> dict (GPU/CPU load, memory, power); implemented in :mod:`pockit.bench.monitors`."""
    from ..bench.monitors import parse_tegrastats as _p

    return _p(line)
