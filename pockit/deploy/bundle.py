"""A self-contained Jetson bundle: a flashed box -> a running PoC.

``make_bundle(config, "jetson", out)`` writes::

    bundle/
      config.yaml            the PoC config, model -> models/<name>.engine (TensorRT backend)
      config-onnx.yaml       the same on ONNX Runtime (to check the PoC before the engine exists)
      models/<name>.onnx     the model (exported from .pt when needed)
      media/                 local video/image sources of the config, copied
      build_engine.sh        trtexec build of the engine on the Jetson itself (engines are device-specific)
      run.sh                 build the engine if missing, then 'pockit run config.yaml'
      Dockerfile             FROM nvcr.io/nvidia/l4t-jetpack:<tag>, installs pockit
      docker-compose.yml     runtime: nvidia, host network, restart policy, the bundle mounted
      pockit-<name>.service  systemd unit starting the compose project at boot
      wheels/                the pockit wheel (and its dependencies when asked)
      README.md              the exact steps
      MANIFEST.json          sha256 of every file
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ..config import PocConfig, load_config
from ..paths import contained
from .jetson import L4T_JETPACK_TAGS, l4t_image_tag
from .quoting import render
from .tensorrt import BuildSpec, trtexec_command

log = logging.getLogger(__name__)

TARGETS = ("jetson",)
TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
MEDIA_MAX_BYTES = 512 << 20


class BundleError(RuntimeError):
    """The bundle cannot be made; the message says why and what to do."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "poc"


def _resolve_model(cfg: PocConfig, model: str | Path | None, base: Path, opset: int, imgsz: int) -> Path:
    """An ONNX file for the bundle: given, resolved from the config, or exported from a .pt."""
    src = Path(model) if model else None
    if src is None:
        p = Path(cfg.model.path)
        if not p.is_absolute() and (base / p).exists():
            p = base / p
        if p.exists():
            src = p
        else:
            try:
                from ..inference import resolve_model

                src = Path(resolve_model(cfg.model.path))
            except Exception as e:
                raise BundleError(f"model {cfg.model.path!r} of the config cannot be found ({e}); pass --model FILE.onnx") from e
    if not src.exists():
        raise BundleError(f"model file not found: {src}")
    suffix = src.suffix.lower()
    if suffix == ".onnx":
        return src
    if suffix == ".pt":
        import tempfile

        from .export import export_onnx

        return export_onnx(src, Path(tempfile.mkdtemp(prefix="pockit-export-")) / (src.stem + ".onnx"),
                           opset=opset, imgsz=imgsz, dynamic=True, simplify=True)
    if suffix in (".engine", ".plan"):
        raise BundleError(f"{src} is a TensorRT engine: engines only run on the GPU and TensorRT version they were built on. "
                          "Give the ONNX (or .pt) model; the bundle builds the engine on the Jetson.")
    raise BundleError(f"{src}: unsupported model format {suffix!r} (use .onnx or an Ultralytics .pt)")


def _local_media(uri: Any, base: Path, source_id: str = "") -> Path | None:
    """The local file of a source (:func:`pockit.resolve.local_media`); a missing data:/media: file is a BundleError."""
    from ..resolve import UriError, local_media

    try:
        return local_media(uri, base, field=f"source {source_id}".strip())
    except UriError as e:
        raise BundleError(str(e)) from e


def _onnx_input(path: Path) -> tuple[str, list, dict[int, str]]:
    """(input name, dims with symbolic dims as strings, class names from the metadata) of an ONNX model."""
    import onnx

    from ..inference.base import parse_names
    from .tensorrt import EngineBuildError, input_spec

    try:
        name, dims = input_spec(path)
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except EngineBuildError as e:
        raise BundleError(str(e)) from e
    except Exception as e:  # onnx raises several types for a broken file
        raise BundleError(f"{path}: cannot read the ONNX model ({e})") from e
    return name, dims, parse_names(meta.get("names"))


def _media_name(p: Path, sid: str, used: dict[str, Path]) -> str:
    """The file name of a local source under media/: its own name, or ``<source id>-<name>`` when another
    source's different file already took that name (two cameras' ``clip.mp4`` from different folders);
    the same file used by two sources is copied once."""
    real = p.resolve()
    for cand in [real.name] + [f"{sid}-{real.name}"] + [f"{sid}-{i}-{real.name}" for i in range(2, 1000)]:
        if used.get(cand, real) == real:
            used[cand] = real
            return cand
    raise BundleError(f"source {sid}: no free file name for {real.name} under media/")


TEMPLATES = {
    "build_engine.sh": "build_engine.sh.j2",
    "run.sh": "run.sh.j2",
    "Dockerfile": "Dockerfile.j2",
    "docker-compose.yml": "docker-compose.yml.j2",
    "pockit-{name}.service": "pockit.service.j2",
    "README.md": "README.md.j2",
}


