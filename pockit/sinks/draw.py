"""Drawing and visual outputs: ``annotate``, alarm snapshots, event clips, annotated video."""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np

from ..core import Detections, Event, Frame

log = logging.getLogger(__name__)

RED = (0, 0, 255)
ZONE = (255, 160, 0)
LINE = (0, 220, 255)
_PALETTE = np.array([[86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178], [213, 94, 0],
                     [204, 121, 167], [230, 159, 0], [120, 200, 120], [160, 160, 255], [255, 200, 120]], np.uint8)


def _color(tid: int) -> tuple[int, int, int]:
    if tid < 0:
        return (200, 200, 200)
    c = _PALETTE[int(tid) % len(_PALETTE)]
    return int(c[2]), int(c[1]), int(c[0])


def _text(img, s, org, color, scale):
    """Text with a black halo made of shifted copies at the text's own thickness (OpenCV advances glyphs
    differently for thickness 1 and >= 2, so a thicker halo drifts away from the letters)."""
    th = max(1, int(1.5 * scale))
    r = max(1, round(scale))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, tht), base = cv2.getTextSize(s, font, scale, th)
    h, w = img.shape[:2]  # kept inside the image (a label near the right or bottom edge is moved in)
    x = int(min(max(int(org[0]), r), max(w - tw - r, r)))
    y = int(min(max(int(org[1]), tht + r), max(h - base - r, tht + r)))
    org = (x, y)
    for dx, dy in ((-r, -r), (0, -r), (r, -r), (-r, 0), (r, 0), (-r, r), (0, r), (r, r)):
        cv2.putText(img, s, (x + dx, y + dy), font, scale, (0, 0, 0), th, cv2.LINE_AA)
    cv2.putText(img, s, org, font, scale, color, th, cv2.LINE_AA)


FENCE = (216, 79, 255)  # BGR
SELECTED = (0, 122, 255)
_KIND_COLOR = {"zone": ZONE, "box": ZONE, "line": LINE, "fence": LINE}


def draw_shapes(img: np.ndarray, shapes: Iterable[Mapping], scale: float | None = None,
                occupancy: Mapping[str, int] | None = None, vertices: bool = False) -> None:
    """Draw rule geometry in place: the one drawing of zones, lines and fences (run outputs, live view, report,
    notebook editor).

    Each shape is a mapping with ``kind`` (zone | box | line | fence), ``points`` (K, 2) in pixels and ``name``;
    optional ``counts`` ({'in': n, 'out': n}: written after a line's name), ``rule`` (key into ``occupancy``:
    objects in the zone now, written after the zone's name), ``color`` (BGR), ``closed`` (False: a zone still
    being drawn, as an open outline). Zones are filled translucent; lines/fences get an arrow to the 'in' side
    (the left of A->B as drawn, the side the rules count as 'in'). ``vertices``: dots on every point (editor).
    """
    shapes = [sh for sh in shapes if len(sh["points"])]
    if not shapes:
        return
    scale = _scale(img) if scale is None else scale
    th = max(1, round(2 * scale))
    overlay = img.copy()
    filled = False
    for sh in shapes:
        pts = np.round(np.asarray(sh["points"], np.float64).reshape(-1, 2)).astype(np.int32)
        if sh["kind"] in ("zone", "box") and len(pts) >= 3:
            cv2.fillPoly(overlay, [pts], sh.get("color") or _KIND_COLOR[sh["kind"]])
            filled = True
    if filled:
        cv2.addWeighted(overlay, 0.18, img, 0.82, 0, dst=img)
    stacked: dict[tuple[int, int], int] = {}  # zone label anchor -> labels already written there
    for sh in shapes:
        col = sh.get("color") or _KIND_COLOR.get(sh["kind"], LINE)
        p = np.asarray(sh["points"], np.float64).reshape(-1, 2)
        pts = np.round(p).astype(np.int32)
        if vertices:
            for q in pts:
                cv2.circle(img, (int(q[0]), int(q[1])), round(4 * scale), col, -1, cv2.LINE_AA)
        if sh["kind"] in ("zone", "box"):
            if len(pts) >= 2:
                cv2.polylines(img, [pts], sh.get("closed", True), col, th, cv2.LINE_AA)
            label = str(sh.get("name", ""))
            if occupancy is not None and sh.get("rule") in occupancy:
                label += f": {occupancy[sh['rule']]}"
            if label:  # rules sharing a zone (intrusion + loitering): their names stack one line apart
                at = tuple(int(v) for v in pts.min(0))
                k = stacked.get(at, 0)
                stacked[at] = k + 1
                _text(img, label, (at[0] + 4, at[1] + int(18 * scale) * (k + 1)), col, 0.5 * scale)
            continue
        if len(pts) < 2:
            continue
        cv2.polylines(img, [pts], False, col, th + 1, cv2.LINE_AA)
        a, b = p[0], p[1]
        mid = (a + b) / 2
        d = b - a
        n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)  # points to the positive ('in') side
        tip = mid + n * 30 * scale
        cv2.arrowedLine(img, tuple(np.round(mid).astype(int)), tuple(np.round(tip).astype(int)), col, th,
                        cv2.LINE_AA, tipLength=0.35)
        c = sh.get("counts")
        label = str(sh.get("name", "")) + (f" in:{c.get('in', 0)} out:{c.get('out', 0)}" if c is not None else "")
        if label:
            _text(img, label, tuple(np.round(a + [4, -8 * scale]).astype(int)), col, 0.5 * scale)


