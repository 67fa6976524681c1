"""Save the editor's rules into a PoC config YAML and load them back.

Only the ``rules:`` block of the file is rewritten: comments and formatting of every other
section are kept byte for byte. Rules the editor does not show (no drawable geometry, or for
another camera) are kept as written. The new file is validated as a whole PoC config before it
replaces the old one, which is kept beside it as ``<name>.bak``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError, PocConfig, parse_config
from .scene import EditorError, SceneEditor, applies_to, as_rule_models, rule_kind


class _FlowDumper(yaml.SafeDumper):
    """Block style for mappings, flow style for lists of scalars / points: ``zone: [[0.1, 0.2], ...]``."""


def _repr_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(x, (dict, list, tuple)) or
               (isinstance(x, (list, tuple)) and all(not isinstance(y, (dict, list, tuple)) for y in x))
               for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=bool(flat and data))


_FlowDumper.add_representer(list, _repr_list)
_FlowDumper.add_representer(tuple, _repr_list)


def dump_rules(rules: list[dict[str, Any]]) -> str:
    """``rules:`` YAML block for a list of rule dicts."""
    if not rules:
        return "rules: []\n"
    return yaml.dump({"rules": rules}, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=100)


def _last_end(node: yaml.Node) -> int:
    """Index just after the last character of ``node``'s own text (not the following comments)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index
    last = node.value[-1]
    return _last_end(last[1] if isinstance(last, tuple) else last)


def replace_rules_block(text: str, rules: list[dict[str, Any]], source: str = "<config>") -> str:
    """``text`` with its top-level ``rules:`` block replaced (or appended when there is none)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML, cannot update its rules: {e}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    block = dump_rules(rules)
    for key, value in root.value:
        if key.value == "rules":
            start = text.rfind("\n", 0, key.start_mark.index) + 1
            end = _last_end(value)
            nl = text.find("\n", end)
            end = len(text) if nl < 0 else nl + 1
            return text[:start] + block + text[end:]
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + block


def merge_rules(existing: list[dict[str, Any]], drawn: list[dict[str, Any]], source_id: str | None) -> list[dict]:
    """Existing raw rules with the editor-owned ones (drawable, for ``source_id``) replaced by ``drawn``."""
    models = as_rule_models(existing)
    out: list[dict] = []
    inserted = False
    for raw, model in zip(existing, models):
        if rule_kind(model) is not None and applies_to(model, source_id):
            if not inserted:
                out.extend(drawn)
                inserted = True
        else:
            out.append(raw)
    if not inserted:
        out.extend(drawn)
    return out


def save_scene(editor: SceneEditor, config_path: str | Path, normalized: bool = True,
               backup: bool = True) -> PocConfig:
    """Write the editor's rules into ``config_path`` (validated); returns the new config."""
    path = Path(config_path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found; create it first (e.g. copy pockit/demos/quickstart.yaml)")
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    existing = data.get("rules") or []
    if not isinstance(existing, list):
        raise ConfigError(f"{path}: 'rules' must be a list")
    try:
        drawn = editor.to_dicts(normalized=normalized)
        rules = merge_rules(existing, drawn, editor.source_id)
    except EditorError as e:
        raise EditorError(f"{path}: {e}") from None
    new_text = replace_rules_block(text, rules, str(path))
    new_data = yaml.safe_load(new_text)
    cfg = parse_config(new_data, str(path), new_text, base_dir=path.parent)  # raises ConfigError naming the field
    if backup:
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)
    return cfg


def load_scene(config: str | Path | PocConfig, frame_size: tuple[int, int], source_id: str | None = None,
               **kwargs: Any) -> SceneEditor:
    """A :class:`SceneEditor` holding the drawable rules of a config file (or PocConfig) for one camera."""
    from ..config import load_config

    cfg = load_config(config)
    if source_id is not None and source_id not in {s.id for s in cfg.sources}:
        raise ConfigError(f"source {source_id!r} is not in the config; sources: {[s.id for s in cfg.sources]}")
    if source_id is not None and len(cfg.sources) > 1:
        kwargs.setdefault("default_sources", [source_id])
    return SceneEditor.from_rules(cfg.rules, frame_size, source_id=source_id, **kwargs)
