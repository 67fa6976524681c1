"""Terminal tables (rich) for a bench record."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .runner import STAGES


def _f(v, fmt="{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def throughput_table(record: dict[str, Any]) -> Table:
    """One row per (batch, streams) case: FPS, CPU, memory, GPU / Jetson figures."""
    t = Table(title=f"pockit bench: {record.get('config')} on {record['host'].get('cpu')}")
    for col in ("batch", "streams", "frames", "FPS total", "steady FPS", "model-only img/s", "e2e/model",
                "frames/call", "dropped", "limiting stage", "CPU % proc/sys", "RSS MB", "GPU"):
        t.add_column(col, justify="right")
    for c in record["cases"]:
        r = c["resources"]
        gpu, jet = r.get("gpu", {}), r.get("jetson", {})
        if gpu.get("available"):
            d = gpu["devices"][0]
            g = f"{_f(d['util_pct_mean'], '{:.0f}')}% {_f(d['mem_used_mb_max'], '{:.0f}')} MB"
        elif jet.get("available"):
            g = f"GR3D {_f(jet['gpu_load_pct_mean'], '{:.0f}')}% {_f(jet['power_w_mean'])} W"
        else:
            g = "n/a"
        ratio = c.get("e2e_over_model_only")
        t.add_row(str(c["batch"]), str(c["streams"]), str(c["frames"]), _f(c["fps"]), _f(c.get("steady_fps")),
                  _f(c.get("model_only_ips"), "{:.0f}"), f"{ratio * 100:.0f}%" if ratio else "n/a",
                  _f(c["frames_per_call_mean"]), str(c.get("dropped", "")),
                  str((c.get("pipeline") or {}).get("limiting_stage", ""))[:40],
                  f"{_f(r['cpu']['process_pct_mean'], '{:.0f}')}/{_f(r['cpu']['system_pct_mean'], '{:.0f}')}",
                  _f(r["memory"]["process_rss_mb_max"], "{:.0f}"), g)
    return t


def stage_table(record: dict[str, Any]) -> Table:
    """Rows: stages; columns: cases; cells: mean / p50 / p95 ms per frame."""
    t = Table(title="Per-stage latency, ms per frame (mean / p50 / p95)")
    t.add_column("stage")
    for c in record["cases"]:
        t.add_column(f"b{c['batch']} s{c['streams']}", justify="right")
    for s in (*STAGES, "output"):
        row = []
        for c in record["cases"]:
            st = c["stages"].get(s, {})
            row.append("/".join(_f(st.get(k)) for k in ("mean_ms", "p50_ms", "p95_ms")) if st.get("n") else "-")
        t.add_row(s, *row)
    return t


def sizing_table(record: dict[str, Any]) -> Table:
    """The measured sizing and every device estimate; estimates are labelled ESTIMATE with their basis."""
    t = Table(title="Sizing (streams sustained)", show_lines=True)
    for col in ("device", "kind", "streams", "batch", "limiting stage (resource)", "conditions"):
        t.add_column(col, overflow="fold")
    sz = record.get("sizing") or {}
    if "error" in sz:
        t.add_row("this machine", "measured", "-", "-", "-", sz["error"])
    elif sz:
        res = sz["target_resolution"]
        t.add_row("this machine", "[green]MEASURED[/]", str(sz["streams"]), str(sz["batch"]),
                  f"{sz['limiting_stage']} ({sz['limiting_resource']})",
                  f"{res[0]}x{res[1]} @ {sz['target_fps']:g} fps; one stream max {sz['max_fps_one_stream']:.1f} fps")
    for key, e in (record.get("estimates") or {}).items():
        if "error" in e:
            t.add_row(key, "[yellow]ESTIMATE[/]", "-", "-", "-", "not possible (see below)")
            continue
        res = e["target_resolution"]
        t.add_row(e["target_name"], "[yellow]ESTIMATE[/] (datasheet)", str(e["streams"]), str(e["batch"]),
                  f"{e['limiting_stage']} ({e['limiting_resource']})",
                  f"{res[0]}x{res[1]} @ {e['target_fps']:g} fps; inference x{e['ratios']['applied']:.2f} "
                  f"vs {e['reference_name']}")
    return t


def print_bench(record: dict[str, Any], console: Console | None = None) -> None:
    """Print throughput, per-stage and sizing tables, estimate sources and notes."""
    con = console or Console()
    con.print(throughput_table(record))
    con.print(stage_table(record))
    con.print(sizing_table(record))
    m = record.get("model", {})
    con.print(f"model: {m.get('path')} ({m.get('backend')}, imgsz {m.get('imgsz')}, providers {m.get('providers')})")
    mps = record.get("cuda_mps")
    if mps and not str(mps).startswith("not needed"):  # NVDEC decode processes: whether their contexts shared the GPU
        con.print(f"CUDA MPS: {mps}")
    sz = record.get("sizing") or {}
    if sz.get("measured_on"):
        con.print(f"measured on: {sz['measured_on']}")
    for key, e in (record.get("estimates") or {}).items():
        if "error" in e:
            con.print(f"[yellow]estimate {key}:[/] {e['error']}")
        else:
            con.print(f"[yellow]estimate {key} is NOT a measurement[/]; sources: " + " | ".join(e["sources"]))
    peer = record.get("ultralytics_track")
    if peer:
        if peer.get("error"):
            con.print(f"[yellow]Ultralytics model.track not measured:[/] {peer['error']}")
        else:
            one = [c for c in record["cases"] if c["streams"] == 1]
            mine = max((c.get("steady_fps") or c["fps"]) for c in one) if one else None
            con.print(f"Ultralytics model.track, frame by frame, same frames and model: {peer['fps']:.1f} fps"
                      + (f"; pockit 1 stream: {mine:.1f} fps ({mine / peer['fps']:.2f}x)" if mine else ""))
    for n in record.get("notes", []):
        con.print(f"[dim]note: {n}[/]")
    if record.get("path"):
        con.print(f"written: {record['path']}")
