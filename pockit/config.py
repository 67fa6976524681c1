"""The PoC configuration: one YAML file per PoC, validated before any work starts.

A bad field raises :class:`ConfigError` whose message names the file, the field path
(e.g. ``rules[1].dwell``) and, where the YAML parser knows it, the line.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .rules.schema import RULE_TYPES, RuleConfig


class ConfigError(ValueError):
    """A PoC configuration problem, with the file and field named."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED = "***"
_SECRET_WORDS = ("password", "passwd", "token", "secret", "authorization", "api_key", "api-key", "apikey",
                 "cookie", "credential", "private_key", "private-key")


def expand_env(value: str, where: str = "config") -> str:
    """Replace each ``${VAR}`` in ``value`` by the environment variable; ConfigError naming ``where`` and the
    variable when it is not set."""
    import os

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set (the config says ${{{name}}}); "
                              f"export {name}=... before the run")
        return os.environ[name]

    return _ENV_REF.sub(sub, value)


def is_secret_key(key: str) -> bool:
    """True for field / header / query-parameter names that hold credentials (password, token, Authorization ...)."""
    k = str(key).lower()
    return any(w in k for w in _SECRET_WORDS)


def _redact_value(v: str) -> str:
    """A secret's value as written to files: ``${VAR}`` references stay (they are not secrets), else ***."""
    return v if _ENV_REF.fullmatch(v.strip()) else REDACTED


