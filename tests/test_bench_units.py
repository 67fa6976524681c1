"""pockit.bench: tegrastats parser on real lines, percentiles, sizing math, estimate labelling."""
import json
import math

import pytest

from pockit.bench.monitors import TegrastatsParseError, parse_tegrastats, summarize_tegrastats
from pockit.bench.sizing import (ESTIMATE_LABEL, SizingError, StageCosts, estimate_for_device, load_devices,
                                 match_device, size_streams)
from pockit.bench.stats import percentile, summarize

# Real tegrastats lines, as published:
# JetPack 4 (L4T 32), Jetson Nano: jetson_stats' tegrastats emulator (rbonghi/jetson_stats tests/tegrastats)
NANO_JP4 = ("RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) "
            "CPU [30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 NVENC 716 NVDEC 716 "
            "APE 25 PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C thermal@59.75C POM_5V_IN 4520/4680 POM_5V_GPU 0/0 "
            "POM_5V_CPU 1078/1205")
# JetPack 4, Jetson AGX Xavier: same emulator (rails without the mW unit)
XAVIER_JP4 = ("RAM 4722/7844MB (lfb 1x512kB) CPU [55%@2035,14%@2034,27%@2034,55%@2035,47%@2035,45%@2035] "
              "SWAP 149/1024MB (cached 7MB) EMC_FREQ 2%@1866 GR3D_FREQ 57%@1300 APE 150 MTS fg 0% bg 0% "
              "BCPU@-45C MCPU@-45C GPU@-51C PLL@45C AO@47.5C Tboard@37C Tdiode@46.75C PMIC@100C thermal@46.4C "
              "VDD_IN 14025/14416 VDD_CPU 2209/2538 VDD_GPU 6854/6903 VDD_SOC 1371/1370 VDD_WIFI 19/19 NVENC 716 "
              "NVDEC 716 VDD_DDR 2702/2702")
# JetPack 6, Jetson AGX Orin 64GB: GDWR/jetson_exporter issue #14 (2025); -256C = sensor off
AGX_ORIN_JP6 = ("04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
                "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] "
                "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
                "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
                "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
                "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW")
# JetPack 6, Jetson Orin Nano: GR3D_FREQ without frequency, lower-case sensors, mW rails
ORIN_NANO_JP6 = ("05-05-2025 06:05:39 RAM 2639/7620MB (lfb 9x4MB) SWAP 0/3810MB (cached 0MB) "
                 "CPU [1%@729,4%@729,8%@729,4%@729,5%@729,4%@729] GR3D_FREQ 0% cpu@44.156C soc2@43.781C "
                 "soc0@44.687C gpu@45.968C tj@45.968C soc1@45.312C VDD_IN 5263mW/5263mW "
                 "VDD_CPU_GPU_CV 717mW/717mW VDD_SOC 1794mW/1794mW")
# JetPack 7.2 (L4T R39.2), AGX Orin: fragment quoted in rbonghi/jetson_stats PR #894 (util + GPC array,
# per-engine instances, temperature pairs)
ORIN_JP7 = ("07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,10%@2201] EMC_FREQ 3%@3199 "
            "GR3D_FREQ 0%@[1300,1300] NVENC0 off NVDEC0 off APE 174 cpu@52.968C/52.968C")
# L4T 32.5 documentation example (older "CPU [..]@freq" form)
DOC_L4T32 = "RAM 220/38955MB (lfb 847x4MB) SWAP 0/1978MB (cached 0MB) CPU [1%,5%,0%,0%]@102"


