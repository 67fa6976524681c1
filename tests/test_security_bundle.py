"""`pockit deploy bundle` against hostile names: every config name, model file name and source name
lands in the generated files as data (shell scripts really run under bash with stub commands, the
systemd unit and Dockerfile keep exactly their sections and keys), two same-named media files both
survive, and the pockit wheel builds with the setuptools pyproject.toml asks for."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pockit.deploy import bundle as B
from pockit.deploy.quoting import (
    md_code,
    one_line,
    sh,
    unit_arg,
    unit_value,
    yaml_scalar,
)

MARK = "PWNED"  # every payload that would run a command creates a file whose name starts with this

# names that pass config validation (one line): they reach the comment lines, Description=, README
NAME_PAYLOADS = [
    f"x$(touch {MARK}_n1)", f"x`touch {MARK}_n2`", f"x; touch {MARK}_n3 #", "it's \"quoted\" $HOME ${HOME}",
    f"a' ; touch {MARK}_n4; '", "%n %H $$ %%i", f"x\" && touch {MARK}_n5 && echo \"",
]
# names the config refuses (control characters): rendered straight through the templates instead
NEWLINE_NAME_PAYLOADS = [
    f"evil\ntouch {MARK}_l1 #",
    "cam\n[Service]\nExecStartPre=/usr/bin/touch /tmp/" + MARK + "_l2\n[Unit]\nX-Note=",
    f"a\r\ntouch {MARK}_l3\u2028[Install]\\",
]
# model file names: reach build_engine.sh (ENGINE=, trtexec arguments, the INT8 hint), README, configs
MODEL_PAYLOADS = [
    f"m$(touch {MARK}_m1)", f"m`touch {MARK}_m2`", f"m;touch {MARK}_m3;", "m'q\"$HOME",
    f"m\ntouch {MARK}_m4\n", "m --saveEngine=x", "-m $((1+1))",
]
# local media file names and source ids: reach media/, config.yaml, README
SOURCE_PAYLOADS = [(f"c$(touch${{IFS}}{MARK}_s1)", f"v`touch {MARK}_s2`;$HOME.mp4"),
                   (f"c'\"`touch${{IFS}}{MARK}_s3`;", "v\nx.mp4")]


def _onnx(path: Path, batch="batch") -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 640, 640])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 6, 8400])
    g = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g", [inp], [out])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def no_wheel(monkeypatch):
    """The pockit wheel is irrelevant to quoting: skip the slow pip wheel build."""
    monkeypatch.setattr(B, "_build_wheel", lambda dest: None)


def _write_cfg(d: Path, name: str, model: str, sources: list[dict]) -> Path:
    cfg = {"name": name, "sources": sources, "model": {"path": model, "imgsz": 640}}
    p = d / "poc.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


def _stubs(d: Path) -> tuple[Path, Path]:
    """A bin/ with a `pockit` stub and a trtexec stub; each records its arguments (NUL-separated)."""
    bin_dir = d / "stubbin"
    bin_dir.mkdir()
    rec = d / "calls"
    rec.mkdir()
    (bin_dir / "pockit").write_text(f'#!/bin/bash\nprintf "%s\\0" "$@" > {shlex.quote(str(rec / "pockit"))}\n')
    trt = bin_dir / "trtexec-stub"
    trt.write_text(f'#!/bin/bash\nprintf "%s\\0" "$@" > {shlex.quote(str(rec / "trtexec"))}\n'
                   'for a in "$@"; do case "$a" in --saveEngine=*) : > "${a#--saveEngine=}";; esac; done\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir, rec


def _args(rec: Path, name: str) -> list[str]:
    return (rec / name).read_bytes().decode().split("\0")[:-1]


def _markers(*roots: Path) -> list[Path]:
    found = []
    for r in roots:
        found += [p for p in Path(r).rglob(f"{MARK}*")]
    return found + [p for p in Path("/tmp").glob(f"{MARK}_*")]


def _run_scripts(bundle: Path, tmp: Path) -> dict:
    """Run build_engine.sh then run.sh with stub trtexec/pockit; what the stubs received."""
    bin_dir, rec = _stubs(tmp)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": "/nonexistent-home", "TRTEXEC": str(bin_dir / "trtexec-stub")}
    r = subprocess.run(["bash", "build_engine.sh"], cwd=bundle, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    trt = _args(rec, "trtexec")
    r = subprocess.run(["bash", "run.sh", "--max-frames", "1"], cwd=bundle, check=False, capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return {"trtexec": trt, "pockit": _args(rec, "pockit")}


def parse_unit(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """A systemd unit as systemd reads it: comments skipped, trailing-backslash continuations joined;
    Python's splitlines() breaks on more characters than systemd, so this never sees fewer lines."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    cont = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cont and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            cont += line[:-1] + " "
            continue
        line, cont = cont + line, ""
        if line.startswith("["):
            out.append((line, []))
        else:
            k, _, v = line.partition("=")
            out[-1][1].append((k.strip(), v.strip()))
    return out