def draw_geometry(img: np.ndarray, engine, scale: float, occupancy: Mapping[str, int] | None = None) -> None:
    """The engine's zones (translucent fill), lines/fences (arrow to the 'in' side, in/out counts), guarded boxes."""
    draw_shapes(img, engine.shapes if engine is not None else [], scale, occupancy=occupancy)


def _scale(img: np.ndarray) -> float:
    """Text/line scale: 1 up to 1280 px wide (labels stay legible on small frames), then with the width."""
    return max(1.0, img.shape[1] / 1280)


# ------------------------------------------------------------------------------ live overlays: trails, heatmap
def _tracked_anchors(dets: Detections | None, kind: str, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, anchors (N, 2) float64) of the tracked objects (track id >= 0), clipped to the frame like the rules."""
    if dets is None or not len(dets):
        return np.zeros(0, np.int64), np.zeros((0, 2))
    keep = dets.track_ids >= 0
    a = dets.anchors(kind).astype(np.float64)[keep]
    if size is not None and len(a):
        np.clip(a[:, 0], 0, size[0], out=a[:, 0])
        np.clip(a[:, 1], 0, size[1], out=a[:, 1])
    return dets.track_ids[keep].astype(np.int64), a


class Trails:
    """The last ``length`` anchor points of every track (where it walked), drawn as a polyline in its colour.

    ``update(dets, timestamp)`` once per frame; a track not seen for ``forget`` seconds is dropped.
    """

    def __init__(self, length: int = 30, anchor: str = "bottom_center", forget: float = 2.0) -> None:
        if length < 2:
            raise ValueError(f"trail length must be at least 2 points, got {length}")
        self.length, self.anchor, self.forget = int(length), anchor, float(forget)
        self.points: dict[int, deque] = {}
        self.seen: dict[int, float] = {}

    def update(self, dets: Detections | None, timestamp: float, size: tuple[int, int] | None = None) -> None:
        ids, anchors = _tracked_anchors(dets, self.anchor, size)
        for tid, a in zip(ids.tolist(), anchors):
            q = self.points.get(tid)
            if q is None:
                q = self.points[tid] = deque(maxlen=self.length)
            q.append((float(a[0]), float(a[1])))
            self.seen[tid] = float(timestamp)
        for tid in [t for t, ts in self.seen.items() if timestamp - ts > self.forget]:
            del self.points[tid], self.seen[tid]

    def draw(self, img: np.ndarray, scale: float | None = None) -> None:
        """Each trail in its track's colour, thicker towards the newest point."""
        scale = _scale(img) if scale is None else scale
        for tid, q in self.points.items():
            if len(q) < 2:
                continue
            pts = np.round(np.asarray(q)).astype(np.int32)
            col = _color(tid)
            n = len(pts) - 1
            for i in range(n):
                th = max(1, round((1 + 2 * (i + 1) / n) * scale))
                cv2.line(img, tuple(int(v) for v in pts[i]), tuple(int(v) for v in pts[i + 1]), col, th, cv2.LINE_AA)


