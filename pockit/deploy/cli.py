"""``pockit deploy``: export, check, build engines, Jetson info and bundles."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.group(name="deploy")
def deploy_cmd() -> None:
    """Export models, build TensorRT engines, make a Jetson bundle."""


def _images(paths: tuple[str, ...], limit: int):
    import cv2

    from .tensorrt import IMAGE_EXT, calibration_files

    out = []
    for f in calibration_files(paths):
        if f.suffix.lower() in IMAGE_EXT:
            im = cv2.imread(str(f))
            if im is not None:
                out.append(im)
        else:
            cap = cv2.VideoCapture(str(f))
            while len(out) < limit:
                ok, im = cap.read()
                if not ok:
                    break
                out.append(im)
            cap.release()
        if len(out) >= limit:
            break
    return out[:limit]


@deploy_cmd.command("export")
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="ONNX file to write (default beside the weights)")
@click.option("--opset", default=17, show_default=True, help="ONNX opset (TensorRT 10 parses up to ~20; 17 is safe)")
@click.option("--imgsz", default=640, show_default=True)
@click.option("--dynamic/--static", default=True, show_default=True, help="dynamic batch (and H/W)")
@click.option("--simplify/--no-simplify", default=True, show_default=True, help="onnxslim simplification")
@click.option("--half", is_flag=True, help="FP16 weights (needs a CUDA GPU; TensorRT --fp16 does this anyway)")
@click.option("--check", "check_src", multiple=True, type=click.Path(exists=True),
              help="images/folders/videos to compare torch vs ONNX Runtime on (repeatable)")
@click.option("--check-frames", default=16, show_default=True)
def export_cmd(weights, output, opset, imgsz, dynamic, simplify, half, check_src, check_frames):
    """Export an Ultralytics .pt to ONNX and (with --check) compare it numerically with the .pt."""
    from .export import ExportError, check_export, export_onnx, onnx_summary

    try:
        path = export_onnx(weights, output, opset=opset, imgsz=imgsz, dynamic=dynamic, simplify=simplify, half=half)
    except (ExportError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    s = onnx_summary(path)
    click.echo(f"wrote {path}: opset {s['opset']}, inputs {s['inputs']}, outputs {s['outputs']}")
    if check_src:
        imgs = _images(check_src, check_frames)
        if not imgs:
            raise click.ClickException(f"no readable images in {list(check_src)}")
        r = check_export(weights, path, imgs, imgsz=imgsz)
        click.echo(r.summary())
        if not r.ok():
            raise click.ClickException("the ONNX outputs differ from the .pt beyond tolerance: re-export with another "
                                       "--opset or --no-simplify, and check the onnxruntime version")


@deploy_cmd.command("engine")
@click.argument("onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="engine file (default: the engine cache)")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8", "best"]), default="fp16", show_default=True)
@click.option("--imgsz", default=640, show_default=True)
@click.option("--batch", default=None, help="min,opt,max batch of the optimization profile (dynamic ONNX), e.g. 1,8,16")
@click.option("--workspace", default=2048, show_default=True, help="builder workspace in MiB")
@click.option("--dla", type=int, default=None, help="Jetson DLA core (0/1), GPU fallback on")
@click.option("--calib", multiple=True, type=click.Path(exists=True), help="INT8 calibration images/folders/videos")
@click.option("--calib-algo", type=click.Choice(["entropy", "minmax"]), default="entropy", show_default=True)
@click.option("--calib-batch", default=8, show_default=True)
@click.option("--calib-images", default=512, show_default=True)
@click.option("--fp16-layers", multiple=True, help="regex of layer names kept in FP16 under INT8 (repeatable)")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None)
@click.option("--force", is_flag=True, help="rebuild even when the cache holds a matching engine")
@click.option("--print-only", is_flag=True, help="print the trtexec command line and exit (no TensorRT needed)")
def engine_cmd(onnx, output, precision, imgsz, batch, workspace, dla, calib, calib_algo, calib_batch, calib_images,
               fp16_layers, timing_cache, force, print_only):
    """Build a TensorRT engine from ONNX on this machine (cached per model/TensorRT/GPU/precision/shapes)."""
    from .tensorrt import (
        BuildSpec,
        EngineBuildError,
        build_engine,
        format_command,
        input_spec,
        profile_shapes,
        trtexec_command,
    )

    try:
        b = tuple(int(v) for v in batch.split(",")) if batch else None
        if b is not None and len(b) == 1:
            b = (1, b[0], b[0])
        spec = BuildSpec(onnx=Path(onnx), precision=precision, imgsz=imgsz, batch=b, workspace_mib=workspace,
                         dla_core=dla, calib=list(calib), calib_algo=calib_algo, calib_batch=calib_batch,
                         calib_max_images=calib_images, timing_cache=Path(timing_cache) if timing_cache else None,
                         fp16_layers=list(fp16_layers))
        if print_only:
            name, dims = input_spec(spec.onnx)
            shapes = profile_shapes(dims, spec)
            dyn = any(isinstance(d, str) for d in dims)
            eng = output or f"{spec.onnx.stem}-{precision}.engine"
            calib_cache = f"{spec.onnx.stem}-calib.cache" if precision in ("int8", "best") else None
            click.echo(format_command(trtexec_command(spec, eng, name, shapes if dyn else None, calib_cache)))
            return
        res = build_engine(spec, output=output, force=force)
    except (ValueError, EngineBuildError, FileNotFoundError, ImportError) as e:
        raise click.ClickException(str(e))
    click.echo(("cached: " if res.cached else f"built in {res.seconds:.0f} s: ") + str(res.engine))
    click.echo(json.dumps({k: v for k, v in res.key.items()}, indent=1))


@deploy_cmd.command("info")
@click.option("--json", "as_json", is_flag=True)
def info_cmd(as_json):
    """This device: Jetson L4T/JetPack/module/power mode (or the GPU), and tuning hints."""
    from .jetson import detect_platform

    p = detect_platform()
    d = p.to_dict()
    if not p.is_jetson:
        try:
            from .tensorrt import gpu_identity

            g = gpu_identity()
            d.update(gpu_name=g.name, compute_capability=g.compute_capability)
        except Exception as e:  # no GPU here
            d["notes"].append(str(e).splitlines()[0])
    d["hints"] = p.hints()
    if as_json:
        click.echo(json.dumps(d, indent=1))
        return
    for k, v in d.items():
        if v not in (None, [], ""):
            click.echo(f"{k:20s} {v}")


@deploy_cmd.command("bundle")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", type=click.Choice(["jetson"]), default="jetson", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="bundle directory")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), help="ONNX or .pt (default: the config's model)")
@click.option("--precision", type=click.Choice(["fp16", "int8", "fp32"]), default="fp16", show_default=True)
@click.option("--batch", type=int, default=None, help="max batch of the engine (default: number of sources)")
@click.option("--workspace", default=1024, show_default=True, help="trtexec workspace in MiB")
@click.option("--dla", type=int, default=None, help="DLA core for the engine")
@click.option("--l4t", default=None, help="the Jetson's L4T release (e.g. 36.4.3) to pick the container tag")
@click.option("--include-deps", is_flag=True, help="also download pockit's aarch64 dependency wheels (offline install)")
@click.option("--overwrite", is_flag=True)
def bundle_cmd(config, target, output, model, precision, batch, workspace, dla, l4t, include_deps, overwrite):
    """Write a self-contained deployment bundle for CONFIG."""
    from ..config import ConfigError
    from .bundle import BundleError, make_bundle

    try:
        m = make_bundle(config, target, output, model=model, precision=precision, batch=batch, workspace_mib=workspace,
                        dla_core=dla, l4t=l4t, include_deps=include_deps, overwrite=overwrite)
    except (BundleError, ConfigError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    click.echo(f"bundle written to {output} ({len(m['files'])} files, image {m['l4t_image']}); next: see {output}/README.md")


@deploy_cmd.command("plan")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--bench", "bench_path", required=True, type=click.Path(dir_okay=False),
              help="bench.json of `pockit bench` (per-stage costs measured on some machine)")
@click.option("--target", help="devices.yaml key of the box (e.g. jetson-orin-nx-16gb): an ESTIMATE from the "
              "bench's GPU figures; default: boxes like the benchmarking machine (a measurement)")
@click.option("--boxes", type=int, help="use exactly N boxes (default: the fewest that hold every camera)")
@click.option("--headroom", type=float, default=0.8, show_default=True, help="usable fraction of each resource")
@click.option("--res", "res", multiple=True, metavar="ID=WxH", help="a camera's resolution (repeatable)")
@click.option("--default-res", metavar="WxH", help="resolution of cameras that are neither given nor local files")
@click.option("--default-fps", type=float, help="fps of cameras without fps: in the config and not local files")
@click.option("--measured-on", "reference", help="devices.yaml key of the GPU the bench ran on, when not detected")
@click.option("--precision", type=click.Choice(["fp16", "int8", "fp32"]), default="fp16", show_default=True)
@click.option("--prefix", default="box", show_default=True, help="box ids: PREFIX-01, PREFIX-02, ...")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="write plan.json, configs/<box>.yaml and "
              "one bundle per box here")
@click.option("--no-bundles", is_flag=True, help="write plan.json and the box configs only")
@click.option("--overwrite", is_flag=True)
def plan_cmd(config, bench_path, target, boxes, headroom, res, default_res, default_fps, reference, precision, prefix,
             output, no_bundles, overwrite):
    """Assign the cameras of CONFIG to boxes (balanced, headroom kept) and write one bundle per box."""
    from ..config import ConfigError
    from .bundle import BundleError
    from .plan import PlanError, plan_site, write_plan

    pairs = {}
    for item in res:
        cam, sep, wh = item.partition("=")
        if not sep or not cam:
            raise click.BadParameter(f"expected ID=WIDTHxHEIGHT, got {item!r}", param_hint="--res")
        pairs[cam] = wh
    try:
        plan = plan_site(config, bench_path, target=target, boxes=boxes, headroom=headroom, res=pairs,
                         default_res=default_res, default_fps=default_fps, reference=reference,
                         precision="fp16" if precision == "fp32" else precision, box_prefix=prefix)
        if output:
            plan = write_plan(plan, output, bundles=not no_bundles, overwrite=overwrite,
                              **({} if no_bundles else {"precision": precision}))
    except (PlanError, ConfigError, BundleError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{plan['cameras']} cameras on {len(plan['boxes'])} box(es) of {plan['device']} "
               f"({plan['kind']}: {plan['label']}); fewest that fit: {plan['fewest_boxes']}; resource use below "
               f"is of the usable {plan['headroom']:.0%}")
    for bx in plan["boxes"]:
        use = "  ".join(f"{r} {v:.0%}" for r, v in bx["use"].items())
        cams = ", ".join(f"{c['id']} {c['width']}x{c['height']}@{c['fps']:g}" for c in bx["cameras"])
        click.echo(f"  {bx['box']}: {cams}  | batch {bx['batch']} | {use} | limit: {bx['limiting_resource']} "
                   f"({bx['limiting_stage']})")
    click.echo(f"limiting resource: {plan['limiting_resource']} ({plan['limiting_stage']}), headroom "
               f"{plan['headroom']:.0%} kept")
    for w in plan.get("warnings", []):
        click.echo(f"warning: {w}", err=True)
    if output:
        click.echo(f"wrote {output}/plan.json" + ("" if no_bundles else f" and {len(plan['boxes'])} bundle(s)"))