UNIT_SHAPE = [("[Unit]", ["Description", "After", "Requires", "Wants"]),
              ("[Service]", ["Type", "WorkingDirectory", "ExecStart", "ExecStop", "Restart", "RestartSec",
                             "TimeoutStartSec"]),
              ("[Install]", ["WantedBy"])]


def dockerfile_instructions(text: str) -> list[str]:
    out, cont = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cont and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            cont += line[:-1]
            continue
        out.append((cont + line).split()[0])
        cont = ""
    return out


def _check_static_files(bundle: Path, service: str, title: str) -> None:
    unit = parse_unit((bundle / f"{service}.service").read_text())
    assert [(s, [k for k, _ in kv]) for s, kv in unit] == UNIT_SHAPE
    assert dict(unit[0][1])["Description"] == f'pockit PoC "{unit_value(title)}"'
    assert dockerfile_instructions((bundle / "Dockerfile").read_text()) == ["ARG", "FROM", "RUN", "COPY", "COPY", "RUN", "WORKDIR"]
    compose = yaml.safe_load((bundle / "docker-compose.yml").read_text())
    assert set(compose) == {"name", "services"} and compose["name"] == service
    assert compose["services"]["pockit"]["command"] == ["./run.sh"]
    for f in ("run.sh", "build_engine.sh", "Dockerfile", "README.md"):
        for line in (bundle / f).read_text().splitlines():
            assert not line.lstrip().startswith(("touch", "ExecStartPre", "[Service]", "X-Note")), (f, line)
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-s", "bash", str(bundle / "build_engine.sh"), str(bundle / "run.sh")],
                           check=False, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


# -- the quoting helpers ------------------------------------------------------------------------
ALL_TEXT = NAME_PAYLOADS + NEWLINE_NAME_PAYLOADS + [m + ".onnx" for m in MODEL_PAYLOADS] + ["", "plain-name_1.0"]


@pytest.mark.parametrize("value", ALL_TEXT)
def test_sh_is_one_word_with_the_exact_value(value, tmp_path):
    r = subprocess.run(["bash", "-c", f"printf %s {sh(value)}"], check=False, capture_output=True, cwd=tmp_path, timeout=10)
    assert r.stdout.decode() == value and r.returncode == 0
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", ALL_TEXT)
def test_line_and_yaml_filters(value):
    assert "\n" not in one_line(value) and "\r" not in one_line(value) and len(one_line(value).splitlines()) <= 1
    assert yaml.safe_load(f"k: {yaml_scalar(value)}  # comment\n") == {"k": value}
    code = md_code(value)
    fence = code[: len(code) - len(code.lstrip("`"))]
    assert fence not in code[len(fence):-len(fence)] and len(code.splitlines()) == 1


def test_unit_filters():
    assert unit_value("50%\nX=1") == "50%%\\x0aX=1"
    assert unit_arg("/opt/pockit/gate-watch/docker-compose.yml") == "/opt/pockit/gate-watch/docker-compose.yml"
    assert unit_arg('a b"$HOME%i\\\n') == '"a b\\"$$HOME%%i\\\\\\n"'