def test_tegrastats_nano_jp4():
    r = parse_tegrastats(NANO_JP4)
    assert (r["ram_used_mb"], r["ram_total_mb"]) == (1180, 3965)
    assert r["lfb"] == {"blocks": 1, "block_mb": 2}
    assert (r["swap_used_mb"], r["swap_total_mb"], r["swap_cached_mb"]) == (149, 1024, 7)
    assert [c["load_pct"] for c in r["cpu"]] == [30, 33, 28, 26]
    assert {c["freq_mhz"] for c in r["cpu"]} == {1036}
    assert r["cpu_load_pct"] == pytest.approx(29.25)
    assert (r["emc_load_pct"], r["emc_freq_mhz"]) == (10, 1600)
    assert (r["gpu_load_pct"], r["gpu_freq_mhz"]) == (0, [76])
    assert r["engines"]["NVDEC"] == {"on": True, "freq_mhz": 716}
    assert r["temps_c"] == {"PLL": 57.0, "CPU": 60.5, "PMIC": 100.0, "GPU": 59.0, "AO": 65.0, "thermal": 59.75}
    assert r["rails_mw"] == {"POM_5V_IN": {"now": 4520, "avg": 4680}, "POM_5V_GPU": {"now": 0, "avg": 0},
                             "POM_5V_CPU": {"now": 1078, "avg": 1205}}
    assert (r["power_mw"], r["power_rail"]) == (4520, "POM_5V_IN")


def test_tegrastats_xavier_jp4():
    r = parse_tegrastats(XAVIER_JP4)
    assert r["lfb"] == {"blocks": 1, "block_mb": 0.5}
    assert len(r["cpu"]) == 6 and r["cpu"][1] == {"core": 1, "load_pct": 14, "freq_mhz": 2034}
    assert r["cpu_load_pct"] == pytest.approx(40.5)
    assert (r["gpu_load_pct"], r["gpu_freq_mhz"]) == (57, [1300])
    assert r["temps_c"]["BCPU"] == -45.0 and r["temps_c"]["Tdiode"] == 46.75
    assert "MTS" not in r.get("engines", {})
    assert set(r["rails_mw"]) == {"VDD_IN", "VDD_CPU", "VDD_GPU", "VDD_SOC", "VDD_WIFI", "VDD_DDR"}
    assert (r["power_mw"], r["power_rail"]) == (14025, "VDD_IN")


def test_tegrastats_agx_orin_jp6():
    r = parse_tegrastats(AGX_ORIN_JP6)
    assert r["time"] == "04-11-2025 10:36:27"
    assert (r["ram_used_mb"], r["ram_total_mb"]) == (4321, 62801)
    assert len(r["cpu"]) == 12 and r["cpu_load_pct"] == 0.0
    assert (r["gpu_load_pct"], r["gpu_freq_mhz"]) == (0, [0, 0])
    assert r["engines"]["VIC_FREQ"] == {"on": True, "freq_mhz": 729}
    assert "CV0" not in r["temps_c"] and "GPU" not in r["temps_c"]  # -256 C: sensor off
    assert r["temps_c"]["tj"] == 44.343
    assert r["rails_mw"]["VDD_GPU_SOC"] == {"now": 2340, "avg": 2340}
    assert (r["power_mw"], r["power_rail"]) == (4025, "VIN_SYS_5V0")


def test_tegrastats_orin_nano_jp6():
    r = parse_tegrastats(ORIN_NANO_JP6)
    assert r["gpu_load_pct"] == 0 and "gpu_freq_mhz" not in r
    assert r["temps_c"]["gpu"] == 45.968
    assert (r["power_mw"], r["power_rail"]) == (5263, "VDD_IN")
    assert r["rails_mw"]["VDD_CPU_GPU_CV"]["now"] == 717


def test_tegrastats_jp7_and_docs():
    r = parse_tegrastats(ORIN_JP7)
    assert (r["gpu_load_pct"], r["gpu_freq_mhz"]) == (0, [1300, 1300])
    assert r["engines"]["NVENC0"] == {"on": False} and r["engines"]["NVDEC0"] == {"on": False}
    assert r["temps_c"] == {"cpu": 52.968}
    assert "power_mw" not in r
    d = parse_tegrastats(DOC_L4T32)
    assert [c["load_pct"] for c in d["cpu"]] == [1, 5, 0, 0] and {c["freq_mhz"] for c in d["cpu"]} == {102}


