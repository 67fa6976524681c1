"""`pockit bench` end to end on real footage (TUD-Campus, 10 frames): bench.json schema, every stage timed."""
import json

import pytest
from click.testing import CliRunner

from pockit.bench.runner import SCHEMA, STAGES
from pockit.cli import cli

STAT_KEYS = {"n", "mean_ms", "p50_ms", "p95_ms", "min_ms", "max_ms", "total_s"}


@pytest.mark.slow
def test_bench_tud_campus_schema(tud_campus, tmp_path):
    out = tmp_path / "b" / "bench.json"
    res = CliRunner().invoke(cli, ["bench", "--model", "person-yolov8s", "--source", str(tud_campus),
                                   "--max-frames", "10", "--streams", "1,2", "--target", "t4",
                                   "--interval", "0.1", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    assert rec["schema"] == SCHEMA
    assert rec["synthetic_rules"] is True and rec["rules"] == ["bench_zone", "bench_line"]
    # the CPU default for the pinned model: OpenVINO when installed (CI installs it), else ONNX Runtime
    assert rec["model"]["backend"] in ("openvino", "onnx") and rec["model"]["sha256"]
    assert [(c["batch"], c["streams"]) for c in rec["cases"]] == [(1, 1), (1, 2)]
    for c in rec["cases"]:
        assert c["frames"] == 10 * c["streams"]
        assert c["resolution"] == [640, 480] and c["source_fps"] == 25.0
        assert c["inference_calls"] == c["frames"] and c["frames_per_call_mean"] == 1.0
        assert c["errors"] == []
        for s in STAGES:
            st = c["stages"][s]
            assert set(st) == STAT_KEYS
            assert st["n"] == c["frames"], s  # every stage timed once per frame
        r = c["resources"]
        assert r["n_samples"] >= 1 and r["cpu"]["logical_cores"] >= 1
        steady = r["cpu"]["steady"]  # the samples inside the pipeline's steady window (0 in a run this short)
        assert 0 <= steady["n_samples"] <= r["n_samples"]
        assert r["memory"]["process_rss_mb_max"] is not None
        assert r["gpu"]["available"] is False and r["gpu"]["reason"]
        assert r["jetson"] == {"available": False, "reason": "tegrastats not found (not a Jetson)"}
        assert (tmp_path / "b" / "cases" / f"b1-s{c['streams']}" / "run.json").exists()
    sz = rec["sizing"]
    assert sz["kind"] == "measurement" and sz["target_fps"] == 25.0 and sz["target_resolution"] == [640, 480]
    assert sz["limiting_stage"] in (*STAGES,) and sz["limiting_resource"] == "cpu"
    assert sz["costs"]["inference_device"] == "cpu" and set(sz["costs"]["inference_ms"]) == {"1"}
    feats = rec["host"]["cpu_features"]  # which kind of CPU made these figures (bf16 / INT8 default, ...)
    assert isinstance(feats, list) and all(f in sz["measured_on"] for f in feats)
    est = rec["estimates"]["t4"]
    assert est["kind"] == "estimate" and "measured on the CPU" in est["error"]
    assert "MEASURED" in res.output and "ESTIMATE" in res.output and "not possible" in res.output


def test_bench_bad_arguments(tmp_path):
    r = CliRunner().invoke(cli, ["bench"])
    assert r.exit_code != 0 and "CONFIG.yaml, or both --model and --source" in r.output
    r = CliRunner().invoke(cli, ["bench", "--model", "m", "--source", "s", "--target", "nope"])
    assert r.exit_code != 0 and "unknown device 'nope'" in r.output
    r = CliRunner().invoke(cli, ["bench", "--model", "m", "--source", "s", "--batch", "1,x"])
    assert r.exit_code != 0 and "--batch must be comma-separated integers" in r.output
    r = CliRunner().invoke(cli, ["bench", "--model", "m", "--source", "s", "--target-res", "1920"])
    assert r.exit_code != 0 and "WIDTHxHEIGHT" in r.output
    r = CliRunner().invoke(cli, ["bench", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "config file not found" in r.output
    r = CliRunner().invoke(cli, ["bench", "--list-devices"])
    assert r.exit_code == 0 and "jetson-orin-nx-16gb" in r.output and "h200-sxm" in r.output