def redact_url(url: str) -> str:
    """``scheme://user:***@host/path?token=***``: the password in the URL and secret query values hidden."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                user, pw = userinfo.split(":", 1)
                userinfo = f"{user}:{_redact_value(pw)}"
            netloc = f"{userinfo}@{host}"
        query = parts.query
        if query:
            q = parse_qsl(query, keep_blank_values=True)
            if any(is_secret_key(k) for k, _ in q):
                query = urlencode([(k, _redact_value(v) if is_secret_key(k) else v) for k, v in q], safe="*${}")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return REDACTED


def redact(obj: Any) -> Any:
    """A copy of a JSON-like structure with credentials hidden: values under secret-named keys (password,
    token, Authorization, *api_key* ...) become ``***`` (``${VAR}`` references are kept), and passwords or
    secret query values inside URLs are masked. Used for config.yaml, run.json, logs and delivery reports."""
    if isinstance(obj, dict):
        return {k: (_redact_value(v) if isinstance(v, str) and is_secret_key(k) else
                    REDACTED if is_secret_key(k) and isinstance(v, (int, float)) and not isinstance(v, bool)
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(x) for x in obj]
    if isinstance(obj, str) and "://" in obj:
        return redact_url(obj)
    return obj


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_dir_name(value: str | None, what: str) -> str | None:
    """A config value used as one directory name (``name``, ``outputs.run_name``): printable text on one
    line, no path separator, not ``.``/``..``, so the run directory stays inside ``outputs.dir``."""
    if value is None:
        return value
    bad = sorted({repr(c) for c in value if not c.isprintable()})
    if bad:
        raise ValueError(f"{what} becomes a directory name: use printable text on one line (found {', '.join(bad)})")
    if "/" in value or "\\" in value:
        raise ValueError(f"{what} {value!r} becomes a directory name inside outputs.dir: no '/' or '\\' allowed")
    if value.strip() in ("", ".", ".."):
        raise ValueError(f"{what} {value!r} becomes a directory name inside outputs.dir: give a non-empty name, "
                         "not '.' or '..'")
    return value


class SourceConfig(_M):
    id: str = Field(..., description="short name used in outputs (tracks/<id>.txt)")
    uri: str | int = Field(..., description="video file, image/MOT folder, rtsp://, http://, camera index, gst pipeline")
    fps: float | None = Field(None, gt=0, description="target fps: frames are skipped to reach it")
    max_frames: int | None = Field(None, ge=1)
    start: float = Field(0.0, ge=0, description="start offset in seconds")
    loop: bool = False
    resize: tuple[int, int] | None = Field(None, description="resize frames to (width, height) after decode")
    options: dict[str, Any] = Field(default_factory=dict, description="source-specific options (reconnect, latency ...)")
    realtime: bool | None = Field(None, description="deliver frames at the source's own rate and drop (counted) "
                                  "when the pipeline is behind; default: yes for live cameras, no for files "
                                  "(every frame of a file is analysed)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\ \t"):
            raise ValueError("source id must be non-empty and contain no slashes or spaces")
        return v


class ModelConfig(_M):
    path: str = Field("person-yolov8s", description="a local file or a model name known to pockit")
    backend: Literal["auto", "onnx", "openvino", "ultralytics", "tensorrt", "torch", "face", "ssd"] = Field(
        "auto", description="auto: .onnx -> onnx (ONNX Runtime; openvino for precision bf16, see precision), "
        ".xml -> openvino; .pt -> ultralytics; "
        ".engine -> tensorrt; face-yunet -> face (YuNet + SFace embeddings, OpenCV DNN); coco-ssd-mobilenet-v2 -> ssd "
        "(TF detection API SSD exported to ONNX, NMS inside)")
    imgsz: int = Field(640, ge=32, description="longest side of the network input")
    rect: bool = Field(True, description="letterbox to the smallest stride-32 rectangle that holds the frame "
                       "(640x480 -> 480x640), like Ultralytics; false: square imgsz x imgsz")
    min_short_side: int = Field(320, ge=0, description="with rect: very wide frames get a longer network input "
                                "so that its short side keeps this many pixels (a 1224x370 street view runs at "
                                "352x1088, not 224x640: KITTI-17 MOTA 0.74 vs 0.56 at 0.44x the frames/s, benchmarks/README.md); "
                                "0: plain imgsz letterbox, as Ultralytics does")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="CPU numerics. auto: bf16 on OpenVINO where the CPU computes bf16 natively and "
        "openvino is installed; elsewhere a registry model checked in INT8 (person-yolov8s) runs its INT8 build on "
        "ONNX Runtime (fp32 with a warning if it cannot be built), any other model fp32; bf16: that, required; "
        "int8: a registry model's INT8 build (made once, cached) or a quantized .onnx; fp32: float32")
    conf: float = Field(0.2, ge=0, le=1, description="detector score threshold (0.2: measured on the scenario "
                        "benchmark, benchmarks/README.md)")
    iou: float = Field(0.45, ge=0, le=1)
    classes: list[str | int] | None = None
    max_det: int = Field(300, ge=1)
    device: str = "cpu"
    batch: int = Field(1, ge=1, description="max frames per inference call (across streams)")
    requests: int | Literal["auto"] = Field(
        "auto", description="CPU inference calls in flight in the pipeline (ONNX Runtime on the CPU; OpenVINO): "
        "auto = 2 where the host has 2+ physical cores (ONNX Runtime: each on cores/2 threads, ~90 vs 115-119 ms "
        "a frame on a 2-core VM; OpenVINO in bf16: a two-stream compilation, 37 vs 30 frames/s end to end at "
        "352x1088 on a 2-core Xeon with AMX; OpenVINO FP32 keeps 1), else 1; 1 = one call at a time on every "
        "core. detect() is not affected")
    half: bool = False
    class_names: dict[int, str] | None = Field(None, description="override the model's class names")

    @field_validator("requests")
    @classmethod
    def _requests_positive(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("requests must be >= 1 or 'auto'")
        return v


class ExtraModelConfig(_M):
    """A second (third ...) detector run on the same frames: see "Several models in one PoC" in README.md."""

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="identifier: prefix of attached attributes "
                      "(data['<name>'], data['<name>.score'] ...) and of class names that clash with earlier models")
    model: ModelConfig
    sources: list[str] | None = Field(None, description="source ids this model runs on (default: every source)")
    attach_to: list[str | int] | None = Field(
        None, description="classes of the main model (names or ids): a detection of this model whose box centre lies "
        "inside such a box becomes an attribute of that object instead of an object of its own; omitted: its "
        "detections are objects of their own, tracked and seen by the rules")


class TrackerConfig(_M):
    type: Literal["bytetrack", "sort", "ocsort", "none"] = "bytetrack"
    track_activation_threshold: float = Field(0.5, ge=0, le=1)
    high_conf_det_threshold: float = Field(0.3, ge=0, le=1, description="detections at or above it are matched "
                                           "first (below it: ByteTrack's second pass); new tracks start only from "
                                           "detections >= track_activation_threshold")
    minimum_iou_threshold: float = Field(0.1, ge=0, le=1)
    lost_track_seconds: float = Field(1.5, ge=0, description="how long a lost track is kept for re-association "
                                      "(x the source fps = frames)")
    minimum_consecutive_frames: int = Field(2, ge=1, description="frames before a track is confirmed")
    reid_distance: float = Field(0.5, ge=0, description="a new track takes the id of a track lost for at most "
                                 "lost_track_seconds whose centre (continued at its velocity) is within this many box "
                                 "heights; 0 = off")
    history: int = Field(300, ge=1, description="trajectory points kept per track")


class SinkConfig(_M):
    """One event sink. Network sinks (webhook, mqtt) send through a durable queue folder: by default
    ``<outputs.dir>/_delivery/<name or type-hash of the target>/`` (``queue_dir`` overrides it; a relative
    ``queue_dir`` is relative to the working directory). Secret fields may be ``${ENV_VAR}`` references,
    expanded when the sink starts (:meth:`expanded`) and never written out expanded; they are redacted in
    every dump (:func:`redact`)."""

    type: Literal["jsonl", "csv", "webhook", "mqtt", "kafka"]
    name: str | None = Field(None, description="webhook/mqtt: names the delivery queue folder")
    url: str | None = None
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    topic: str = "pockit/events"
    retries: int = Field(5, ge=1, description="webhook/mqtt: attempts per event in a row before it waits "
                                              "for the receiver to accept another event, the close pass or the next run")
    timeout: float = Field(5.0, gt=0, description="webhook/mqtt: seconds per request / publish acknowledgement")
    drain_timeout: float = Field(10.0, ge=0, description="webhook/mqtt: seconds close() keeps resending; "
                                                         "what is left stays queued for the next run")
    queue_dir: str | None = None
    queue_max: int = Field(10000, ge=1, description="webhook/mqtt: pending events kept; more are dead-lettered "
                                                    "and counted as dropped")
    path: str | None = None
    fsync: bool = Field(False, description="jsonl/csv: fsync after every event (survives power loss)")
    headers: dict[str, str] = Field(default_factory=dict, description="webhook: extra HTTP headers")
    token: str | None = Field(None, description="webhook: sent as 'Authorization: Bearer <token>'")
    username: str | None = Field(None, description="webhook (HTTP basic) / mqtt user name")
    password: str | None = None
    tls: bool = Field(False, description="mqtt: connect with TLS (default port 8883)")
    tls_verify: bool = Field(True, description="verify the receiver's certificate")
    ca_certs: str | None = Field(None, description="CA bundle (PEM) to verify the receiver")
    client_cert: str | None = Field(None, description="client certificate (PEM) for mutual TLS")
    client_key: str | None = Field(None, description="private key of client_cert when not in the same file")
    client_id: str = Field("", description="mqtt client id (default: random)")
    qos: Literal[0, 1, 2] = Field(1, description="mqtt QoS; 1 = acknowledged by the broker")
    snapshots: bool = Field(False, description="mqtt/kafka: send the event's snapshot JPEG inside the message "
                            "(base64, for `pockit collect`)")
    snapshot_max_kb: int = Field(256, ge=8, description="mqtt/kafka: largest snapshot sent; a bigger one is "
                                 "re-encoded smaller until it fits")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and (not v or v in (".", "..") or any(c in v for c in "/\\\0")):
            raise ValueError("sink name must be non-empty and contain no slashes (it names a folder)")
        return v

    def expanded(self, where: str = "outputs.sinks") -> SinkConfig:
        """A copy with every ``${VAR}`` in its text fields replaced by the environment's value; an unset
        variable raises :class:`ConfigError` naming the field and the variable."""
        upd: dict[str, Any] = {}
        for k, v in self:
            if isinstance(v, str) and "${" in v:
                upd[k] = expand_env(v, f"{where}.{k}")
            elif k == "headers" and v:
                upd[k] = {hk: expand_env(hv, f"{where}.headers.{hk}") for hk, hv in v.items()}
        return self.model_copy(update=upd)


class LiveConfig(_M):
    """``outputs.live``: the annotated stream as MJPEG over HTTP while the run goes (:mod:`pockit.sinks.live`)."""

    host: str = Field("127.0.0.1", min_length=1, description="address to bind (0.0.0.0 = every interface, no login)")
    port: int = Field(8090, ge=0, le=65535, description="HTTP port (0 = any free port, printed at the start)")
    fps: float = Field(10.0, gt=0, description="most frames per second encoded per source while someone watches")
    quality: int = Field(80, ge=10, le=100, description="JPEG quality")
    max_width: int = Field(960, ge=64, description="frames wider than this are scaled down for the stream")
    trails: int = Field(30, ge=0, description="last N anchor points drawn per track (0 = no trails)")
    heatmap: bool = Field(False, description="overlay where objects have been (anchor positions, decaying)")
    heatmap_half_life: float = Field(30.0, gt=0, description="seconds after which a heatmap visit weighs half")


class OutputConfig(_M):
    dir: str = Field("runs", description="parent directory of run directories")
    run_name: str | None = Field(None, description="run directory name; default <config name>-<timestamp>")

    @field_validator("run_name")
    @classmethod
    def _run_name(cls, v: str | None) -> str | None:
        return check_dir_name(v, "run_name")
    video: bool = Field(False, description="write an annotated video per source")
    frames_every: float | None = Field(None, gt=0, description="also save an annotated frame every N seconds")
    snapshots: bool = True
    clip_seconds: float = Field(0.0, ge=0, description="seconds of clip around each alarm (0 = none)")
    tracks: bool = True
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(type="jsonl")])
    box_id: str | None = Field(None, description="this box's id (several boxes, one PoC: `pockit deploy plan`): "
                               "stamped on every event as extra.box, with extra.raised_at (epoch s)")

    @field_validator("box_id")
    @classmethod
    def _box_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", v):
            raise ValueError(f"box_id {v!r}: use 1-64 letters, digits, '_', '.' or '-' (it names a folder)")
        return v
    live: LiveConfig | None = Field(None, description="annotated MJPEG stream over HTTP (true = defaults)")

    @field_validator("live", mode="before")
    @classmethod
    def _live(cls, v):
        return {} if v is True else None if v is False else v


class AcceptanceItem(_M):
    """One PoC acceptance criterion, judged from the numbers of a run/evaluation."""

    name: str
    category: Literal["function", "performance", "api", "documentation"] = "function"
    metric: str | None = Field(None, description="dotted metric key, e.g. events.zone_intrusion.recall, perf.fps")
    op: Literal[">=", "<=", ">", "<", "=="] = ">="
    threshold: float | None = None
    passed: bool | None = Field(None, description="for manual items: set by the engineer")


class PocPerson(_M):
    """Someone who signs the PoC report (cover block: name, role, organisation, a signature line)."""

    name: str = Field(..., min_length=1)
    role: str = ""
    organisation: str = ""


class PocInfo(_M):
    """The report's cover block: who the PoC is for, where, when, what it covers and who signs it."""

    customer: str = ""
    site: str = ""
    start: date | None = Field(None, description="first day of the PoC (YYYY-MM-DD)")
    end: date | None = Field(None, description="last day of the PoC (YYYY-MM-DD)")
    scope: str = ""
    people: list[PocPerson] = Field(default_factory=list, description="signatories, in signing order")

    @model_validator(mode="after")
    def _dates(self):
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class PipelineConfig(_M):
    workers: int | Literal["auto"] = Field("auto", description="processes for tracking/rules/outputs, sharded by "
                                           "stream (0 = a thread of the main process; auto = 0 for 1-2 streams "
                                           "or < 4 cores, else one per 8 streams)")
    decode_threads: int | Literal["auto"] = Field("auto", description="decoders (threads or processes, see "
                                                  "decode_processes) of file sources, each serving several in turn "
                                                  "(auto = all cores but 4, at least 2); live cameras get a thread "
                                                  "each")
    decode_processes: bool | Literal["auto"] = Field("auto", description="decode file sources in child processes "
                                                     "(decode_threads of them) that write into the shared frame pool, "
                                                     "instead of threads of the inference process (auto = yes for "
                                                     ">= 4 file sources on >= 4 cores, NVDEC-decoded files excepted; "
                                                     "true = every file source, NVDEC ones included)")
    decode_nice: int = Field(0, ge=0, le=19, description="niceness added to the decode processes (0 = none): on a "
                             "host with every core busy, the inference process and the tracking workers then run "
                             "first and the decoders take what is left")
    cuda_mps: bool | Literal["auto"] = Field("auto", description="CUDA MPS for NVDEC decode processes (their CUDA "
                                             "contexts then share the GPU with the model's instead of being "
                                             "time-sliced against it): auto = a private daemon for the run when "
                                             "the model is on CUDA, 4+ sources decode on NVDEC (decoder: nvdec, "
                                             "or auto video files with PyNvVideoCodec installed, which then use "
                                             "NVDEC at any size) and nvidia-cuda-mps-control is installed; see "
                                             "pockit.pipeline.mps")
    max_wait_ms: float = Field(4.0, ge=0, description="longest wait for a batch to fill before inference")
    frame_slots: int | None = Field(None, ge=2, description="frame pool size (default: batch x 4 + streams, "
                                    "at least 72 MB (54 frames of 768x576) per decode process, capped at 1.5 GB)")

    @field_validator("workers", "decode_threads")
    @classmethod
    def _count_or_auto(cls, v, info):
        low = 0 if info.field_name == "workers" else 1
        if isinstance(v, int) and v < low:
            raise ValueError(f"{info.field_name} must be >= {low} or 'auto'")
        return v