def test_tegrastats_off_cores_and_summary():
    line = NANO_JP4.replace("CPU [30%@1036,33%@1036,28%@1036,26%@1036]", "CPU [30%@1036,off,20%@1036,off]")
    r = parse_tegrastats(line)
    assert r["cpu"][1] == {"core": 1, "off": True} and r["cpu_load_pct"] == 25.0
    s = summarize_tegrastats([parse_tegrastats(NANO_JP4), r])
    assert s["available"] and s["n_samples"] == 2
    assert s["cpu_load_pct_mean"] == pytest.approx((29.25 + 25.0) / 2)
    assert s["power_w_mean"] == pytest.approx(4.52) and s["power_rail"] == "POM_5V_IN"
    assert s["temps_c_max"]["AO"] == 65.0
    assert summarize_tegrastats([], "tegrastats not found (not a Jetson)") == {
        "available": False, "reason": "tegrastats not found (not a Jetson)"}


def test_tegrastats_rejects_other_text():
    with pytest.raises(TegrastatsParseError, match="not a tegrastats line"):
        parse_tegrastats("Segmentation fault (core dumped)")


# -- stats -----------------------------------------------------------------------------------------

def test_percentile_hand_computed():
    v = [10, 20, 30, 40]
    assert percentile(v, 50) == 25.0            # rank 1.5 -> 20 + 0.5 * 10
    assert percentile(v, 95) == pytest.approx(38.5)  # rank 2.85 -> 30 + 0.85 * 10
    assert percentile(v, 0) == 10 and percentile(v, 100) == 40
    assert percentile([7], 95) == 7
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile(v, 101)


def test_summarize_ms():
    s = summarize([0.010, 0.020, 0.030, 0.040])
    assert s["n"] == 4 and s["mean_ms"] == pytest.approx(25.0) and s["p50_ms"] == pytest.approx(25.0)
    assert s["p95_ms"] == pytest.approx(38.5) and s["min_ms"] == pytest.approx(10) and s["max_ms"] == pytest.approx(40)
    assert s["total_s"] == pytest.approx(0.1)
    empty = summarize([])
    assert empty["n"] == 0 and empty["mean_ms"] is None
    json.dumps(empty)  # valid JSON, no NaN


# -- sizing ----------------------------------------------------------------------------------------

def _gpu_costs(**kw):
    base = dict(decode=10, preprocess=2, postprocess=1, tracking=1, rules=0, inference_ms={1: 20, 4: 8},
                resolution=(960, 540), inference_device="gpu", cpu_cores=4, gpu_name="Tesla T4",
                model={"path": "yolov8s.onnx", "imgsz": 640})
    base.update(kw)
    return StageCosts(**base)


def test_sizing_inference_limited_uses_batch():
    # CPU: 4 cores x 1000 ms / (10 fps x 14 ms) = 28.6 streams; GPU batch 1: 1000 / (10 x 20) = 5 streams,
    # so batch 4 is usable (5 >= 4): 1000 / (10 x 8) = 12.5 -> 12 streams, inference on the accelerator limits.
    r = size_streams(_gpu_costs(), target_fps=10, headroom=1.0)
    assert r["kind"] == "measurement"
    assert (r["streams"], r["batch"], r["limiting_resource"], r["limiting_stage"]) == (12, 4, "accelerator", "inference")
    assert r["streams_exact"] == pytest.approx(12.5)
    assert r["resources"]["cpu"]["streams"] == pytest.approx(4000 / 140)
    assert r["per_stage_streams"]["decode"] == pytest.approx(40.0)
    assert r["max_fps_one_stream"] == pytest.approx(125.0)


def test_sizing_resolution_scaling_and_unusable_batch():
    # 1920x1080 from 960x540 = 4x pixels: decode 40, preprocess 8 -> CPU 50 ms/frame; 25 fps: 4000/1250 = 3.2.
    # Batch 1 GPU: 1000/(25x20) = 2 -> 2 streams; batch 4 would allow min(3.2, 5) = 3.2 < 4 streams: unusable.
    r = size_streams(_gpu_costs(), target_fps=25, target_resolution=(1920, 1080), headroom=1.0)
    assert (r["streams"], r["batch"], r["limiting_stage"]) == (2, 1, "inference")
    assert r["resources"]["cpu"]["streams"] == pytest.approx(3.2)