class Heatmap:
    """Where objects have been: anchor positions accumulated on a grid of ``cell`` pixels, each visit's weight
    halving every ``half_life`` seconds; drawn as a translucent colour map (blue = rare, red = most visited)."""

    def __init__(self, half_life: float = 30.0, cell: int = 8, anchor: str = "bottom_center") -> None:
        if half_life <= 0 or cell < 1:
            raise ValueError(f"heatmap needs half_life > 0 and cell >= 1, got {half_life}, {cell}")
        self.half_life, self.cell, self.anchor = float(half_life), int(cell), anchor
        self.grid: np.ndarray | None = None
        self.size: tuple[int, int] | None = None
        self.t: float | None = None

    def update(self, dets: Detections | None, size: tuple[int, int], timestamp: float) -> None:
        w, h = int(size[0]), int(size[1])
        if self.grid is None or self.size != (w, h):
            self.grid = np.zeros((h // self.cell + 1, w // self.cell + 1), np.float32)
            self.size, self.t = (w, h), None
        if self.t is not None and timestamp > self.t:
            self.grid *= np.float32(0.5 ** ((timestamp - self.t) / self.half_life))
        self.t = float(timestamp)
        _, a = _tracked_anchors(dets, self.anchor, (w - 1, h - 1))
        if len(a):
            cells = (a // self.cell).astype(np.int64)
            np.add.at(self.grid, (cells[:, 1], cells[:, 0]), 1.0)

    def draw(self, img: np.ndarray, alpha: float = 0.5) -> None:
        """Blend the colour map where anything was seen (weight >= 2 % of the peak); elsewhere the frame is kept."""
        if self.grid is None or not self.grid.any():
            return
        g = cv2.GaussianBlur(self.grid, (0, 0), 1.5)
        peak = float(g.max())
        if peak <= 0:
            return
        g *= np.float32(1.0 / peak)
        colors = cv2.applyColorMap(cv2.convertScaleAbs(g, alpha=255.0), cv2.COLORMAP_JET)  # on the grid, then
        a = np.clip(g * np.float32(2 * alpha), np.float32(0.35 * alpha), np.float32(alpha))  # scaled up: cheap
        a[g < 0.02] = 0
        size = (img.shape[1], img.shape[0])
        colors = cv2.resize(colors, size, interpolation=cv2.INTER_LINEAR)
        a = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
        img[:] = cv2.blendLinear(img, colors, np.float32(1) - a, a)


class ZoneCounter:
    """Objects inside each zone now, from the rules' own zone polygons, anchors and class/score filters.

    ``rules``: rule configs (pydantic models or dicts); every rule with a zone counts, keyed by rule name.
    ``count(dets, frame_size) -> {rule name: n}`` counts tracked objects (track id >= 0) whose anchor is inside
    or on the border, as the zone rules see them. ``names`` gives each rule's zone as shown (``zone_name`` or
    the rule name).
    """

    def __init__(self, rules: Iterable = (), class_names: Mapping[int, str] | None = None) -> None:
        self.rules = []
        for r in rules:
            d = r if isinstance(r, Mapping) else r.model_dump()
            if d.get("zone") is None or not d.get("enabled", True):
                continue
            self.rules.append(d)
        self.names = {d["name"]: d.get("zone_name") or d["name"] for d in self.rules}
        self.class_names = dict(class_names or {})
        self._poly: dict = {}

    def _allowed(self, spec, names: Mapping[int, str]) -> np.ndarray | None:
        if spec is None:
            return None
        by_name = {str(v).lower(): int(k) for k, v in names.items()}
        ids = set()
        for c in spec:
            if str(c).lower() in by_name:
                ids.add(by_name[str(c).lower()])
            elif isinstance(c, int) or str(c).lstrip("-").isdigit():
                ids.add(int(c))
        return np.asarray(sorted(ids), np.int64)

    def count(self, dets: Detections | None, frame_size: tuple[int, int]) -> dict[str, int]:
        from ..rules.geometry import is_normalized, points_in_polygon, to_pixels

        out: dict[str, int] = {}
        names = (dets.class_names if dets is not None and dets.class_names else None) or self.class_names
        size = (int(frame_size[0]), int(frame_size[1]))
        for d in self.rules:
            key = (d["name"], size)
            poly = self._poly.get(key)
            if poly is None:
                poly = self._poly[key] = to_pixels(d["zone"], is_normalized(d["zone"], d.get("normalized")), size,
                                                   f"rule {d['name']!r}")
            if dets is None or not len(dets):
                out[d["name"]] = 0
                continue
            m = dets.track_ids >= 0
            if d.get("min_score", 0) > 0:
                m &= dets.scores >= d["min_score"]
            allowed = self._allowed(d.get("classes"), names)
            if allowed is not None:
                m &= np.isin(dets.class_ids, allowed)
            a = dets.anchors(d.get("anchor", "bottom_center")).astype(np.float64)[m]
            if len(a):
                np.clip(a[:, 0], 0, size[0], out=a[:, 0])
                np.clip(a[:, 1], 0, size[1], out=a[:, 1])
            out[d["name"]] = int(points_in_polygon(a, poly).sum()) if len(a) else 0
        return out


def annotate(image: np.ndarray, dets: Detections | None, engine=None, alarmed: Iterable[int] = (),
             alarm_boxes: Iterable = (), copy: bool = True, engine_alarms: bool = True,
             labels: Mapping[int, str] | None = None, occupancy: Mapping[str, int] | None = None,
             trails: Trails | None = None, heatmap: Heatmap | None = None) -> np.ndarray:
    """Draw boxes with track ids and class names, the engine's zones/lines, alarmed objects in red.

    ``labels``: class name to show per track id instead of this frame's detected class (a snapshot shows
    the class its event recorded, which the detector may have named differently on this frame).

    ``alarmed``: track ids to draw red (added to ``engine.alarmed`` when an engine is given and
    ``engine_alarms``); ``alarm_boxes``: extra xyxy boxes drawn red (e.g. a foreground abandoned object).

    Live view extras: ``occupancy`` ({rule name: objects in its zone now}, from :class:`ZoneCounter`) is
    written after each zone's name; ``heatmap`` is blended under everything, ``trails`` under the boxes.
    """
    img = image.copy() if copy else image
    scale = _scale(img)
    if heatmap is not None:
        heatmap.draw(img)
    draw_geometry(img, engine, scale, occupancy=occupancy)
    if trails is not None:
        trails.draw(img, scale)
    red = {int(t) for t in alarmed}
    boxes = [np.asarray(b, float) for b in alarm_boxes]
    if engine is not None and engine_alarms:
        red |= engine.alarmed_ids
        for bl in engine.alarm_boxes.values():
            boxes.extend(bl)
    th = max(1, round(2 * scale))
    if dets is not None:
        for i in range(len(dets)):
            x1, y1, x2, y2 = (round(v) for v in dets.xyxy[i])
            tid = int(dets.track_ids[i])
            col = RED if tid in red and tid >= 0 else _color(tid)
            cv2.rectangle(img, (x1, y1), (x2, y2), col, th + (2 if col == RED else 0))
            name = labels.get(tid) if labels and tid >= 0 and tid in labels else dets.name_of(dets.class_ids[i])
            label = (f"#{tid} " if tid >= 0 else "") + name
            _text(img, label, (x1, max(12, y1 - 4)), col, 0.45 * scale)
    for b in boxes:
        x1, y1, x2, y2 = (round(v) for v in b)
        cv2.rectangle(img, (x1, y1), (x2, y2), RED, th + 2)
    return img


# ------------------------------------------------------------------------------ image files and encodings
def load_image(image: np.ndarray | str | Path) -> np.ndarray:
    """A BGR uint8 frame from an array (grey is converted) or an image file (clear error when unreadable)."""
    if isinstance(image, (str, Path)):
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{image}: cannot read an image there (missing file or not an image)")
        return img
    img = np.asarray(image)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 BGR frame, got shape {img.shape} dtype {img.dtype}")
    return img


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG file bytes of a BGR frame."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of a BGR frame."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


# ------------------------------------------------------------------------------------------ video files
# Browser-playable first: H.264 in MP4 through PyAV's libx264/libopenh264 (PyAV wheels bundle FFmpeg), then
# VP8 in WebM through OpenCV (Chromium and Firefox play it), and MPEG-4 Part 2 ('mp4v') last: desktop players
# read it but browsers do not (Chromium: MEDIA_ERR_SRC_NOT_SUPPORTED, error 4).
CODECS = ("h264", "openh264", "avc1", "vp8", "mp4v")
_EXT = {"h264": ".mp4", "openh264": ".mp4", "avc1": ".mp4", "vp8": ".webm", "mp4v": ".mp4"}
_MIME = {".mp4": "video/mp4", ".webm": "video/webm"}
_usable: dict[str, bool] = {}


def _pyav_encoder(name: str) -> bool:
    try:
        import av
    except ImportError:
        return False
    return name in av.codecs_available


def _opencv_fourcc_ok(codec: str) -> bool:
    import tempfile

    fourcc = {"avc1": "avc1", "vp8": "VP80", "mp4v": "mp4v"}[codec]
    with tempfile.TemporaryDirectory() as d:
        vw = cv2.VideoWriter(str(Path(d) / f"probe{_EXT[codec]}"), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 64))
        ok = vw.isOpened()
        vw.release()
    return ok


def codec_usable(codec: str) -> bool:
    """Whether this environment can write ``codec`` (probed once per process)."""
    if codec not in _usable:
        if codec == "h264":
            _usable[codec] = _pyav_encoder("libx264")
        elif codec == "openh264":
            _usable[codec] = _pyav_encoder("libopenh264")
        elif codec in ("avc1", "vp8", "mp4v"):
            _usable[codec] = _opencv_fourcc_ok(codec)
        else:
            raise ValueError(f"unknown video codec {codec!r}; known: {', '.join(CODECS)}")
    return _usable[codec]


def pick_codec(prefer: str | Iterable[str] | None = None) -> str:
    """The first usable codec of ``prefer`` (a name or a list; default :data:`CODECS`, browser-playable first)."""
    chain = [prefer] if isinstance(prefer, str) else list(prefer or CODECS)
    for c in chain:
        if codec_usable(c):
            return c
    raise OSError(f"no usable video codec among {chain}: install PyAV (`pip install av`) for H.264")


def video_mime(path: str | Path) -> str:
    """``video/mp4`` or ``video/webm`` from the file name (for a ``<video>`` tag)."""
    return _MIME.get(Path(path).suffix.lower(), "video/mp4")


class VideoFile:
    """One video file written frame by frame (BGR uint8, one size): H.264 via PyAV, or an OpenCV writer.

    ``codec``: one of :data:`CODECS`; the file name's extension must suit it (:func:`pick_codec` and
    ``_EXT``). Odd frame sizes are padded by one black pixel (H.264 4:2:0 needs even sizes).
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], codec: str) -> None:
        self.path, self.codec, self.fps = Path(path), codec, float(fps or 25.0)
        w, h = int(size[0]), int(size[1])
        self.size = (w, h)
        self.frames = 0
        self._pad = (w % 2, h % 2) if codec in ("h264", "openh264") else (0, 0)
        if codec in ("h264", "openh264"):
            from fractions import Fraction

            import av

            self._c = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
            st = self._c.add_stream("libx264" if codec == "h264" else "libopenh264",
                                    rate=Fraction(self.fps).limit_denominator(1001))
            st.width, st.height = w + self._pad[0], h + self._pad[1]
            st.pix_fmt = "yuv420p"
            if codec == "h264":
                st.options = {"preset": "veryfast", "crf": "23"}
            self._st = st
            self._vw = None
        else:
            fourcc = {"avc1": "avc1", "vp8": "VP80", "mp4v": "mp4v"}[codec]
            self._vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if not self._vw.isOpened():
                raise OSError(f"cannot open a video writer for {self.path} (codec {codec})")

    def write(self, img: np.ndarray) -> None:
        if self._vw is not None:
            self._vw.write(img)
        else:
            import av

            if any(self._pad):
                img = cv2.copyMakeBorder(img, 0, self._pad[1], 0, self._pad[0], cv2.BORDER_CONSTANT, value=0)
            for pkt in self._st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")):
                self._c.mux(pkt)
        self.frames += 1

    def close(self) -> None:
        if self._vw is not None:
            self._vw.release()
            self._vw = None
        elif getattr(self, "_c", None) is not None:
            for pkt in self._st.encode():
                self._c.mux(pkt)
            self._c.close()
            self._c = None


class SnapshotWriter:
    """Saves ``run_dir/snapshots/<event id>.jpg``: the frame with geometry, the alarmed object in red.

    Only the event's own objects are red (other tracks still in alarm for other events are drawn in their
    normal colour), so each snapshot shows which object raised it.

    ``save`` sets ``event.snapshot`` (path relative to run_dir) before the event reaches the sinks.
    """

    def __init__(self, run_dir: str | Path, quality: int = 90) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "snapshots"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.quality = int(quality)

    def save(self, frame: Frame, dets: Detections | None, event: Event, engine=None) -> Path:
        ids = event.track_id if isinstance(event.track_id, list) else [event.track_id] if event.track_id is not None else []
        boxes = [event.bbox] if event.bbox is not None and not ids else []
        # the event's objects carry the event's class (the rule may date the event to an earlier frame, where
        # the detector named the class differently than on this one)
        labels = {int(i): event.class_name for i in ids} if event.class_name else None
        img = annotate(frame.image, dets, engine, alarmed=ids, alarm_boxes=boxes, engine_alarms=False,
                       labels=labels)
        if ids and event.bbox is not None and dets is not None and not np.isin(ids, dets.track_ids).any():
            x1, y1, x2, y2 = (round(v) for v in event.bbox)  # the object left the frame: box at event time
            cv2.rectangle(img, (x1, y1), (x2, y2), RED, 3)
        s = _scale(img)
        head = f"{event.rule} ({event.type})" + (f" {event.class_name}" if event.class_name else "")
        _text(img, f"{head} t={event.time:.2f}s", (8, int(24 * s)), RED, 0.7 * s)
        path = self.dir / f"{event.id}.jpg"
        if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, self.quality]):
            raise OSError(f"could not write snapshot {path}")
        event.snapshot = str(path.relative_to(self.run_dir))
        return path


class ClipRecorder:
    """Keeps the last ``seconds/2`` of annotated frames; ``trigger(event)`` writes ``seconds`` around it.

    ``push(frame, dets)`` every frame; ``trigger(event)`` sets ``event.clip`` (relative path
    ``clips/<id>.mp4``, or ``.webm`` with VP8) and the clip is written once ``seconds/2`` more frames arrived
    (or at ``close``). Frames are stored downscaled to at most ``max_width`` pixels wide. ``codec``: see
    :func:`pick_codec` (default: the first browser-playable one this environment has).
    """

    def __init__(self, clips_dir: str | Path, seconds: float = 6.0, fps: float = 25.0, engine=None,
                 max_width: int = 960, codec: str | Iterable[str] | None = None) -> None:
        self.dir = Path(clips_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps or 25.0)
        self.half = max(1, round(seconds * self.fps / 2))
        self.engine = engine
        self.max_width = max_width
        self.buffer: deque = deque(maxlen=self.half)
        self.pending: list[tuple[Path, list, int]] = []
        self.written: list[Path] = []
        self.codec = pick_codec(codec)
        log.log(logging.INFO if self.codec != "mp4v" else logging.WARNING, "alarm clips in %s: codec %s%s",
                self.dir, self.codec,
                "" if self.codec != "mp4v" else " (browsers cannot play it: install PyAV for H.264)")

    def push(self, frame: Frame, dets: Detections | None) -> None:
        img = annotate(frame.image, dets, self.engine)
        h, w = img.shape[:2]
        if w > self.max_width:
            img = cv2.resize(img, (self.max_width, round(h * self.max_width / w)), interpolation=cv2.INTER_AREA)
        self.buffer.append(img)
        still = []
        for path, frames, left in self.pending:
            frames.append(img)
            if left - 1 <= 0:
                self._write(path, frames)
            else:
                still.append((path, frames, left - 1))
        self.pending = still

    def trigger(self, event: Event) -> None:
        path = self.dir / f"{event.id}{_EXT[self.codec]}"
        self.pending.append((path, list(self.buffer), self.half))
        event.clip = f"{self.dir.name}/{path.name}"

    def _write(self, path: Path, frames: list) -> None:
        if not frames:
            return
        h, w = frames[0].shape[:2]
        try:
            vf = VideoFile(path, self.fps, (w, h), self.codec)
            for f in frames:
                vf.write(f)
            vf.close()
        except Exception as e:  # noqa: BLE001 - a clip that cannot be written never stops the run
            log.error("cannot write clip %s (codec %s): %s", path, self.codec, e)
            return
        self.written.append(path)

    def close(self) -> None:
        for path, frames, _ in self.pending:
            self._write(path, frames)
        self.pending = []


class VideoWriterSink:
    """Annotated video of one source: ``write(frame, dets, engine)`` per frame, ``close()`` at the end.

    ``codec``: see :func:`pick_codec` (default: H.264 when PyAV has an encoder, then VP8/WebM, then mp4v).
    When the codec needs another extension than ``path``'s (VP8: ``.webm``), ``self.path`` is changed to it.
    """

    def __init__(self, path: str | Path, fps: float = 25.0, codec: str | Iterable[str] | None = None,
                 fourcc: str | None = None) -> None:
        if fourcc is not None:  # the former OpenCV-only argument
            codec = {"mp4v": "mp4v", "avc1": "avc1", "H264": "avc1", "VP80": "vp8"}.get(fourcc, fourcc)
        self.codec = pick_codec(codec)
        self.path = Path(path).with_suffix(_EXT[self.codec])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps or 25.0)
        self._vw: VideoFile | None = None
        self.frames = 0

    def write(self, frame: Frame, dets: Detections | None = None, engine=None) -> None:
        img = annotate(frame.image, dets, engine)
        if self._vw is None:
            h, w = img.shape[:2]
            self._vw = VideoFile(self.path, self.fps, (w, h), self.codec)
            log.log(logging.INFO if self.codec != "mp4v" else logging.WARNING, "annotated video %s: codec %s%s",
                    self.path, self.codec,
                    "" if self.codec != "mp4v" else " (browsers cannot play it: install PyAV for H.264)")
        self._vw.write(img)
        self.frames += 1

    def close(self) -> None:
        if self._vw is not None:
            self._vw.close()
            self._vw = None