# -- end to end: hostile names through make_bundle, scripts run by bash ---------------------------
def test_hostile_names_are_inert_end_to_end(tmp_path, no_wheel, monkeypatch, capsys):
    tried = executed = 0
    baseline_lines = None
    for i, (name, model) in enumerate(zip(NAME_PAYLOADS, MODEL_PAYLOADS)):
        d = tmp_path / f"case{i}"
        d.mkdir()
        _onnx(d / f"{model}.onnx")
        sid, fname = SOURCE_PAYLOADS[i % len(SOURCE_PAYLOADS)]
        (d / "footage").mkdir()
        (d / "footage" / fname).write_bytes(b"video bytes %d" % i)
        cfg = _write_cfg(d, name, f"{model}.onnx",
                         [{"id": sid, "uri": str(d / "footage" / fname)}, {"id": "cam2", "uri": "rtsp://10.0.0.5/s"}])
        out = d / "bundle"
        man = B.make_bundle(cfg, "jetson", out)
        tried += 2 + (i < len(SOURCE_PAYLOADS)) * 2
        engine = f"{model}-fp16-b2.engine"
        assert (man["model"], man["engine"]) == (f"{model}.onnx", engine)
        calls = _run_scripts(out, d)
        assert calls["trtexec"][:2] == [f"--onnx=models/{model}.onnx", f"--saveEngine=models/{engine}"]
        assert calls["pockit"] == ["run", "config.yaml", "--max-frames", "1"]
        assert (out / "models" / engine).is_file()  # the stub built exactly the file the script names
        bundled = yaml.safe_load((out / "config.yaml").read_text())
        assert bundled["name"] == name and bundled["sources"][0]["id"] == sid
        assert (out / bundled["sources"][0]["uri"]).read_bytes() == b"video bytes %d" % i
        service = f"pockit-{B._slug(name)}"
        _check_static_files(out, service, name)
        lines = {f: len((out / f).read_text().splitlines()) for f in ("run.sh", "build_engine.sh", "Dockerfile",
                                                                       f"{service}.service", "README.md")}
        lines = {k.replace(service, "unit"): v for k, v in lines.items()}
        baseline_lines = baseline_lines or lines
        assert lines == baseline_lines  # no payload added a line anywhere
        executed += len(_markers(d))
    # the INT8 hint echoes the build command with the hostile model name: it must print, not run
    d = tmp_path / "int8"
    d.mkdir()
    model = MODEL_PAYLOADS[0]
    _onnx(d / f"{model}.onnx")
    cfg = _write_cfg(d, NAME_PAYLOADS[0], f"{model}.onnx", [{"id": "a", "uri": "rtsp://h/s"}])
    B.make_bundle(cfg, "jetson", d / "bundle", precision="int8")
    r = subprocess.run(["bash", "build_engine.sh"], cwd=d / "bundle", check=False, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "TRTEXEC": "/bin/true"}, timeout=60)
    tried += 1
    assert r.returncode == 1
    hint = next(line for line in r.stderr.splitlines() if "pockit deploy engine" in line)
    assert shlex.split(hint)[3] == f"models/{model}.onnx"
    executed += len(_markers(d))
    with capsys.disabled():
        print(f"\nbundle injection payloads tried / executed: {tried} / {executed}")
    assert (tried, executed) == (2 * len(NAME_PAYLOADS) + 2 * len(SOURCE_PAYLOADS) + 1, 0)


def test_newline_names_are_refused_by_the_config_and_inert_in_every_template(tmp_path, no_wheel, monkeypatch):
    """Names with line breaks never reach a bundle (the config refuses them); the templates render them
    inert all the same (checked by rendering the bundle's own context with each payload as the title)."""
    from pockit.config import ConfigError, load_config

    d = tmp_path / "base"
    d.mkdir()
    _onnx(d / "person.onnx")
    for payload in NEWLINE_NAME_PAYLOADS:
        with pytest.raises(ConfigError, match=r"- name.*printable text on one line"):
            load_config(_write_cfg(d, payload, "person.onnx", [{"id": "a", "uri": "rtsp://h/s"}]))
    cfg = _write_cfg(d, "Gate Watch", "person.onnx", [{"id": "a", "uri": "rtsp://h/s"}])
    seen = {}
    real = B.render_bundle_files

    def capture(ctx):
        seen.update(ctx)
        return real(ctx)

    monkeypatch.setattr(B, "render_bundle_files", capture)
    B.make_bundle(cfg, "jetson", d / "bundle")
    base_lines = {f: len((d / "bundle" / f).read_text().splitlines()) for f in
                  ("run.sh", "build_engine.sh", "Dockerfile", "pockit-gate-watch.service", "README.md")}
    for i, payload in enumerate(NEWLINE_NAME_PAYLOADS):
        work = tmp_path / f"nl{i}"
        shutil.copytree(d / "bundle", work / "bundle")
        ctx = dict(seen, title=payload, sources=[payload, "b"])
        for dst, text in real(ctx).items():
            (work / "bundle" / dst).write_text(text, encoding="utf-8")
        assert {f: len((work / "bundle" / f).read_text().splitlines()) for f in base_lines} == base_lines
        calls = _run_scripts(work / "bundle", work)
        assert calls["pockit"] == ["run", "config.yaml", "--max-frames", "1"]
        _check_static_files(work / "bundle", "pockit-gate-watch", payload)
        assert _markers(work) == []
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(work / "bundle" / "pockit-gate-watch.service")],
                           check=False, capture_output=True, text=True)
        assert "Unknown section" not in r.stderr and "Unknown key" not in r.stderr