def test_sizing_decode_limited():
    # decode-heavy 4K-like source: decode 100 ms, 2 cores, 10 fps: CPU 2000/(10 x 104) = 1.92; GPU at batch 1: 5.
    r = size_streams(_gpu_costs(decode=100, cpu_cores=2), target_fps=10, headroom=1.0)
    assert (r["streams"], r["limiting_resource"], r["limiting_stage"]) == (1, "cpu", "decode")
    # headroom 0.8 scales every capacity: 0.8 x 1.923 = 1.54 -> still 1
    assert size_streams(_gpu_costs(decode=100, cpu_cores=2), target_fps=10)["streams_exact"] == pytest.approx(
        0.8 * 2000 / 1040)


def test_sizing_cpu_inference_shares_the_cores():
    # inference 100 ms on a 2-thread pool = 200 core-ms; plus 14 ms CPU stages: 2000 / (5 x 214) = 1.87
    c = _gpu_costs(inference_device="cpu", inference_ms={1: 100}, inference_threads=2, cpu_cores=2)
    r = size_streams(c, target_fps=5, headroom=1.0)
    assert (r["streams"], r["limiting_resource"], r["limiting_stage"]) == (1, "cpu", "inference")
    assert r["streams_exact"] == pytest.approx(2000 / 1070)
    assert "accelerator" not in r["resources"]


def test_sizing_bad_input():
    with pytest.raises(SizingError, match="no inference timing"):
        _gpu_costs(inference_ms={})
    with pytest.raises(SizingError, match="decode"):
        _gpu_costs(decode=float("nan"))
    with pytest.raises(SizingError, match="target fps"):
        size_streams(_gpu_costs(), target_fps=0)


# -- estimates -------------------------------------------------------------------------------------

