"""Jetson detection, the deployment bundle, and ONNX export checking."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from pockit.deploy import jetson as J

RELEASE = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"


def fake_root(tmp_path, release=RELEASE, model=b"NVIDIA Jetson AGX Orin Developer Kit\x00"):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(release)
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(model)
    return tmp_path


def test_detect_jetson_from_files(tmp_path):
    p = J.detect_platform(fake_root(tmp_path), run_nvpmodel=False)
    assert (p.is_jetson, p.l4t, p.jetpack, p.tensorrt, p.cuda) == (True, "36.4.3", "6.2", "10.3", "12.6")
    assert (p.module, p.compute_capability, p.dla_cores) == ("NVIDIA Jetson AGX Orin Developer Kit", "8.7", 2)
    assert J.detect_platform(tmp_path / "nothing").is_jetson is False
    assert J.detect_platform(tmp_path / "nothing").hints() == []


def test_release_tables_and_power_mode():
    assert J.parse_tegra_release("# R35 (release), REVISION: 4.1, GCID: 33958178") == "35.4.1"
    assert J.parse_tegra_release("garbage") is None
    assert J.jetpack_for("36.4.0") == ("6.1", "10.3", "12.6")
    assert J.jetpack_for("35.5.0") == ("5.1.3", "8.5.2", "11.4")
    assert J.jetpack_for("99.1") is None
    assert J.l4t_image_tag("36.4.3") == "r36.4.0"
    assert J.l4t_image_tag("35.4.1") == "r35.4.1"
    assert J.l4t_image_tag("36.9.9") == "r36.4.0" and J.l4t_image_tag(None) == "r36.4.0"
    assert J.parse_nvpmodel("NV Power Mode: 15W\n2\n") == ("15W", 2)
    assert J.module_info("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super") == ("8.7", 0, "Orin (nvgpu)")
    p = J.JetsonPlatform(is_jetson=True, power_mode="15W", power_mode_id=2, dla_cores=2)
    h = p.hints()
    assert "power mode is 15W (id 2), not MAXN" in h[0] and "sudo nvpmodel -m 0" in h[0]
    assert "sudo jetson_clocks" in h[1] and "--dla 0" in h[2]


def test_parse_tegrastats_is_the_bench_one():
    from pockit.bench.monitors import parse_tegrastats

    line = ("RAM 2890/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,5%@1510,9%@1510,3%@1510,off,off] "
            "GR3D_FREQ 45%@[624] VDD_IN 5320mW/5320mW VDD_CPU_GPU_CV 1200mW/1200mW")
    assert J.parse_tegrastats(line) == parse_tegrastats(line)


# -- bundle ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory, shared_data):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("poc")
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 640, 640])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, 8400])
    g = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g", [inp], [out])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(d / "person.onnx"))
    cfg = {
        "name": "Gate Watch", "sources": [
            {"id": "cam1", "uri": str(shared_data / "video" / "car-detection.mp4")},
            {"id": "cam2", "uri": "rtsp://10.0.0.5/stream1"},
            {"id": "cam3", "uri": "rtsp://10.0.0.6/stream1"},
        ],
        "model": {"path": "person.onnx", "imgsz": 640},
        "rules": [{"name": "door", "type": "zone_enter", "zone": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}],
    }
    (d / "poc.yaml").write_text(yaml.safe_dump(cfg))
    from click.testing import CliRunner

    from pockit.cli import cli

    out_dir = d / "bundle"
    r = CliRunner().invoke(cli, ["deploy", "bundle", str(d / "poc.yaml"), "--target", "jetson", "-o", str(out_dir),
                                 "--l4t", "36.3.0"])
    assert r.exit_code == 0, r.output
    return out_dir


def test_bundle_contents(bundle):
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    wheel = [f for f in files if f.startswith("wheels/")]
    assert len(wheel) == 1 and wheel[0].startswith("wheels/pockit-") and wheel[0].endswith(".whl")
    assert [f for f in files if not f.startswith("wheels/")] == [
        "Dockerfile", "MANIFEST.json", "README.md", "build_engine.sh", "config-onnx.yaml", "config.yaml",
        "docker-compose.yml", "media/car-detection.mp4", "models/person.onnx", "opencv_headless.py",
        "pockit-gate-watch.service", "run.sh",
    ]
    # the install step leaves one OpenCV wheel, with the same helper as scripts/test.sh
    assert (bundle / "opencv_headless.py").read_bytes() == (Path(J.__file__).with_name("opencv.py")).read_bytes()
    assert "&& python3 /tmp/opencv_headless.py --no-cache-dir --find-links /tmp/wheels" in (bundle / "Dockerfile").read_text()
    from pockit.config import load_config

    cfg = load_config(bundle / "config.yaml")
    assert (cfg.model.path, cfg.model.backend, cfg.model.batch) == ("models/person-fp16-b3.engine", "tensorrt", 3)
    assert [s.uri for s in cfg.sources] == ["media/car-detection.mp4", "rtsp://10.0.0.5/stream1", "rtsp://10.0.0.6/stream1"]
    onnx_cfg = load_config(bundle / "config-onnx.yaml")
    assert (onnx_cfg.model.path, onnx_cfg.model.backend) == ("models/person.onnx", "onnx")
    build = (bundle / "build_engine.sh").read_text()
    assert ('"$TRTEXEC" --onnx=models/person.onnx --saveEngine=models/person-fp16-b3.engine '
            "--minShapes=images:1x3x640x640 --optShapes=images:3x3x640x640 --maxShapes=images:3x3x640x640 --fp16 "
            "--memPoolSize=workspace:1024 --timingCacheFile=models/timing.cache") in build
    assert "FROM nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}" in (bundle / "Dockerfile").read_text()
    assert "ARG L4T_TAG=r36.3.0" in (bundle / "Dockerfile").read_text()
    man = json.loads((bundle / "MANIFEST.json").read_text())
    import hashlib

    assert man["files"]["models/person.onnx"] == hashlib.sha256((bundle / "models/person.onnx").read_bytes()).hexdigest()
    readme = (bundle / "README.md").read_text()
    for step in ("docker compose build", "docker compose run --rm pockit ./build_engine.sh",
                 "sudo systemctl daemon-reload && sudo systemctl enable --now pockit-gate-watch", "cat /etc/nv_tegra_release"):
        assert step in readme


def test_bundle_scripts_pass_bash_n_and_shellcheck(bundle):
    for sh in ("build_engine.sh", "run.sh"):
        assert (bundle / sh).stat().st_mode & 0o111
        r = subprocess.run(["bash", "-n", str(bundle / sh)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    # scripts/test.sh installs shellcheck (Debian package); its absence is a setup error, not a skip
    assert shutil.which("shellcheck"), "shellcheck not installed: apt-get install shellcheck (scripts/test.sh does)"
    r = subprocess.run(["shellcheck", "-s", "bash", str(bundle / "build_engine.sh"), str(bundle / "run.sh")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_bundle_scripts_run_without_trtexec(bundle, tmp_path):
    """build_engine.sh stops with a clear message when trtexec is missing (bash really runs it)."""
    work = tmp_path / "b"
    shutil.copytree(bundle, work)
    r = subprocess.run(["bash", str(work / "build_engine.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "TRTEXEC": "/nonexistent/trtexec"})
    assert r.returncode == 1 and "trtexec not found" in r.stderr
    (work / "models" / "person-fp16-b3.engine").write_bytes(b"x")
    r = subprocess.run(["bash", str(work / "build_engine.sh")], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "exists (use --force to rebuild)" in r.stdout


def test_compose_file_and_unit_validate(bundle):
    compose = yaml.safe_load((bundle / "docker-compose.yml").read_text())
    assert set(compose) == {"name", "services"} and compose["name"] == "pockit-gate-watch"
    svc = compose["services"]["pockit"]
    assert svc["runtime"] == "nvidia" and svc["network_mode"] == "host" and svc["restart"] == "on-failure"
    assert svc["build"] == {"context": ".", "args": {"L4T_TAG": "r36.3.0"}}
    assert svc["volumes"][0] == ".:/workspace" and svc["command"] == ["./run.sh"]
    allowed = {"build", "image", "runtime", "network_mode", "ipc", "restart", "working_dir", "volumes", "environment", "command"}
    assert set(svc) <= allowed
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        r = subprocess.run(["docker", "compose", "-f", str(bundle / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    unit = (bundle / "pockit-gate-watch.service").read_text()
    sections = [line for line in unit.splitlines() if line.startswith("[")]
    assert sections == ["[Unit]", "[Service]", "[Install]"]
    assert "ExecStart=/usr/bin/docker compose -f /opt/pockit/gate-watch/docker-compose.yml up" in unit
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(bundle / "pockit-gate-watch.service")], capture_output=True, text=True)
        assert "Unknown section" not in r.stderr and "Unknown key" not in r.stderr


def test_bundle_static_model_data_source_and_class_names(tmp_path, shared_data, monkeypatch):
    """A fixed-batch export (like the pinned person-yolov8s) gets a trtexec line without shape flags
    (trtexec rejects them for a static model), a data: source is copied into the bundle, and the
    model's class names go into config.yaml (trtexec writes none into the engine)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from pockit.config import load_config
    from pockit.deploy.bundle import make_bundle

    monkeypatch.setenv("POCKIT_DATA_DIR", str(shared_data))
    inp = helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1, 3, 640, 640])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 640, 640])
    m = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x_in"], ["output0"])], "g", [inp], [out]),
                          opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(m, {"names": "{0: 'Normal', 1: 'Fall'}"})
    onnx.save(m, str(tmp_path / "static.onnx"))
    cfg = {"name": "pets", "sources": [{"id": "pets", "uri": "data:mot/PETS09-S3-MF1"},
                                       {"id": "cam", "uri": "rtsp://10.0.0.5/s"}],
           "model": {"path": "static.onnx", "batch": 4}}
    (tmp_path / "poc.yaml").write_text(yaml.safe_dump(cfg))
    b = tmp_path / "bundle"
    man = make_bundle(tmp_path / "poc.yaml", "jetson", b)
    assert (man["engine"], man["batch"]) == ("static-fp16-b1.engine", 1)
    build = (b / "build_engine.sh").read_text()
    assert ('"$TRTEXEC" --onnx=models/static.onnx --saveEngine=models/static-fp16-b1.engine --fp16 '
            "--memPoolSize=workspace:1024 --timingCacheFile=models/timing.cache\n") in build
    assert "Shapes" not in build
    c = load_config(b / "config.yaml")
    assert [s.uri for s in c.sources] == ["media/PETS09-S3-MF1", "rtsp://10.0.0.5/s"]
    assert (c.model.batch, c.model.class_names) == (1, {0: "Normal", 1: "Fall"})
    assert len(list((b / "media" / "PETS09-S3-MF1" / "img1").glob("*.jpg"))) == 107
    assert (b / "media" / "PETS09-S3-MF1" / "seqinfo.ini").is_file()
    assert '"cuda-python>=12,<13"' in (b / "Dockerfile").read_text()