def test_render_refuses_a_name_that_is_not_a_slug():
    with pytest.raises(ValueError, match="not a slug"):
        B.render_bundle_files({"name": "a b"})


# -- item 12: same-named media, wheel build isolation -------------------------------------------
def test_two_sources_with_the_same_file_name_keep_their_own_footage(tmp_path, no_wheel):
    _onnx(tmp_path / "person.onnx")
    for cam in ("a", "b"):
        (tmp_path / cam).mkdir()
        (tmp_path / cam / "clip.mp4").write_bytes(f"footage of {cam}".encode())
    cfg = _write_cfg(tmp_path, "two cams", "person.onnx", [
        {"id": "cam1", "uri": str(tmp_path / "a" / "clip.mp4")},
        {"id": "cam2", "uri": str(tmp_path / "b" / "clip.mp4")},
        {"id": "cam3", "uri": "a/clip.mp4"},  # the same file as cam1 (relative to the config): one copy
    ])
    out = tmp_path / "bundle"
    man = B.make_bundle(cfg, "jetson", out)
    assert sorted(f for f in man["files"] if f.startswith("media/")) == ["media/cam2-clip.mp4", "media/clip.mp4"]
    from pockit.config import load_config

    for fname in ("config.yaml", "config-onnx.yaml"):
        c = load_config(out / fname)
        assert [s.uri for s in c.sources] == ["media/clip.mp4", "media/cam2-clip.mp4", "media/clip.mp4"]
        assert [(out / s.uri).read_bytes() for s in c.sources] == [b"footage of a", b"footage of b", b"footage of a"]


def test_media_name_that_would_leave_the_bundle_is_refused(tmp_path):
    used: dict = {}
    assert B._media_name(tmp_path / "x.mp4", "cam", used) == "x.mp4"
    from pockit.paths import contained

    with pytest.raises(ValueError, match=r"source cam media file '\.\.' escapes"):
        contained(tmp_path / "media", "..", "source cam media file")


@pytest.mark.parametrize("installed,isolated", [("65.5.0", True), ("76.1", True), ("77.0.3", False), ("80.9.0", False)])
def test_wheel_build_isolation_follows_the_installed_setuptools(tmp_path, monkeypatch, installed, isolated):
    """A fresh venv's setuptools (< 77) cannot build pockit's PEP 639 metadata under --no-build-isolation:
    pip must then build in isolation with the setuptools pyproject.toml requires."""
    import importlib.metadata

    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: installed if d == "setuptools" else real_version(d))
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(B.subprocess, "run", fake_run)
    B._build_wheel(tmp_path)
    assert len(calls) == 1 and calls[0][1:5] == ["-m", "pip", "wheel", "--no-deps"]
    assert ("--no-build-isolation" in calls[0]) is (not isolated)
    assert calls[0][-1] == str(Path(B.__file__).resolve().parents[2])


def test_wheel_builds_in_a_fresh_venv_with_old_setuptools(tmp_path, monkeypatch):
    """The real thing, when PyPI is reachable (POCKIT_NETWORK_TESTS=1): in a fresh venv (Python 3.11's
    ensurepip gives setuptools 65.5) the old --no-build-isolation command fails, _build_wheel's builds."""
    if os.environ.get("POCKIT_NETWORK_TESTS") != "1":
        pytest.skip("needs PyPI: set POCKIT_NETWORK_TESTS=1")
    import importlib.metadata

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    old = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('setuptools'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert int(old.split(".")[0]) < 77
    root = str(Path(B.__file__).resolve().parents[2])
    r = subprocess.run([py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "old"), root], check=False, capture_output=True, text=True)
    assert r.returncode != 0  # what the bundle did before
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: old if d == "setuptools" else real_version(d))
    monkeypatch.setattr(B.sys, "executable", py)
    B._build_wheel(tmp_path / "w")
    assert len(list((tmp_path / "w").glob("pockit-*.whl"))) == 1
