import textwrap

import pytest

from pockit.config import ConfigError, load_config
from pockit.pipeline.cli import demo_config_path

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
