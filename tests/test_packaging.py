"""The environment holds exactly one OpenCV wheel, the headless one, and cv2 imports without a display."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from pockit.deploy.opencv import (
    HEADLESS,
    OPENCV_DISTRIBUTIONS,
    headless_plan,
    opencv_distributions,
)

HELPER = Path(__file__).resolve().parents[1] / "pockit" / "deploy" / "opencv.py"
X_LIBRARIES = ("libX11", "libxcb", "libGL.so", "libGLX", "libQt", "libgtk", "libSM.so", "libICE.so")


def _installed() -> list[str]:
    found = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            version(name)
        except PackageNotFoundError:
            continue
        found.append(name)
    return found


def test_exactly_one_opencv_distribution_the_headless_one():
    installed = _installed()
    assert installed == [HEADLESS], (
        f"OpenCV distributions installed: {installed}; expected only {HEADLESS}. "
        "Run: python3 pockit/deploy/opencv.py")
    assert opencv_distributions() == {HEADLESS: version(HEADLESS)}


def test_cv2_imports_without_display_and_has_no_gui_backend():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = ("import cv2, re; b = cv2.getBuildInformation(); "
            "print(cv2.__version__); print(re.search(r'GUI:\\s*(\\S+)', b).group(1))")
    r = subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ver, gui = r.stdout.split()
    assert ver.split(".")[:3] == version(HEADLESS).split(".")[:3]
    assert gui == "NONE", f"cv2 was built with GUI backend {gui}: the GUI wheel's files are in cv2/"


def test_cv2_extension_links_no_x_or_opengl_library():
    import cv2

    ext = next(Path(cv2.__file__).parent.glob("cv2*.so"), None)
    if ext is None or not Path("/usr/bin/ldd").exists():
        pytest.skip("no cv2 extension module or ldd here")
    out = subprocess.run(["ldd", str(ext)], check=False, capture_output=True, text=True, timeout=60).stdout
    linked = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert linked, out
    assert [lib for lib in linked if lib.startswith(X_LIBRARIES)] == []


@pytest.mark.parametrize("installed, plan", [
    ({HEADLESS: "5.1.0.95"}, ([], None)),
    ({}, ([], HEADLESS)),
    ({"opencv-python": "5.1.0.95", HEADLESS: "5.1.0.95"}, (["opencv-python"], f"{HEADLESS}==5.1.0.95")),
    ({"opencv-python": "4.12.0.88"}, (["opencv-python"], f"{HEADLESS}==4.12.0.88")),
    ({"opencv-python": "4.12.0.88", "opencv-contrib-python": "4.12.0.88", HEADLESS: "4.11.0.86"},
     (["opencv-python", "opencv-contrib-python"], f"{HEADLESS}==4.11.0.86")),
])
def test_headless_plan(installed, plan):
    assert headless_plan(installed) == plan


def test_helper_runs_by_path_on_the_standard_library_alone():
    # `import pockit` imports cv2; the helper must run while cv2 is broken, so it imports only the standard library
    tree = ast.parse(HELPER.read_text(encoding="utf-8"))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules - set(sys.stdlib_module_names) == set()
    r = subprocess.run([sys.executable, str(HELPER), "--check"], cwd="/", check=False, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, f"OpenCV distributions: {{{HEADLESS!r}: {version(HEADLESS)!r}}} -> ok")
