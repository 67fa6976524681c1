"""One OpenCV wheel per environment: the headless build.

pockit needs only ``cv2``'s headless functions (decode, resize, draw, encode). Four PyPI distributions ship the same
``cv2`` package; with two of them installed the last one unpacked wins file by file, and the GUI builds need X11/OpenGL
libraries (``libxcb.so.1``, ``libGL.so.1``) that a headless Jetson or container does not have.

pockit itself and its ``[ml]`` extra ask for ``opencv-python-headless`` (``ultralytics-opencv-headless`` instead of
``ultralytics``), but every ``trackers`` release that has OC-SORT (2.2 and later) declares ``opencv-python`` (the GUI
build), and pip has no way to override a dependency's requirement. So after ``pip install`` the environment holds both;
``python3 pockit/deploy/opencv.py`` (the install step of ``scripts/test.sh``, the Jetson bundle and
``scripts/arm64-smoke.sh``) removes the GUI wheels and reinstalls the headless one of the same version, so that
exactly one remains. ``pip check`` then reports ``trackers requires opencv-python``: expected, ``trackers`` imports
``cv2`` and gets it from the headless wheel.

This file uses only the standard library and is run by path, not with ``-m``: ``import pockit`` imports ``cv2``,
which is exactly what fails while the GUI build sits on a system without X libraries.
``python3 pockit/deploy/opencv.py --check`` only reports, exiting 1 unless exactly the headless wheel is installed.
Extra arguments (``--find-links DIR``, ``--no-index``) are passed to ``pip install`` for offline installs.
"""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

HEADLESS = "opencv-python-headless"
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def opencv_distributions() -> dict[str, str]:
    """Installed OpenCV distributions, name -> version (empty when none)."""
    found = {}
    for name in OPENCV_DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def headless_plan(installed: dict[str, str]) -> tuple[list[str], str | None]:
    """(distributions to uninstall, ``opencv-python-headless==V`` to force-reinstall or None when nothing to do).

    The headless version kept is the installed headless one, else the version of the GUI build being replaced.
    """
    if list(installed) == [HEADLESS]:
        return [], None
    if not installed:
        return [], HEADLESS
    remove = [n for n in installed if n != HEADLESS]
    keep = installed.get(HEADLESS) or installed[remove[0]]
    # uninstalling a GUI wheel deletes the cv2/ files the headless wheel shares with it: reinstall it afterwards
    return remove, f"{HEADLESS}=={keep}"


def ensure_headless(pip_args: list[str] | None = None, python: str = sys.executable) -> dict[str, str]:
    """Leave exactly ``opencv-python-headless`` installed; returns the distributions found before."""
    installed = opencv_distributions()
    remove, reinstall = headless_plan(installed)
    pip = [python, "-m", "pip"]
    if remove:
        subprocess.run(pip + ["uninstall", "-y", "-q", *remove], check=True)
    if reinstall:
        subprocess.run(pip + ["install", "-q", "--no-deps", "--force-reinstall", *(pip_args or []), reinstall],
                       check=True)
    return installed


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    before = opencv_distributions()
    if check:
        ok = list(before) == [HEADLESS]
        print(f"OpenCV distributions: {before or 'none'} -> {'ok' if ok else 'expected only ' + HEADLESS}")
        return 0 if ok else 1
    ensure_headless([a for a in args if a != "--check"])
    # a fresh interpreter: this one may have read metadata of the removed distributions
    after = subprocess.run([sys.executable, __file__, "--check"], check=False)
    print(f"before: {before or 'none'}")
    return after.returncode


if __name__ == "__main__":
    sys.exit(main())
