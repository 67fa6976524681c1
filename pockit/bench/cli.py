"""``pockit bench``: per-stage latency, throughput, resources and device sizing."""
from __future__ import annotations

import click


def _res(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT like 1920x1080, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise click.BadParameter(f"width and height must be positive, got {value!r}")
    return w, h


@click.command("bench")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--model", help="model file or name (instead of / overriding the config's model)")
@click.option("--source", help="video, image/MOT folder or stream (with --model, instead of a config)")
@click.option("--batch", "batches", default="1", show_default=True, help="batch sizes, comma-separated: 1,4,8")
@click.option("--streams", default="1", show_default=True, help="stream counts, comma-separated: 1,2,4")
@click.option("--max-frames", type=int, help="frames per stream in each case")
@click.option("--imgsz", type=int, help="network input size")
@click.option("--device", help="inference device: cpu, cuda, cuda:0 ...")
@click.option("--half/--no-half", default=None, help="FP16 inference where the backend supports it")
@click.option("--target-fps", type=float, help="fps per stream for sizing (default: the source's)")
@click.option("--target-res", help="stream resolution for sizing, WIDTHxHEIGHT (default: the source's)")
@click.option("--target", "targets", multiple=True,
              help="device key from pockit/bench/devices.yaml to ESTIMATE (repeatable), e.g. jetson-orin-nx-16gb")
@click.option("--measured-on", "reference", help="devices.yaml key of the GPU this runs on, when not detected")
@click.option("--precision", type=click.Choice(["fp16", "int8"]), default="fp16", show_default=True,
              help="precision the model runs at, for datasheet scaling")
@click.option("--headroom", type=float, default=0.8, show_default=True, help="usable fraction of each resource")
@click.option("--interval", type=float, default=0.25, show_default=True, help="resource sampling interval (s)")
@click.option("-o", "--out", type=click.Path(), help="bench.json path, or a folder for it (default runs/bench-<time>/)")
@click.option("--list-devices", is_flag=True, help="list the devices with published figures and exit")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--backend", type=click.Choice(["auto", "onnx", "openvino", "ultralytics", "tensorrt", "torch"]),
              help="inference backend (overrides the config's)")
@click.option("--workers", type=int, help="tracking/rules worker processes (default: the config's pipeline.workers)")
@click.option("--realtime", is_flag=True, help="play files at their own frame rate and drop (counted) when behind, "
              "as live cameras would")
@click.option("--no-model-only", is_flag=True, help="skip the model-only images/s measurement of each batch")
@click.option("--ultralytics", is_flag=True, help="also time Ultralytics model.track on the same frames and .pt model")
def bench_cmd(config, model, source, batches, streams, max_frames, imgsz, device, half, target_fps, target_res, targets,
              reference, precision, headroom, interval, out, list_devices, no_progress, backend, workers, realtime,
              no_model_only, ultralytics):
    """Benchmark per-stage latency and throughput; size this machine and estimate others.

    Runs the real pipeline (decode, preprocess, inference, postprocess, tracking, rules) for every
    batch size x stream count, samples CPU/memory (psutil), NVIDIA GPUs (NVML) and Jetson (tegrastats),
    writes bench.json and prints a table. Figures for --target devices are ESTIMATES scaled by
    published datasheet numbers, never measurements.
    """
    from ..config import ConfigError
    from ..registry import FetchError
    from .sizing import SizingError, load_devices

    if list_devices:
        for k, d in load_devices().items():
            click.echo(f"{k:<28} {d['name']}  [{d['source'].split(';')[0]}]")
        return
    if config is None and not (model and source):
        raise click.UsageError("give a CONFIG.yaml, or both --model and --source")
    if config is not None and source:
        raise click.UsageError("--source is for benchmarking without a config; edit the config's sources instead")
    known = load_devices()
    for t in targets:
        if t not in known:
            raise click.BadParameter(f"unknown device {t!r}; known: {', '.join(sorted(known))}", param_hint="--target")
    from .report import print_bench
    from .runner import run_bench

    try:
        rec = run_bench(config, model=model, source=source, batches=batches, streams=streams, max_frames=max_frames,
                        imgsz=imgsz, device=device, out=out, interval=interval, target_fps=target_fps,
                        target_resolution=_res(target_res), targets=targets, reference=reference,
                        precision=precision, headroom=headroom, progress=not no_progress, half=half,
                        backend=backend, workers=workers, realtime=realtime, model_only=not no_model_only,
                        ultralytics=ultralytics)
    except (ConfigError, SizingError, ValueError, FileNotFoundError, FetchError) as e:
        raise click.ClickException(str(e)) from None
    print_bench(rec)