def test_device_table_complete_and_sourced():
    devs = load_devices()
    for key in ("jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb", "t4", "l4", "a2", "a10",
                "a100-80gb-sxm", "h100-sxm", "h200-sxm"):
        assert key in devs
        assert "nvidia" in devs[key]["source"].lower() and "https://" in devs[key]["source"]
    assert match_device("NVIDIA A100-SXM4-80GB") == "a100-80gb-sxm"
    assert match_device("NVIDIA A10") == "a10"
    assert match_device("Tesla T4") == "t4"
    assert match_device("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert match_device("NVIDIA Jetson AGX Orin Developer Kit") == "jetson-agx-orin-64gb"
    assert match_device("AMD EPYC") is None


def test_estimate_is_labelled_and_scaled_by_datasheet():
    # T4 -> Orin NX 16GB: compute ratio 130 / (100/2) = 2.6, bandwidth 320/102.4 = 3.125 -> x3.125 applied.
    r = estimate_for_device(_gpu_costs(), "jetson-orin-nx-16gb", target_fps=10, target_resolution=(960, 540),
                            headroom=1.0)
    assert r["kind"] == "estimate" and r["label"] == ESTIMATE_LABEL
    assert r["reference"] == "t4"
    assert any("DS-10712" in s for s in r["sources"]) and any("tesla-t4" in s for s in r["sources"])
    assert r["ratios"]["compute"] == pytest.approx(2.6) and r["ratios"]["memory_bandwidth"] == pytest.approx(3.125)
    assert r["ratios"]["applied"] == pytest.approx(3.125)
    # the batch-4 figure (most compute-bound) is scaled: 8 x 3.125 = 25 ms, never below the reference's own:
    # batch 1 -> max(20, 25) = 25; optimistic end max(20, 8 x 2.6) = 20.8
    assert r["inference_ms_range"]["1"] == pytest.approx([20.8, 25.0])
    assert r["inference_ms_range"]["4"] == pytest.approx([20.8, 25.0])
    # NVDEC: 18 x 1080p30 published -> 18 x (1920x1080x30)/(960x540x10) = 216 streams; decode leaves the CPU.
    # CPU (8 module cores): 8000/(10 x 4) = 200; GPU: 1000/(10 x 25) = 4 streams at batch 1 (batch 4 gives no
    # more), so 4 streams, inference limits.
    assert (r["streams"], r["batch"], r["limiting_stage"]) == (4, 1, "inference")
    assert r["per_stage_streams"]["decode"] == pytest.approx(216.0)
    assert any(a.startswith("decode on NVDEC: 18 x 1080p30") for a in r["assumptions"])


def test_estimate_refuses_cpu_measurement_and_unknown_devices():
    with pytest.raises(SizingError, match="measured on the CPU"):
        estimate_for_device(_gpu_costs(inference_device="cpu"), "t4", target_fps=10)
    with pytest.raises(SizingError, match="not in pockit/bench/devices.yaml"):
        estimate_for_device(_gpu_costs(gpu_name="Mystery GPU"), "t4", target_fps=10)
    with pytest.raises(SizingError, match="unknown device 'x9'"):
        estimate_for_device(_gpu_costs(), "x9", target_fps=10)
    assert math.isfinite(estimate_for_device(_gpu_costs(gpu_name="Mystery GPU"), "l4", target_fps=10,
                                             reference="t4")["streams_exact"])


def _burn(seconds):
    import time as _t

    end = _t.perf_counter() + seconds
    x = 0
    while _t.perf_counter() < end:
        x += 1


def test_resource_monitor_counts_child_processes():
    """The bench's monitor adds its children's CPU to the tree (the child list is refreshed at most once a
    second, so the measured process's interpreter lock is not taken for a walk of /proc every sample)."""
    import multiprocessing as mp
    import time as _t

    from pockit.bench.monitors import ResourceMonitor

    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_burn, args=(3.0,), daemon=True)
    child.start()
    with ResourceMonitor(interval=0.1, gpu=False, tegrastats=False) as mon:
        _t.sleep(2.5)
    child.join(5)
    summ = mon.summary()
    cpu = summ["cpu"]
    assert summ["memory"]["tree_processes_max"] >= 2 and summ["memory"]["tree_pss_mb_max"] is not None
    assert cpu["tree_cores_busy_mean"] > cpu["process_cores_busy_mean"] + 0.3, cpu


def test_resource_monitor_steady_cpu_is_the_mean_inside_the_window():
    """cpu.steady averages only the samples inside the pipeline's steady window (time.monotonic())."""
    from pockit.bench.monitors import ResourceMonitor

    mon = ResourceMonitor(interval=1.0, gpu=False, tegrastats=False)
    base = {"process_cpu_pct": 10.0, "process_rss_mb": 1.0, "system_mem_used_mb": 1.0}
    for t, tree, sys_pct, steal in ((0.0, 50.0, 5.0, 0.0), (1.0, 900.0, 60.0, 2.0), (2.0, 1100.0, 80.0, 6.0),
                                    (3.0, 100.0, 10.0, 0.0)):
        mon.samples.append({**base, "t": t, "tm": 100.0 + t, "tree_cpu_pct": tree, "system_cpu_pct": sys_pct,
                            "system_steal_pct": steal})
    whole = mon.summary()
    assert "steady" not in whole["cpu"] and whole["cpu"]["tree_cores_busy_mean"] == pytest.approx(5.375)
    assert whole["cpu"]["steal_pct_mean"] == 2.0 and whole["cpu"]["steal_pct_max"] == 6.0
    steady = mon.summary(window=(100.5, 102.5))["cpu"]["steady"]
    assert steady == {"n_samples": 2, "tree_cores_busy_mean": pytest.approx(10.0), "system_pct_mean": 70.0,
                      "steal_pct_mean": 4.0}
    assert mon.summary(window=(None, None))["cpu"].get("steady") is None
    assert mon.summary(window=(200.0, 300.0))["cpu"]["steady"]["tree_cores_busy_mean"] is None


