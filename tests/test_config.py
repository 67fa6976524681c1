import textwrap

import pytest

from pockit.config import ConfigError, load_config
from pockit.pipeline.cli import demo_config_path

pytestmark = pytest.mark.arm64smoke  # fast, no footage: scripts/arm64-smoke.sh runs them on emulated arm64

BASE = """\
name: t
sources:
  - id: cam1
    uri: video.mp4
rules:
  - name: fence
    type: line_crossing
    line: [[0, 100], [640, 100]]
    direction: in
"""


def _write(tmp_path, text):
    p = tmp_path / "poc.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_valid_config_roundtrip(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.sources[0].id == "cam1"
    assert cfg.rules[0].type == "line_crossing" and cfg.rules[0].direction == "in"
    again = load_config(_write(tmp_path, cfg.to_yaml()))
    assert again.model_dump() == cfg.model_dump()


def test_demo_config_is_valid():
    cfg = load_config(demo_config_path())
    assert {r.type for r in cfg.rules} == {"zone_enter", "loitering", "line_crossing"}


def test_unknown_field_names_file_field_and_line(tmp_path):
    p = _write(tmp_path, BASE.replace("direction: in", "direction: in\n    dirction: out"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "rules[0].dirction (line 10): unknown field" in msg


def test_bad_value_names_field(tmp_path):
    p = _write(tmp_path, BASE.replace("direction: in", "direction: sideways"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "rules[0].direction (line 9)" in str(e.value)
    assert "'in', 'out' or 'both'" in str(e.value)


def test_missing_required_and_unknown_rule_type(tmp_path):
    p = _write(tmp_path, BASE + "  - name: z\n    type: loitering\n    zone: [[0,0],[1,0],[1,1]]\n")
    with pytest.raises(ConfigError, match=r"rules\[1\]\.dwell \(line 10\): Field required"):
        load_config(p)
    p = _write(tmp_path, BASE + "  - name: z\n    type: teleport\n")
    with pytest.raises(ConfigError, match=r"rules\[1\]"):
        load_config(p)


def test_duplicate_names_and_unknown_source(tmp_path):
    p = _write(tmp_path, BASE.replace("  - id: cam1\n    uri: video.mp4\n", "  - id: a\n    uri: x\n  - id: a\n    uri: y\n"))
    with pytest.raises(ConfigError, match="duplicate sources names"):
        load_config(p)
    p = _write(tmp_path, BASE + "    sources: [cam9]\n")
    with pytest.raises(ConfigError, match="unknown source 'cam9'"):
        load_config(p)


def test_bad_yaml_and_missing_file(tmp_path):
    p = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(_write(tmp_path, ""))


# -- run directory names (name, outputs.run_name) stay inside outputs.dir ------------------------
@pytest.mark.parametrize("field,value,message", [
    ("name", "../../escaped", "name '../../escaped' becomes a directory name inside outputs.dir: no '/' or '\\' allowed"),
    ("name", "..", "name '..' becomes a directory name inside outputs.dir: give a non-empty name, not '.' or '..'"),
    ("name", "a\\b", "no '/' or '\\' allowed"),
    ("name", "cam\nExecStartPre=x", "name becomes a directory name: use printable text on one line (found '\\n')"),
    ("outputs.run_name", "/tmp/abs", "run_name '/tmp/abs' becomes a directory name inside outputs.dir"),
    ("outputs.run_name", "a/../../b", "run_name 'a/../../b' becomes a directory name inside outputs.dir"),
    ("outputs.run_name", "x\x00y", "run_name becomes a directory name: use printable text on one line (found '\\x00')"),
])
def test_name_and_run_name_cannot_leave_outputs_dir(tmp_path, field, value, message):
    import yaml

    data = {"name": "t", "sources": [{"id": "cam1", "uri": "video.mp4"}]}
    if field == "name":
        data["name"] = value
    else:
        data["outputs"] = {"run_name": value}
    p = tmp_path / "poc.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"  - {field} (line " in str(e.value) and message in str(e.value), str(e.value)


def test_make_run_dir_stays_inside_outputs_dir(tmp_path, monkeypatch):
    """A config built without validation (attribute set afterwards) still cannot escape outputs.dir."""
    from pockit.config import parse_config
    from pockit.pipeline.rundir import make_run_dir

    monkeypatch.chdir(tmp_path)
    cfg = parse_config({"name": "site", "sources": [{"id": "a", "uri": "x.mp4"}],
                        "outputs": {"dir": str(tmp_path / "runs"), "run_name": "r1"}})
    assert make_run_dir(cfg) == tmp_path / "runs" / "r1"
    assert make_run_dir(cfg) == tmp_path / "runs" / "r1"  # empty: reused
    (tmp_path / "runs" / "r1" / "run.json").write_text("{}")
    assert make_run_dir(cfg) == tmp_path / "runs" / "r1-1"
    cfg.outputs.run_name = "../../escaped"
    with pytest.raises(ValueError, match=r"outputs.run_name '\.\./\.\./escaped' escapes .*runs"):
        make_run_dir(cfg)
    cfg.outputs.run_name = None
    cfg.name = "/abs"
    with pytest.raises(ValueError, match=r"name '/abs-\d{8}-\d{6}' escapes"):
        make_run_dir(cfg)
    assert not (tmp_path / "escaped").exists() and sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r1", "r1-1"]


def test_contained_helper(tmp_path):
    from pockit.paths import contained

    assert contained(tmp_path, "a/b.jpg") == tmp_path.resolve() / "a" / "b.jpg"
    assert contained(str(tmp_path), "a/../c.xml", "file_name") == tmp_path.resolve() / "c.xml"
    for rel in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError, match=f"file_name '{rel}' escapes {tmp_path}"):
            contained(tmp_path, rel, "file_name")
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(ValueError, match="link/x' escapes"):
        contained(tmp_path, "link/x")
    with pytest.raises(ValueError, match="names .* itself"):
        contained(tmp_path, ".")
    with pytest.raises(ValueError, match="NUL byte"):
        contained(tmp_path, "a\x00b")


# -- file decoding and YAML shape -----------------------------------------------------------------
def test_latin1_config_names_file_line_and_byte(tmp_path):
    p = tmp_path / "poc.yaml"
    p.write_bytes("name: t\ndescription: caf\u00e9 du port\nsources: []\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == (f"{p}: line 2, column 17 (byte offset 24, byte 0xe9): not UTF-8 text; save the file as "
                            "UTF-8 (it was probably saved as Latin-1 or Windows-1252)")
    p.write_bytes("\ufeffname: t\ndescription: caf\u00e9\nsources: [{id: a, uri: x.mp4}]\n".encode("utf-8"))
    assert load_config(p).description == "caf\u00e9"  # UTF-8 with a byte-order mark loads


@pytest.mark.parametrize("text,message", [
    ("- a\n- b\n", "expected a mapping at the top level, got list"),
    ("just text\n", "expected a mapping at the top level, got str"),
    ("# only a comment\n", "the file is empty"),
    ("name: t\nsources:\n\t- id: a\n", ("line 3, column 1 not valid YAML: found character '\\t' that cannot start any "
     "token (YAML indents with spaces, never tabs)")),
    ("name: t\nsources: [{id: a, uri: x}]\nname: u\n", ("line 3, column 1 not valid YAML: duplicate key 'name' "
     "(first given on line 1)")),
    ("name: t\nsources:\n  - id: a\n    uri: x\n    uri: y\n", ("line 5, column 5 not valid YAML: duplicate key 'uri' "
     "(first given on line 4)")),
])
def test_yaml_shape_problems_are_named(tmp_path, text, message):
    p = tmp_path / "poc.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}:") and message in str(e.value), str(e.value)


def test_unreadable_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)


def test_benchmark_configs_quoted_in_the_readmes_validate():
    """The configs behind the benchmark commands (benchmarks/gpu, benchmarks/memory) load without error."""
    from pathlib import Path

    from pockit.config import load_config

    root = Path(__file__).resolve().parent.parent / "benchmarks"
    files = sorted((root / "gpu").glob("*.yaml")) + sorted((root / "memory").glob("*.yaml"))
    assert len(files) >= 6
    for f in files:
        cfg = load_config(f)
        assert cfg.sources and cfg.rules, f