def test_bundle_int8_message_names_a_working_command(tmp_path, bundle):
    from pockit.deploy.bundle import make_bundle

    out = tmp_path / "b8"
    make_bundle(bundle.parent / "poc.yaml", "jetson", out, precision="int8")
    r = subprocess.run(["bash", str(out / "build_engine.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "TRTEXEC": "/bin/true"})
    assert r.returncode == 1
    assert ("pockit deploy engine models/person.onnx --precision int8 --calib calib/ --batch 1,3,3 --imgsz 640 "
            "-o models/person-int8-b3.engine") in r.stderr
    assert ("docker compose run --rm pockit pockit deploy engine models/person.onnx --precision int8 --calib calib/ "
            "--batch 1,3,3 --imgsz 640 -o models/person-int8-b3.engine") in (out / "README.md").read_text()


def test_bundle_errors(tmp_path, bundle):
    from pockit.deploy.bundle import BundleError, make_bundle

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "x", "sources": [{"id": "a", "uri": "rtsp://h/s"}], "model": {"path": "missing.onnx"}}))
    with pytest.raises(BundleError, match="missing.onnx"):
        make_bundle(cfg, "jetson", tmp_path / "out")
    with pytest.raises(BundleError, match="unknown target 'x86'"):
        make_bundle(cfg, "x86", tmp_path / "out")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(BundleError, match="engines only run on the GPU and TensorRT version"):
        make_bundle(cfg, "jetson", tmp_path / "out", model=engine)
    with pytest.raises(BundleError, match="is not empty"):
        make_bundle(cfg, "jetson", bundle, model=bundle / "models" / "person.onnx")


