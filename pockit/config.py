"""The PoC configuration: one YAML file per PoC, validated before any work starts.

A bad field raises :class:`ConfigError` whose message names the file, the field path
(e.g. ``rules[1].dwell``) and, where the YAML parser knows it, the line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .rules.schema import RULE_TYPES, RuleConfig


class ConfigError(ValueError):
    """A PoC configuration problem, with the file and field named."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_M):
    id: str = Field(..., description="short name used in outputs (tracks/<id>.txt)")
    uri: str | int = Field(..., description="video file, image/MOT folder, rtsp://, http://, camera index, gst pipeline")
    fps: float | None = Field(None, gt=0, description="target fps: frames are skipped to reach it")
    max_frames: int | None = Field(None, ge=1)
    start: float = Field(0.0, ge=0, description="start offset in seconds")
    loop: bool = False
    resize: tuple[int, int] | None = Field(None, description="resize frames to (width, height) after decode")
    options: dict[str, Any] = Field(default_factory=dict, description="source-specific options (reconnect, latency ...)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\ \t"):
            raise ValueError("source id must be non-empty and contain no slashes or spaces")
        return v


class ModelConfig(_M):
    path: str = Field("person-yolov8s", description="a local file or a model name known to pockit")
    backend: Literal["auto", "onnx", "ultralytics", "tensorrt", "torch"] = "auto"
    imgsz: int = Field(640, ge=32)
    conf: float = Field(0.25, ge=0, le=1)
    iou: float = Field(0.45, ge=0, le=1)
    classes: list[str | int] | None = None
    max_det: int = Field(300, ge=1)
    device: str = "cpu"
    batch: int = Field(1, ge=1, description="max frames per inference call (across streams)")
    half: bool = False
    class_names: dict[int, str] | None = Field(None, description="override the model's class names")


class TrackerConfig(_M):
    type: Literal["bytetrack", "sort", "ocsort", "none"] = "bytetrack"
    track_activation_threshold: float = Field(0.5, ge=0, le=1)
    high_conf_det_threshold: float = Field(0.5, ge=0, le=1)
    minimum_iou_threshold: float = Field(0.1, ge=0, le=1)
    lost_track_seconds: float = Field(1.0, ge=0, description="how long a lost track is kept for re-association")
    minimum_consecutive_frames: int = Field(2, ge=1, description="frames before a track is confirmed")
    history: int = Field(300, ge=1, description="trajectory points kept per track")


class SinkConfig(_M):
    type: Literal["jsonl", "csv", "webhook", "mqtt"]
    url: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    topic: str = "pockit/events"
    stream: str = "pockit:events"
    retries: int = 5
    timeout: float = 5.0
    queue_dir: str | None = None
    queue_max: int = 10000
    path: str | None = None
    fsync: bool = Field(False, description="jsonl/csv: fsync after every event (survives power loss)")


class OutputConfig(_M):
    dir: str = Field("runs", description="parent directory of run directories")
    run_name: str | None = Field(None, description="run directory name; default <config name>-<timestamp>")
    video: bool = Field(False, description="write an annotated video per source")
    frames_every: float | None = Field(None, gt=0, description="also save an annotated frame every N seconds")
    snapshots: bool = True
    clip_seconds: float = Field(0.0, ge=0, description="seconds of clip around each alarm (0 = none)")
    tracks: bool = True
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(type="jsonl")])


class AcceptanceItem(_M):
    """One PoC acceptance criterion, judged from the numbers of a run/evaluation."""

    name: str
    category: Literal["function", "performance", "api", "documentation"] = "function"
    metric: str | None = Field(None, description="dotted metric key, e.g. events.zone_intrusion.recall, perf.fps")
    op: Literal[">=", "<=", ">", "<", "=="] = ">="
    threshold: float | None = None
    passed: bool | None = Field(None, description="for manual items: set by the engineer")


class PocConfig(_M):
    name: str = "poc"
    description: str = ""
    sources: list[SourceConfig] = Field(..., min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    acceptance: list[AcceptanceItem] = Field(default_factory=list)
    language: Literal["en", "zh"] = "en"

    @model_validator(mode="after")
    def _unique(self):
        for what, names in (("sources", [s.id for s in self.sources]), ("rules", [r.name for r in self.rules])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"duplicate {what} names: {sorted(dup)}")
        ids = {s.id for s in self.sources}
        for r in self.rules:
            for s in r.sources or []:
                if s not in ids:
                    raise ValueError(f"rule {r.name!r} names unknown source {s!r}; known: {sorted(ids)}")
        return self

    # -- io -----------------------------------------------------------------------------------
    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    @property
    def base_dir(self) -> Path:
        return Path(getattr(self, "_base_dir", "."))


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in RULE_TYPES and out.endswith("]"):
            continue  # discriminated-union tag, not a field
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(text: str, loc: tuple) -> int | None:
    """Best-effort line number of a field path in the YAML text."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            if part in RULE_TYPES and part not in [k.value for k, _ in node.value]:
                continue  # discriminated-union tag
            nxt = None
            for k, v in node.value:
                if k.value == part:
                    nxt, line = v, k.start_mark.line + 1
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            continue
        else:
            break
    return line


def format_validation_error(err: ValidationError, source: str, text: str | None = None) -> str:
    lines = [f"{source}: invalid PoC configuration ({err.error_count()} problem(s)):"]
    for e in err.errors():
        fp = _field_path(tuple(e["loc"])) or "(top level)"
        where = ""
        if text is not None:
            ln = _line_of(text, tuple(e["loc"]))
            if ln:
                where = f" (line {ln})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        lines.append(f"  - {fp}{where}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any] | PocConfig, source: str = "<config>", text: str | None = None,
                 base_dir: str | Path | None = None) -> PocConfig:
    if isinstance(data, PocConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        cfg = PocConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source, text)) from None
    object.__setattr__(cfg, "_base_dir", str(base_dir or "."))
    return cfg


def load_config(path: str | Path | dict | PocConfig) -> PocConfig:
    """Load and validate a PoC YAML file (or pass a dict / PocConfig through)."""
    if isinstance(path, (dict, PocConfig)):
        return parse_config(path)
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    return parse_config(data, str(path), text, base_dir=path.parent)


def resolve_path(cfg: PocConfig, p: str) -> str:
    """Resolve a relative file path in the config against the config file's directory."""
    if "://" in p or p.isdigit() or p.startswith(("gst:", "v4l2")) or "!" in p:
        return p
    pp = Path(p).expanduser()
    if pp.is_absolute() or pp.exists():
        return str(pp)
    cand = cfg.base_dir / pp
    return str(cand) if cand.exists() else p