def test_resource_monitor_steal_is_the_share_of_all_cpu_time_since_the_last_sample(monkeypatch):
    """system_steal_pct: the hypervisor's share of the host's CPU time between two samples; None where the OS
    does not count steal time."""
    import collections

    from pockit.bench import monitors

    T = collections.namedtuple("T", "user system idle steal")
    seq = iter([T(100.0, 50.0, 800.0, 10.0), T(130.0, 60.0, 850.0, 20.0)])
    monkeypatch.setattr(monitors.psutil, "cpu_times", lambda: next(seq))
    mon = monitors.ResourceMonitor(interval=1.0, gpu=False, tegrastats=False)
    assert mon._steal_pct() is None  # the first reading only primes it
    assert mon._steal_pct() == pytest.approx(100.0 * 10.0 / 100.0)
    U = collections.namedtuple("U", "user system idle")  # macOS, Windows: no steal counter
    monkeypatch.setattr(monitors.psutil, "cpu_times", lambda: U(1.0, 1.0, 1.0))
    assert mon._steal_pct() is None


def _case(batch, streams, overlap, model_only=None, inference_ms=0.3):
    st = {s: {"n": 100, "mean_ms": v} for s, v in
          {"decode": 3.0, "preprocess": 0.1, "inference": inference_ms, "postprocess": 0.05, "tracking": 0.7,
           "rules": 0.3}.items()}
    return {"frames": 100, "resolution": [768, 576], "streams": streams, "batch": batch, "stages": st,
            "frames_per_call_mean": batch * 0.6, "model_chunk": None, "model_only_ips": model_only,
            "pipeline": {"launch_finish_overlap": overlap}}