def render_bundle_files(ctx: dict[str, Any]) -> dict[str, str]:
    """{bundle file name: text} of every templated file. User text in ``ctx`` (``title``, ``onnx``,
    ``engine``, ``sources``, ``int8_cmd``, ``trtexec_args``) reaches the files only through the
    quoting filters of :mod:`.quoting`; ``name`` must be a slug (:func:`_slug`)."""
    if _slug(ctx["name"]) != ctx["name"]:
        raise ValueError(f"bundle name {ctx['name']!r} is not a slug")
    templates = Path(__file__).parent / "templates"
    return {dst.format(name=ctx["name"]): render((templates / tpl).read_text(encoding="utf-8"), **ctx)
            for dst, tpl in TEMPLATES.items()}


def make_bundle(config_path: str | Path, target: str, out_dir: str | Path, **kw) -> dict:
    """Write the bundle; returns the manifest (files and their sha256). A failed bundle leaves no directory behind.

    Options: model, precision (fp16|int8|fp32), batch, workspace_mib, dla_core, l4t, opset, include_deps, overwrite.
    """
    out = Path(out_dir)
    existed = out.exists()
    try:
        return _make_bundle(config_path, target, out, **kw)
    except BaseException:
        if not existed and out.exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _make_bundle(config_path: str | Path, target: str, out_dir: str | Path, *, model: str | Path | None = None,
                 precision: str = "fp16", batch: int | None = None, workspace_mib: int = 1024,
                 dla_core: int | None = None, l4t: str | None = None, opset: int = 17,
                 include_deps: bool = False, overwrite: bool = False) -> dict:
    if target not in TARGETS:
        raise BundleError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    if precision not in ("fp16", "fp32", "int8"):
        raise BundleError(f"precision {precision!r}: use fp16 (default), int8 (needs calibration on the device) or fp32")
    config_path = Path(config_path)
    cfg = load_config(config_path)
    base = config_path.resolve().parent
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise BundleError(f"{out} exists and is not empty; choose another -o or pass --overwrite")
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    name = _slug(cfg.name)
    imgsz = cfg.model.imgsz
    max_batch = int(batch or max(cfg.model.batch, len(cfg.sources)))

    onnx_src = _resolve_model(cfg, model, base, opset, imgsz)
    onnx_name = onnx_src.stem + ".onnx"
    shutil.copy2(onnx_src, out / "models" / onnx_name)
    input_name, dims, onnx_names = _onnx_input(onnx_src)
    if isinstance(dims[2], int) and isinstance(dims[3], int) and dims[2] == dims[3] and dims[2] != imgsz:
        log.warning("%s has a fixed %dx%d input; the engine is built at that size, not imgsz=%d",
                    onnx_src.name, dims[3], dims[2], imgsz)
        imgsz = dims[2]
    if isinstance(dims[0], int):  # a fixed-batch export: the engine has that batch, whatever was asked
        if max_batch != dims[0]:
            log.warning("%s has a fixed batch of %d: the engine runs %d frame(s) per call, not %d (re-export "
                        "with 'pockit deploy export MODEL.pt --dynamic' to batch several streams)",
                        onnx_src.name, dims[0], dims[0], max_batch)
        max_batch = dims[0]
    dynamic = any(isinstance(d, str) for d in dims)
    engine_name = f"{onnx_src.stem}-{precision}-b{max_batch}.engine"

    # configs: media copied, model paths relative to the bundle
    data = cfg.model_dump(mode="json", exclude_none=True)
    media_bytes = 0
    used: dict[str, Path] = {}
    for s in data["sources"]:
        p = _local_media(s["uri"], base, s["id"])
        if p is None:
            continue
        fname = _media_name(p, s["id"], used)
        try:
            contained(out / "media", fname, f"source {s['id']} media file")
        except ValueError as e:
            raise BundleError(str(e)) from None
        dst = Path("media") / fname
        if (out / dst).exists():  # the same file as an earlier source: one copy
            s["uri"] = str(dst)
            continue
        if p.is_dir():
            shutil.copytree(p, out / dst, dirs_exist_ok=True)
            media_bytes += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        else:
            (out / "media").mkdir(exist_ok=True)
            shutil.copy2(p, out / dst)
            media_bytes += p.stat().st_size
        if media_bytes > MEDIA_MAX_BYTES:
            raise BundleError(f"local media of the config exceed {MEDIA_MAX_BYTES >> 20} MiB; copy them to the device separately")
        s["uri"] = str(dst)
    data.setdefault("outputs", {})["dir"] = "runs"
    trt_cfg = json.loads(json.dumps(data))
    trt_cfg["model"].update({"path": f"models/{engine_name}", "backend": "tensorrt", "device": "cuda",
                             "batch": max_batch})
    trt_cfg["model"].pop("half", None)
    if onnx_names and not trt_cfg["model"].get("class_names"):
        # trtexec writes no class names into the engine: keep the model's names in the config
        trt_cfg["model"]["class_names"] = {int(k): v for k, v in onnx_names.items()}
    onnx_cfg = json.loads(json.dumps(data))
    onnx_cfg["model"].update({"path": f"models/{onnx_name}", "backend": "onnx", "device": "cuda"})
    for fname, d in (("config.yaml", trt_cfg), ("config-onnx.yaml", onnx_cfg)):
        PocConfig.model_validate(d)  # the bundle's configs must load on the device
        (out / fname).write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")

    # engine build command (trtexec, on the device)
    calib_cache = "models/calib.cache" if precision == "int8" else None
    spec = BuildSpec(onnx=Path("models") / onnx_name, precision=precision, imgsz=imgsz, batch=(1, max_batch, max_batch),
                     workspace_mib=workspace_mib, dla_core=dla_core, timing_cache=Path("models/timing.cache"),
                     calib=["calib"] if precision == "int8" else [])
    # trtexec refuses --min/opt/maxShapes for a static model ("Static model does not take explicit shapes")
    shapes = [(1, 3, imgsz, imgsz), (max_batch, 3, imgsz, imgsz), (max_batch, 3, imgsz, imgsz)] if dynamic else None
    trtexec_args = trtexec_command(spec, Path("models") / engine_name, input_name, shapes, calib_cache)[1:]
    int8_cmd = ["pockit", "deploy", "engine", f"models/{onnx_name}", "--precision", "int8", "--calib", "calib/"]
    if isinstance(dims[0], str):
        int8_cmd += ["--batch", f"1,{max_batch},{max_batch}"]
    int8_cmd += ["--imgsz", str(imgsz), "-o", f"models/{engine_name}"]
    tag = l4t_image_tag(l4t)
    cuda_python = "cuda-python>=12,<13" if tag.startswith("r36") else "cuda-python>=11.4,<12"
    # every value below is rendered through a quoting filter of .quoting (sh, comment, unit, unit_arg, yaml, code)
    ctx = {"name": name, "title": cfg.name, "cuda_python": cuda_python, "onnx": onnx_name, "engine": engine_name,
           "trtexec_args": trtexec_args, "int8_cmd": int8_cmd, "trtexec": TRTEXEC, "precision": precision,
           "batch": max_batch, "imgsz": imgsz, "tag": tag, "dla": dla_core, "int8": precision == "int8",
           "sources": [s["id"] for s in data["sources"]], "tags": ", ".join(L4T_JETPACK_TAGS[:4]),
           "workdir": f"/opt/pockit/{name}", "service": f"pockit-{name}"}
    for dst, text in render_bundle_files(ctx).items():
        (out / dst).write_text(text, encoding="utf-8")
    for sh in ("build_engine.sh", "run.sh"):
        (out / sh).chmod(0o755)

    # the pockit wheel (and optionally its aarch64 dependencies), and the step that leaves one OpenCV wheel after it
    (out / "wheels").mkdir(exist_ok=True)
    shutil.copy2(Path(__file__).with_name("opencv.py"), out / "opencv_headless.py")
    _build_wheel(out / "wheels")
    if include_deps:
        _download_deps(out / "wheels")

    manifest = {"target": target, "name": cfg.name, "l4t_image": f"nvcr.io/nvidia/l4t-jetpack:{tag}",
                "model": onnx_name, "engine": engine_name, "precision": precision, "batch": max_batch, "files": {}}
    for f in sorted(out.rglob("*")):
        if f.is_file():
            manifest["files"][str(f.relative_to(out))] = hashlib.sha256(f.read_bytes()).hexdigest()
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _build_wheel(dest: Path) -> None:
    """``pip wheel`` of the installed pockit source tree (no deps) into ``dest``."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists():
        log.warning("pockit source tree not found; the bundle's Dockerfile will install pockit from PyPI")
        return
    # build isolation (pip installs the setuptools pyproject.toml asks for) unless the installed setuptools
    # already meets it: --no-build-isolation with an older one (a fresh venv's) fails on the PEP 639 license
    local = _local_setuptools_suffices(root / "pyproject.toml")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", *(["--no-build-isolation"] if local else []),
           "-q", "-w", str(dest), str(root)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise BundleError(f"building the pockit wheel failed:\n{r.stderr[-2000:]}")
    for junk in (root / "build",):
        shutil.rmtree(junk, ignore_errors=True)


def _local_setuptools_suffices(pyproject: Path) -> bool:
    """Does the installed setuptools meet the ``setuptools>=N`` of pyproject.toml's build-system.requires?"""
    from importlib.metadata import PackageNotFoundError, version

    m = re.search(r"""["']setuptools\s*>=\s*([0-9][0-9.]*)["']""", pyproject.read_text(encoding="utf-8"))
    need = tuple(int(x) for x in m.group(1).strip(".").split(".")) if m else (0,)
    try:
        have = tuple(int(x) for x in re.findall(r"\d+", version("setuptools"))[:3])
    except PackageNotFoundError:
        return False
    return have >= need


def _download_deps(dest: Path) -> None:
    """Fetch pockit's runtime dependencies as aarch64 wheels for an offline Jetson (Python 3.10, JetPack 6)."""
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.10",
                        "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_17_aarch64",
                        "--platform", "manylinux_2_28_aarch64", "-d", str(dest)] + [str(w) for w in dest.glob("pockit-*.whl")],
                       check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise BundleError(f"downloading aarch64 dependencies failed (no network? drop --include-deps):\n{r.stderr[-2000:]}")
