"""`pockit deploy plan`: cameras of one site over N boxes from measured (or estimated) per-stream costs."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from pockit.cli import cli
from pockit.config import load_config
from pockit.deploy.plan import PlanError, load_bench, plan_site


def _bench(path, costs, cases=((1, 500.0), (4, 560.0)), memory_gb=8.0):
    rec = {"host": {"memory_gb": memory_gb, "logical_cores": costs["cpu_cores"]},
           "cases": [{"streams": n, "batch": 1, "resources": {"memory": {"process_rss_mb_max": m}}} for n, m in cases],
           "sizing": {"kind": "measurement", "costs": costs}}
    path.write_text(json.dumps(rec))
    return path


CPU_COSTS = {"decode": 10.0, "preprocess": 10.0, "postprocess": 1.0, "tracking": 2.0, "rules": 1.0,
             "inference_ms": {"1": 100.0}, "resolution": [640, 480], "inference_device": "cpu",
             "inference_threads": 1, "cpu_cores": 4, "model": {"path": "m.onnx"}, "measured_on": "test host"}


def _site(tmp_path, n_small=14, big_fps=2, extra_sources=()):
    srcs = [{"id": f"cam{i:02d}", "uri": f"rtsp://10.0.0.{i}/s", "fps": 2} for i in range(n_small)]
    srcs += [{"id": f"big{i}", "uri": f"rtsp://10.0.1.{i}/s", "fps": big_fps} for i in range(2)]
    srcs += list(extra_sources)
    cfg = {"name": "mall", "sources": srcs, "model": {"path": "person.onnx"},
           "rules": [{"name": "door", "type": "zone_enter", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]],
                      "sources": ["cam00", "big1"]},
                     {"name": "all", "type": "loitering", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]], "dwell": 5}],
           "outputs": {"sinks": [{"type": "jsonl"}, {"type": "mqtt", "host": "collector.local", "snapshots": True}]}}
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_plan_balances_cpu_bound_cameras_and_names_the_limit(tmp_path):
    """Per camera at 640x480, 2 fps: (10+10+1+2+1 + 100 inference on the CPU) x 2 = 248 core-ms/s; the two
    1280x960 ones scale decode+preprocess x4: (40+40+1+2+1+100) x 2 = 368. 4 cores x 1000 x 0.8 = 3200 per
    box: 4208 in all -> 2 boxes of 7 x 248 + 368 = 2104 (65.75 %) each."""
    bench = _bench(tmp_path / "bench.json", CPU_COSTS)
    res = {"big0": "1280x960", "big1": "1280x960"}
    plan = plan_site(_site(tmp_path), bench, res=res, default_res="640x480")
    assert (plan["kind"], plan["fewest_boxes"], plan["cameras"]) == ("measurement", 2, 16)
    assert plan["capacity_per_box"] == {"cpu": 3200.0, "memory": 8192 * 0.8}
    assert [len(b["cameras"]) for b in plan["boxes"]] == [8, 8]
    for b in plan["boxes"]:
        assert b["use"]["cpu"] == pytest.approx(2104 / 3200, abs=1e-4)
        assert (b["limiting_resource"], b["limiting_stage"]) == ("cpu", "inference")
        assert b["demand"]["cpu"]["inference"] == pytest.approx(8 * 200.0)
        assert b["demand"]["memory"] == {"frames": pytest.approx(7 * 20.0 + 80.0), "fixed": 500.0}
        assert sum(c["id"].startswith("big") for c in b["cameras"]) == 1
    assert (plan["limiting_resource"], plan["limiting_stage"]) == ("cpu", "inference")
    assert any("memory per camera scaled by pixels from the measured: process memory 500 MB at 1 stream(s), "
               "560 MB at 4" in a for a in plan["assumptions"])

    with pytest.raises(PlanError, match=r"16 cameras do not fit on 1 box\(es\) of test host with 80% headroom: a "
                                        r"box would need 132% of its usable cpu \(inference\); the fewest boxes "
                                        r"that fit: 2"):
        plan_site(_site(tmp_path), bench, res=res, default_res="640x480", boxes=1)
    three = plan_site(_site(tmp_path), bench, res=res, default_res="640x480", boxes=3)
    assert sorted(len(b["cameras"]) for b in three["boxes"]) == [5, 5, 6]
    assert max(b["use"]["cpu"] for b in three["boxes"]) < 0.5


def test_plan_refuses_what_it_cannot_size(tmp_path):
    bench = _bench(tmp_path / "bench.json", CPU_COSTS)
    with pytest.raises(PlanError, match=r"cannot size these cameras .*cam00 \(rtsp://10.0.0.0/s\): resolution;"):
        plan_site(_site(tmp_path), bench)
    with pytest.raises(PlanError, match=r"camera big0 \(1280x960 at 30 fps\) alone needs 172% of the usable cpu of "
                                        r"one box \(test host\)"):
        plan_site(_site(tmp_path, big_fps=30), bench, res={"big0": "1280x960", "big1": "1280x960"},
                  default_res="640x480")
    with pytest.raises(PlanError, match=r"--res names camera\(s\) not in the config: \['nope'\]"):
        plan_site(_site(tmp_path), bench, res={"nope": "1x1"}, default_res="640x480")
    (tmp_path / "old.json").write_text(json.dumps({"sizing": {"error": "stages without timings: ['postprocess']"}}))
    with pytest.raises(PlanError, match=r"old.json: no per-stage costs in 'sizing.costs' \(bench said: stages "
                                        r"without timings: \['postprocess'\]\)"):
        load_bench(tmp_path / "old.json")


def test_plan_probes_local_cameras(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("POCKIT_DATA_DIR", str(shared_data))
    bench = _bench(tmp_path / "bench.json", CPU_COSTS)
    site = _site(tmp_path, n_small=1, extra_sources=[{"id": "campus", "uri": "data:mot/TUD-Campus"}])
    plan = plan_site(site, bench, default_res="320x240")
    cams = {c["id"]: c for b in plan["boxes"] for c in b["cameras"]}
    assert (cams["campus"]["width"], cams["campus"]["height"], cams["campus"]["fps"],
            cams["campus"]["known_from"]) == (640, 480, 25.0, "probed")
    assert (cams["cam00"]["width"], cams["cam00"]["known_from"]) == (320, "--default-res")


def test_plan_estimate_for_a_jetson_moves_decode_to_nvdec(tmp_path):
    gpu = {**CPU_COSTS, "inference_ms": {"1": 2.0, "8": 0.5}, "resolution": [1920, 1080],
           "inference_device": "gpu", "cpu_cores": 16, "gpu_name": "NVIDIA H200", "measured_on": "H200 host"}
    bench = _bench(tmp_path / "bench.json", gpu, cases=((1, 1500.0), (8, 1850.0)), memory_gb=128)
    plan = plan_site(_site(tmp_path, n_small=10), bench, target="jetson-orin-nx-16gb", default_res="1920x1080")
    assert plan["kind"] == "estimate" and plan["label"].startswith("ESTIMATE")
    assert plan["device"] == "NVIDIA Jetson Orin NX 16GB"
    assert plan["capacity_per_box"] == {"cpu": 6400.0, "accelerator": 800.0,
                                        "nvdec": pytest.approx(18 * 1920 * 1080 * 30 * 0.8),
                                        "memory": pytest.approx(16 * 1024 * 0.8)}
    for b in plan["boxes"]:
        assert b["demand"]["cpu"]["decode"] == 0.0
        assert b["demand"]["nvdec"]["decode"] == pytest.approx(len(b["cameras"]) * 1920 * 1080 * 2)
        assert max(b["use"].values()) <= 1.0
    assert plan["limiting_resource"] in ("accelerator", "cpu", "nvdec", "memory")
    worst = max(plan["boxes"], key=lambda b: max(b["use"].values()))
    assert plan["limiting_resource"] == max(worst["use"], key=worst["use"].get)
    assert any("datasheet" in a or "ratios" in a for a in plan["assumptions"]) and plan["sources"]
    with pytest.raises(PlanError, match="inference was measured on the CPU"):
        plan_site(_site(tmp_path), _bench(tmp_path / "cpu.json", CPU_COSTS), target="jetson-orin-nx-16gb",
                  default_res="640x480")


def test_plan_cli_writes_box_configs_and_bundles(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 640, 640])
    m = helper.make_model(helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g", [inp], [out]),
                          opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, str(tmp_path / "person.onnx"))
    site = _site(tmp_path, n_small=3)
    bench = _bench(tmp_path / "bench.json", {**CPU_COSTS, "cpu_cores": 1})
    r = CliRunner().invoke(cli, ["deploy", "plan", str(site), "--bench", str(bench), "--default-res", "640x480",
                                 "--res", "big0=640x480", "--res", "big1=640x480", "-o", str(tmp_path / "plan")])
    assert r.exit_code == 0, r.output
    # 1 core: 800 core-ms/s per box, 248 per camera -> 3 per box, 5 cameras -> 2 boxes (3 + 2)
    assert "5 cameras on 2 box(es) of test host (measurement" in r.output
    assert "limiting resource: cpu (inference), headroom 80% kept" in r.output
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert [b["box"] for b in plan["boxes"]] == ["box-01", "box-02"]
    seen = []
    for b in plan["boxes"]:
        c = load_config(tmp_path / "plan" / b["config"])
        assert c.outputs.box_id == b["box"]
        ids = [s.id for s in c.sources]
        assert ids == sorted(x["id"] for x in b["cameras"]) or set(ids) == {x["id"] for x in b["cameras"]}
        seen += ids
        door = [x for x in c.rules if x.name == "door"]
        assert [x.sources for x in door] == ([[s for s in ("cam00", "big1") if s in ids]] if
                                              {"cam00", "big1"} & set(ids) else [])
        assert [x.name for x in c.rules if x.name == "all"] == ["all"]
        bundle = load_config(tmp_path / "plan" / b["box"] / "config.yaml")
        assert bundle.outputs.box_id == b["box"] and [s.id for s in bundle.sources] == ids
        assert (tmp_path / "plan" / b["box"] / "MANIFEST.json").is_file()
    assert sorted(seen) == sorted(["cam00", "cam01", "cam02", "big0", "big1"])
