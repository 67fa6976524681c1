"""Print the GPU benchmark table (markdown) from the bench JSON files written by benchmarks/gpu/run.sh.

Usage: python benchmarks/gpu/summarize.py OUT_DIR
Reads only what `pockit bench` wrote; computes nothing but ratios.
"""
import json
import sys
from pathlib import Path


def row(name, rec):
    out = []
    for c in rec["cases"]:
        p = c.get("pipeline") or {}
        lat = p.get("latency_capture_to_tracked") or {}
        gpu = (c["resources"].get("gpu") or {}).get("devices") or [{}]
        mem = c["resources"].get("memory") or {}
        ratio = c.get("e2e_over_model_only")
        stats_drop = c.get("dropped")
        out.append(
            f"| {name} | {c['streams']} | {c['batch']} | {c['frames']} | {c['fps']:.0f} | "
            f"{(c.get('steady_fps') or 0):.0f} | {c['model_only_ips']:.0f} | {ratio * 100:.0f} % | "
            if c.get("model_only_ips") else
            f"| {name} | {c['streams']} | {c['batch']} | {c['frames']} | {c['fps']:.0f} | "
            f"{(c.get('steady_fps') or 0):.0f} | n/a | n/a | ")
        out[-1] += (f"{stats_drop} | {lat.get('p50_ms', 'n/a')} / {lat.get('p95_ms', 'n/a')} | "
                    f"{gpu[0].get('util_pct_mean') or 0:.0f} % | "
                    + (f"{mem['tree_pss_mb_first']:.0f} → {mem['tree_pss_mb_last']:.0f} (PSS, all processes) | "
                       if mem.get('tree_pss_mb_first') is not None and mem.get('tree_pss_mb_last') is not None else
                       f"{mem.get('process_rss_mb_first') or 0:.0f} → {mem.get('process_rss_mb_last') or 0:.0f} | ")
                    + f"{p.get('limiting_stage', '')} | {_waits(p, c.get('wall_s'))} | {_cores(c)} | {_census(p)} | "
                    f"{_thread_cpu(p, c.get('wall_s'))} |")
    return out


def _waits(p, wall):
    """The launch thread's waits (for frames / for the finish) and the finish's wait for the GPU, % of the run
    (run.json's thread_waits_s; records older than the sixth GPU session have none)."""
    w = p.get("thread_waits_s")
    if not w or not wall:
        return "n/a"
    return (f"{w['launch_for_frames_s'] / wall * 100:.0f} / {w['launch_for_finish_s'] / wall * 100:.0f} / "
            f"{w['finish_for_gpu_s'] / wall * 100:.0f} %")


def _census(p):
    """Mean frame slots by place (run.json's frame_pool.census; records before the tenth GPU session have none;
    slots free in the decode processes are counted apart from the eleventh on, '-' before)."""
    cen = (p.get("frame_pool") or {}).get("census")
    if not cen:
        return "n/a"
    return " / ".join("-" if k not in cen else f"{cen[k]:.0f}"
                      for k in ("free", "decode_free", "decode", "batching", "gpu", "tracking"))


def _thread_cpu(p, wall):
    """CPU time of the launch / finish / results threads, % of the run (run.json's cpu_s; records before the
    eleventh GPU session have none). Set against the stage's busy % it shows time lost to waits for the
    interpreter lock or CUDA syncs."""
    cpu = p.get("cpu_s")
    if not cpu or not wall:
        return "n/a"
    return " / ".join(f"{cpu.get(k, 0) / wall * 100:.0f}" for k in ("launch", "finish", "results")) + " %"


def _cores(c):
    """Host cores busy (pockit's processes) over the steady part of the run / the whole run (records older than
    the seventh GPU session have only the whole-run mean)."""
    cpu = (c.get("resources") or {}).get("cpu") or {}
    whole = cpu.get("tree_cores_busy_mean")
    steady = (cpu.get("steady") or {}).get("tree_cores_busy_mean")
    w = f"{whole:.1f}" if whole is not None else "n/a"
    return f"{steady:.1f} / {w}" if steady is not None else f"n/a / {w}"


def main(d):
    d = Path(d)
    print("| case | streams | batch | frames | FPS (wall) | FPS (steady) | model-only img/s | e2e / model | "
          "dropped | capture→tracked p50 / p95 ms | GPU util | RSS MB start → end | limiting stage | "
          "waits: launch for frames / for finish, finish for GPU | host cores busy, steady / whole run | "
          "slots free / free in decode processes / decoding or on their way / batching / GPU / tracking (mean) | "
          "CPU of launch / finish / results threads |")
    print("|" + "---|" * 17)
    peer = None
    for f in sorted(d.glob("*.json")):
        rec = json.loads(f.read_text())
        for line in row(f.stem, rec):
            print(line)
        if rec.get("ultralytics_track"):
            peer = (rec["ultralytics_track"], rec["cases"][0])
    if peer:
        u, c = peer
        if u.get("fps"):
            mine = c.get("steady_fps") or c["fps"]
            print(f"\nOne stream: pockit {mine:.1f} fps vs Ultralytics model.track {u['fps']:.1f} fps "
                  f"({mine / u['fps']:.2f}x), {u['frames']} frames")
        else:
            print(f"\nUltralytics: {u}")


if __name__ == "__main__":
    main(sys.argv[1])
