"""Frame sources: video files, image / MOTChallenge folders, RTSP/HTTP streams, USB cameras, GStreamer.

``open_source(uri, ...)`` picks the right reader from the uri and returns a :class:`Source`, an
iterable of :class:`pockit.core.Frame` (BGR uint8 image, 0-based decode index, timestamp in
seconds, source id). ``probe(uri)`` describes a source without running it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import FpsSampler, Source, SourceError, expected_count
from .files import IMAGE_EXTS, VIDEO_EXTS, ImageFolderSource, VideoFileSource, natural_key
from .gstreamer import gstreamer_available, jetson_csi_pipeline, jetson_rtsp_pipeline, usb_pipeline
from .live import LiveSource

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "FpsSampler",
    "ImageFolderSource",
    "LiveSource",
    "Source",
    "SourceError",
    "VideoFileSource",
    "detect_kind",
    "expected_count",
    "gstreamer_available",
    "jetson_csi_pipeline",
    "jetson_rtsp_pipeline",
    "natural_key",
    "open_source",
    "open_source_config",
    "probe",
    "usb_pipeline",
]

# http(s) URLs with these extensions are files (seekable, finite); other http URLs are live streams
HTTP_FILE_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp", ".ogv"}
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp", "mms")


def detect_kind(uri: Any) -> str:
    """'camera', 'gstreamer', 'stream', 'video', 'images' (folder, glob or image file) for a uri."""
    if isinstance(uri, bool):
        raise SourceError(f"not a source uri: {uri!r}")
    if isinstance(uri, int):
        return "camera"
    s = str(uri).strip()
    if not s:
        raise SourceError("empty source uri; give a video file, an image folder, an rtsp:// URL or a camera index")
    if s.isdigit() or s.startswith("/dev/video"):
        return "camera"
    if s.startswith(("gst:", "csi://")) or "!" in s:
        return "gstreamer"
    if "://" in s:
        scheme = s.split("://", 1)[0].lower()
        if scheme == "file":
            return detect_kind(s[7:])
        if scheme not in STREAM_SCHEMES:
            raise SourceError(f"{s}: unknown URL scheme {scheme!r}; supported: {', '.join(STREAM_SCHEMES)}, file://")
        if scheme in ("http", "https") and Path(s.split("?")[0]).suffix.lower() in HTTP_FILE_EXTS:
            return "video"
        return "stream"
    p = Path(s).expanduser()
    if p.is_dir() or s.endswith(("/", "\\")) or "*" in p.name or "?" in p.name or p.suffix.lower() in IMAGE_EXTS:
        return "images"
    return "video"


def open_source(uri: Any, *, source_id: str | None = None, fps: float | None = None, max_frames: int | None = None,
                start: float = 0.0, loop: bool = False, resize: Any = None, **options: Any) -> Source:
    """Open a source and return an iterable of Frames.

    uri: video file | image folder | MOT sequence folder | glob pattern | rtsp://, http://... stream |
    camera index or /dev/videoN | GStreamer pipeline (contains '!' or starts with 'gst:') | csi://N
    (Jetson CSI camera). fps: target rate (frames skipped evenly by timestamp); max_frames: stop after
    this many frames; start: seconds to skip (seek); loop: restart files/folders at the end; resize:
    (width, height). Option ``live=True/False`` forces the live (threaded) reader or the file reader.
    Other options depend on the kind: see VideoFileSource, ImageFolderSource, LiveSource.
    Raises SourceError with the uri and what to check when the source cannot be used.
    """
    common = dict(source_id=source_id, fps=fps, max_frames=max_frames, start=start, loop=loop, resize=resize)
    force_live = options.pop("live", None)
    if isinstance(uri, Path):
        uri = str(uri)
    kind = detect_kind(uri)
    if isinstance(uri, str) and uri.startswith("file://"):
        uri = uri[7:]
    if kind == "gstreamer":
        s = str(uri).strip()
        if s.startswith("csi://"):
            sid = s[6:] or "0"
            if not sid.isdigit():
                raise SourceError(f"{s}: expected csi://<sensor id>, e.g. csi://0")
            uri = jetson_csi_pipeline(int(sid), **{k: options.pop(k) for k in ("width", "height", "flip")
                                                   if k in options})
            common["source_id"] = source_id or f"csi{sid}"
        elif s.startswith("gst:"):
            uri = s[4:].strip()
        return LiveSource(uri, kind="gstreamer", **common, **options)
    if kind == "camera":
        return LiveSource(uri, kind="camera", **common, **options)
    if kind == "stream" or (force_live and kind == "video"):
        if force_live is False:
            return VideoFileSource(uri, **common, **options)
        return LiveSource(uri, kind="stream", **common, **options)
    if kind == "images":
        return ImageFolderSource(uri, **common, **options)
    p = Path(str(uri)).expanduser()
    if not p.exists() and not p.suffix and "://" not in str(uri):
        raise SourceError(f"source not found: {uri}: no such file or folder (cwd {Path.cwd()}); check the path")
    return VideoFileSource(str(p) if "://" not in str(uri) else uri, **common, **options)


def open_source_config(cfg: Any, base_dir: str | Path | None = None, **overrides: Any) -> Source:
    """Open a :class:`pockit.config.SourceConfig` (relative paths resolve against base_dir)."""
    uri = cfg.uri
    if base_dir is not None and isinstance(uri, str) and detect_kind(uri) in ("video", "images"):
        p = Path(uri).expanduser()
        if not p.is_absolute() and not p.exists() and (Path(base_dir) / p).exists():
            uri = str(Path(base_dir) / p)
    kw: dict[str, Any] = dict(source_id=cfg.id, fps=cfg.fps, max_frames=cfg.max_frames, start=cfg.start,
                              loop=cfg.loop, resize=cfg.resize)
    kw.update(cfg.options or {})
    kw.update(overrides)
    try:
        return open_source(uri, **kw)
    except SourceError as e:
        raise SourceError(f"source {cfg.id!r}: {e}") from None
    except TypeError as e:  # a reserved name given in options
        raise SourceError(f"source {cfg.id!r}: bad options {sorted(cfg.options)}: {e}") from None


def probe(uri: Any, **options: Any) -> dict[str, Any]:
    """Describe a source: kind, live, fps, width, height, frames, duration (s), codec, id.

    Files and folders are not decoded beyond their first frame; a live source is opened, its first
    frame read, and closed (frames and duration are None).
    """
    src = open_source(uri, **options)
    try:
        w, h = src.native_size or (None, None)
        frames = getattr(src, "frame_count", None)
        if isinstance(src, ImageFolderSource) and src.indices:
            span = src.indices[-1] + 1
        else:
            span = frames
        return {
            "uri": src.uri, "id": src.source_id, "kind": src.kind, "live": src.live, "fps": src.fps,
            "width": w, "height": h, "size": (w, h) if w else None, "frames": frames,
            "duration": (span / src.fps) if (span and src.fps) else None,
            "codec": getattr(src, "codec", None),
        }
    finally:
        src.close()