class PocConfig(_M):
    name: str = "poc"
    description: str = ""
    sources: list[SourceConfig] = Field(..., min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    extra_models: list[ExtraModelConfig] = Field(default_factory=list)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    acceptance: list[AcceptanceItem] = Field(default_factory=list)
    poc: PocInfo = Field(default_factory=PocInfo, description="report cover block: customer, site, dates, scope, "
                         "signatories")
    language: Literal["en", "zh"] = "en"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_dir_name(v, "name")

    @model_validator(mode="after")
    def _unique(self):
        for what, names in (("sources", [s.id for s in self.sources]), ("rules", [r.name for r in self.rules]),
                            ("extra_models", [m.name for m in self.extra_models])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"duplicate {what} names: {sorted(dup)}")
        ids = {s.id for s in self.sources}
        for r in self.rules:
            for s in r.sources or []:
                if s not in ids:
                    raise ValueError(f"rule {r.name!r} names unknown source {s!r}; known: {sorted(ids)}")
        for m in self.extra_models:
            for s in m.sources or []:
                if s not in ids:
                    raise ValueError(f"extra_models {m.name!r} names unknown source {s!r}; known: {sorted(ids)}")
        return self

    # -- io -----------------------------------------------------------------------------------
    def redacted_dump(self, exclude_none: bool = False) -> dict[str, Any]:
        """``model_dump(mode="json")`` with credentials hidden (:func:`redact`): what run.json and
        config.yaml get; ``${VAR}`` references stay as written."""
        return redact(self.model_dump(mode="json", exclude_none=exclude_none))

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The config as YAML, credentials redacted (see :meth:`redacted_dump`)."""
        text = yaml.safe_dump(self.redacted_dump(exclude_none=True), sort_keys=False, allow_unicode=True)
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


def read_config_text(path: Path) -> str:
    """The text of a config file; ConfigError naming the file (and the line and byte offset of the first
    bad byte) when it cannot be read or is not UTF-8."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{path}: line {line}, column {col} (byte offset {e.start}, byte 0x{raw[e.start]:02x}): "
                          "not UTF-8 text; save the file as UTF-8 (it was probably saved as Latin-1 or "
                          "Windows-1252)") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: SafeLoader reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | dict | PocConfig) -> PocConfig:
    """Load and validate a PoC YAML file (or pass a dict / PocConfig through)."""
    if isinstance(path, (dict, PocConfig)):
        return parse_config(path)
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    text = read_config_text(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(e, "problem", None) or e)
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, never tabs)"
        raise ConfigError(f"{path}:{where} not valid YAML: {problem}") from None
    except (RecursionError, ValueError) as e:  # nesting too deep, an integer of more than 4300 digits
        raise ConfigError(f"{path}: YAML that cannot be read: {'nested too deeply' if isinstance(e, RecursionError) else e}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    return parse_config(data, str(path), text, base_dir=path.parent)