def test_gpu_sizing_takes_the_models_rate_from_model_only_when_launch_and_finish_overlap():
    """With launch/finish overlap the 'inference' stage is the finish's wait for the GPU; the GPU cost per frame
    for sizing comes from the same case's model-only images/s. The torch backend on CUDA counts as a GPU."""
    from pockit.bench.runner import _inference_device, costs_from_cases

    info = {"path": "m.pt", "backend": "torch", "providers": ["torch-2.11.0+cu130", "cuda:0", "fp16", "cuda-graph"]}
    assert _inference_device(info) == "gpu"
    assert _inference_device({"providers": ["torch-2.11.0+cpu", "cpu"]}) == "cpu"
    assert _inference_device({"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}) == "gpu"
    assert _inference_device({"providers": ["CPUExecutionProvider"]}) == "cpu"
    host = {"logical_cores": 16, "gpus": ["NVIDIA H200"], "cpu": "Xeon"}
    costs = costs_from_cases([_case(64, 64, True, model_only=4000.0, inference_ms=0.01)], host, info)
    assert costs.inference_device == "gpu" and costs.inference_ms == {64: pytest.approx(0.25)}
    # without model-only (or without overlap) the stage time is the cost, at the batch reached
    costs = costs_from_cases([_case(64, 64, True, model_only=None)], host, info)
    assert costs.inference_ms == {38: pytest.approx(0.3)}
    costs = costs_from_cases([_case(8, 8, False, model_only=4000.0)], host, {"providers": ["CPUExecutionProvider"]})
    assert costs.inference_device == "cpu" and costs.inference_ms == {5: pytest.approx(0.3)}


def test_cpu_sizing_charges_a_call_over_the_requests_in_flight():
    """Two CPU calls in flight (model.requests 2) each take their own wall time while the other runs: sizing
    charges preprocess / inference / postprocess per frame as the call's time over 2."""
    from pockit.bench.runner import costs_from_cases

    host = {"logical_cores": 2, "physical_cores": 2, "gpus": [], "cpu": "EPYC"}
    info = {"providers": ["CPUExecutionProvider"]}
    one = costs_from_cases([_case(1, 1, False, inference_ms=120.0)], host, info)
    case = _case(1, 1, True, inference_ms=180.0)
    case["pipeline"]["inference_requests"] = 2
    two = costs_from_cases([case], host, info)
    assert one.inference_ms == {1: pytest.approx(120.0)} and two.inference_ms == {1: pytest.approx(90.0)}
    assert two.preprocess == pytest.approx(0.05) and two.postprocess == pytest.approx(0.025)
    assert two.decode == one.decode == 3.0


def test_gpu_summary_table_reads_old_and_new_bench_records(tmp_path, capsys):
    """benchmarks/gpu/summarize.py prints one row per case from recorded JSONs (older ones without the thread
    waits, the frame-pool census or the threads' CPU time too), the waits as % of the run, the census (mean slots
    by place) and the threads' CPU (% of the run) when present."""
    import importlib.util
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gpu_summarize", root / "benchmarks/gpu/summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    old = root / "benchmarks/results/gpu_h200_2026-12-03d/c_nms_priority/s64_prio.json"
    shutil.copy(old, tmp_path / "a_old.json")
    rec = json.loads(old.read_text())
    rec["cases"][0]["wall_s"] = 10.0
    rec["cases"][0]["pipeline"]["thread_waits_s"] = {"launch_for_frames_s": 6.0, "launch_for_finish_s": 1.0,
                                                     "finish_for_gpu_s": 5.5}
    rec["cases"][0]["resources"]["cpu"]["steady"] = {"n_samples": 30, "tree_cores_busy_mean": 13.46,
                                                     "system_pct_mean": 88.0}
    rec["cases"][0]["pipeline"]["frame_pool"]["census"] = {"free": 8.0, "decode": 486.4, "batching": 6.0,
                                                           "gpu": 47.0, "tracking": 100.6, "samples": 60}
    rec["cases"][0]["pipeline"]["cpu_s"] = {"launch": 3.0, "finish": 4.44, "results": 1.0, "inference_process": 20.0}
    (tmp_path / "b_new.json").write_text(json.dumps(rec))
    mod.main(tmp_path)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| a_old") or x.startswith("| b_new")]
    assert len(lines) == 2 and lines[0].endswith("| n/a | n/a / 9.5 | n/a | n/a |")
    assert lines[1].endswith("| 60 / 10 / 55 % | 13.5 / 9.5 | 8 / - / 486 / 6 / 47 / 101 | 30 / 44 / 10 % |")
    assert "| 67 % |" in lines[0]  # e2e / model-only of the recorded 64-stream run


def test_bench_printout_says_whether_cuda_mps_ran():
    """The terminal report names the MPS state when NVDEC decode processes were involved, and stays quiet when MPS
    was not needed (every CPU run)."""
    from rich.console import Console

    from pockit.bench.report import print_bench

    def out(state):
        con = Console(record=True, width=200)
        print_bench({"config": "x", "host": {"cpu": "c"}, "cases": [], "cuda_mps": state}, con)
        return con.export_text()

    assert "CUDA MPS: started (/tmp/p/pipe), for: NVDEC" in out("started (/tmp/p/pipe), for: NVDEC")
    assert "CUDA MPS: not available: nvidia-cuda-mps-control" in out("not available: nvidia-cuda-mps-control is not")
    assert "CUDA MPS" not in out("not needed: the model is not on a CUDA GPU")


def test_steal_note_names_the_case_and_the_share_taken():
    from pockit.bench.runner import steal_note

    quiet = {"cpu": {"logical_cores": 16, "steal_pct_mean": 3.0, "steady": {"steal_pct_mean": 0.04}}}
    assert steal_note(quiet, 32, 32) is None  # the steady window decides, not the whole run's mean
    busy = {"cpu": {"logical_cores": 16, "steal_pct_mean": 4.0, "steady": {"steal_pct_mean": 5.26}}}
    note = steal_note(busy, 32, 64)
    assert "batch 32, 64 streams" in note and "5.3 %" in note and "0.8 of 16 cores" in note
    assert steal_note({"cpu": {"logical_cores": 2}}, 1, 1) is None  # not counted (not Linux): no note
    assert "2.0 %" in steal_note({"cpu": {"logical_cores": 2, "steal_pct_mean": 2.0}}, 1, 1)