# -- export ------------------------------------------------------------------------------------
def test_compare_outputs_and_matching():
    from pockit.core import Detections
    from pockit.deploy.export import ExportError, compare_outputs
    from pockit.resolve import match_detections

    a = np.zeros((1, 6, 5), np.float32)
    b = a.copy()
    b[0, 1, 2] = 0.5
    b[0, 5, 4] = 0.01
    assert compare_outputs(a, b, nc=2) == (0.5, 0.5, pytest.approx(0.01))
    with pytest.raises(ExportError, match="output shapes differ"):
        compare_outputs(a, np.zeros((1, 5, 6)))
    x = Detections([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 1])
    y = Detections([[0, 0, 10, 11]], [0.9], [1])
    assert match_detections(x, y) == [(1, 0, pytest.approx(10 / 11))]  # same class only
    assert match_detections(x, y, same_class=False) == [(0, 0, pytest.approx(10 / 11))]


@pytest.mark.slow
@pytest.mark.ml
def test_export_and_check_real_model(tmp_path, tud_campus):
    pytest.importorskip("ultralytics")
    import cv2

    from pockit.deploy.export import check_export, export_onnx, onnx_summary
    from pockit.inference import resolve_model

    pt = tmp_path / "person.pt"
    shutil.copy(resolve_model("person-yolov8s-pt"), pt)
    path = export_onnx(pt, tmp_path / "out" / "person.onnx", opset=17, dynamic=True, simplify=True)
    s = onnx_summary(path)
    assert s["opset"] == 17 and s["inputs"] == {"images": ["batch", 3, "height", "width"]}
    assert s["outputs"] == {"output0": ["batch", 6, "anchors"]}
    imgs = [cv2.imread(str(f)) for f in sorted((tud_campus / "img1").glob("*.jpg"))[:6]]
    r = check_export(pt, path, imgs)
    assert r.frames == 6 and r.detections_torch == r.detections_onnx == r.matched == 40
    assert r.max_abs_diff_scores < 1e-4 and r.max_abs_diff_boxes < 0.05 and r.ok()


@pytest.mark.ml
def test_export_never_touches_files_beside_the_weights(tmp_path):
    """Ultralytics writes <stem>.onnx beside the .pt; pockit's cache keeps a checksummed <stem>.onnx there."""
    from pockit.deploy.export import export_onnx
    from pockit.inference import resolve_model

    pt = tmp_path / "person-yolov8s.pt"
    shutil.copy2(resolve_model("person-yolov8s-pt"), pt)
    sentinel = tmp_path / "person-yolov8s.onnx"
    sentinel.write_bytes(b"the pinned model")
    out = export_onnx(pt, output=tmp_path / "out" / "dyn.onnx", imgsz=128, simplify=False)
    assert out == tmp_path / "out" / "dyn.onnx" and out.stat().st_size > 1_000_000
    assert sentinel.read_bytes() == b"the pinned model"
