"""Finite sources: video files (anything OpenCV's FFmpeg backend reads) and image / MOTChallenge folders."""
from __future__ import annotations

import configparser
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .base import Source, SourceError, expected_count, log, safe_id

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".jp2"}
VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv",
              ".webm", ".3gp", ".h264", ".264", ".h265", ".265", ".hevc", ".mjpeg", ".mjpg", ".asf", ".dav", ".ogv"}


def natural_key(text: str) -> list:
    """Sort key where 'img2' < 'img10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def first_index(start: float, fps: float) -> int:
    """0-based index of the first frame at or after ``start`` seconds."""
    return max(0, int(math.ceil(start * fps - 1e-6)))


def fourcc_str(cap: Any) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    s = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return s if s.isprintable() and s.strip() else "?"


# ============================================================================================
#: codecs (the container's FOURCC as OpenCV reads it) decoder auto sends to NVDEC: H.264, the codec NVDEC was
#: measured on in the pipeline, and HEVC, the other one every NVDEC takes
NVDEC_AUTO_CODECS = frozenset({"h264", "avc1", "x264", "hevc", "hev1", "hvc1", "h265"})


class VideoFileSource(Source):
    """A video file (or an http(s) URL to one) decoded with OpenCV/FFmpeg.

    Timestamps come from the container (CAP_PROP_POS_MSEC, relative to the first frame) while they
    are sane (increasing, within 20 % / 2 s of index/fps), else index/fps. A frame that fails to
    decode before the announced frame count is logged, counted in ``stats['corrupt']`` and skipped; a file
    that stops decoding well before that count (truncated) is logged as a warning and recorded in
    ``stats['ended_early']`` = {decoded, expected (frames), ended_at_s, expected_s}.
    Options: ``native_fps`` (override a wrong header), ``timestamps`` ('auto' | 'pts' | 'index'),
    ``corrupt_retries`` (failed reads in a row before concluding end of file), ``capture_factory``,
    ``threads`` (FFmpeg decoder threads; 0 = FFmpeg's choice, about one per core. The pipeline's decode
    processes use 1: with many streams, parallelism comes from the streams and per-stream threads only add
    switching - measured 1.34 vs 1.5-1.85 ms of CPU per 768x576 H.264 frame), ``decoder`` (auto | cpu | nvdec,
    see :meth:`_choose_decoder`), ``nvdec_convert`` (cpu | gpu: where NVDEC's NV12
    becomes BGR; model: opt-in, frames the pipeline decodes into a pool slot stay NV12 there for a detector that
    takes NV12 (the torch backend on CUDA), otherwise the pipeline sets it back to cpu),
    ``nvdec_min_pixels`` (set by the pipeline when the model is on CUDA: auto picks NVDEC from that frame size).
    """

    kind = "video"
    #: an HxWx3 uint8 array the next frame is decoded into when it has the frame's shape (the pipeline points it
    #: at a free frame-pool slot: no allocation and no copy per frame); None: a new array per frame
    into = None
    OPTIONS = {"native_fps": None, "timestamps": "auto", "corrupt_retries": 10, "capture_factory": None,
               "decoder": "auto", "threads": 0, "nvdec_convert": "cpu", "nvdec_min_pixels": None}

    def __init__(self, uri: Any, **kw: Any):
        super().__init__(uri, **kw)
        self.remote = "://" in self.uri
        path = Path(self.uri)
        if not self.remote and not path.is_file():
            if path.exists():
                raise SourceError(f"{self.uri}: not a regular file")
            raise SourceError(f"video file not found: {self.uri} (cwd {os.getcwd()}); check the path and spelling")
        self.decoder = self._choose_decoder()
        if self.options["timestamps"] not in ("auto", "pts", "index"):
            raise SourceError(f"{self.uri}: option timestamps must be 'auto', 'pts' or 'index', "
                              f"got {self.options['timestamps']!r}")
        # the container is read (fps, frame count, first frame) with OpenCV even for an NVDEC stream: an NVDEC
        # decoder created and ended at once, its prefetch thread still starting, crashed PyNvVideoCodec 2.2.4
        # (SIGABRT/SIGSEGV in ThreadedDecoder.end, 12 decode processes opening 64 streams on the lent H200);
        # the NVDEC decoder is made once, when decoding starts (a file it cannot take falls back to the CPU there)
        cap = self._open(probe=True)
        try:
            self.codec = fourcc_str(cap)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if self.options["native_fps"]:
                fps = float(self.options["native_fps"])
            elif not (0 < fps <= 1000) or not math.isfinite(fps):
                log.warning("%s: the file reports fps=%s; assuming 25 (set option native_fps to fix)", self.uri, fps)
                fps = 25.0
            self.fps = fps
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.frame_count: int | None = int(n) if n and 0 < n < 1e12 else None
            ok, img = cap.read()
            if not ok or img is None:
                raise SourceError(
                    f"{self.uri}: opened but no frame could be decoded (codec {self.codec!r}, "
                    f"{self.frame_count} frames announced). The codec may be unsupported by this OpenCV build "
                    f"or the file damaged; check with `ffprobe {self.uri}` or re-encode: "
                    f"ffmpeg -i {self.uri} -c:v libx264 -pix_fmt yuv420p out.mp4")
            # NVDEC's timestamps are the frame index over the fps, from 0
            self._msec0 = 0.0 if self.decoder == "nvdec" else float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            self._set_native_size((img.shape[1], img.shape[0]))
        finally:
            cap.release()
        self.start_frame = first_index(self.start, self.fps)
        if self.frame_count is not None and self.start_frame >= self.frame_count:
            raise SourceError(f"{self.uri}: start={self.start} s is past the end of the video "
                              f"({self.frame_count} frames, {self.frame_count / self.fps:.2f} s)")
        if self.loop:
            self.total = self.max_frames
        elif self.frame_count is not None:
            self.total = expected_count((i / self.fps for i in range(self.start_frame, self.frame_count)),
                                        self.target_fps, self.max_frames)

    def default_id(self) -> str:
        return safe_id(Path(self.uri.split("?")[0]).stem)

    def _choose_decoder(self) -> str:
        """'nvdec' (GPU hardware decode, pockit.sources.nvdec) or 'cpu' (OpenCV/FFmpeg). Option ``decoder``:
        cpu; nvdec (an error if PyNvVideoCodec or CUDA is missing); auto (default): NVDEC when option
        ``nvdec_min_pixels`` is set (the pipeline sets it when the model runs on CUDA) and the file's frames have
        at least that many pixels, the codec is one NVDEC was measured on (NVDEC_AUTO_CODECS: H.264, HEVC),
        PyNvVideoCodec is installed and a CUDA device is visible; else the CPU. Measured on the lent H200 with 64
        cameras (benchmarks/README.md): at 1920x1080 NVDEC carried 1,222 frames/s against 739 for CPU decode; at
        768x576 in threads it carried less (1,658 against 2,241), so small frames stay on the CPU unless the
        pipeline runs NVDEC's decode processes under CUDA MPS (it then sets the threshold to 1 pixel).
        ``nvdec_convert`` (cpu | gpu | model) is where NV12 becomes BGR."""
        want = self.options["decoder"]
        if want not in ("auto", "cpu", "nvdec"):
            raise SourceError(f"{self.uri}: option decoder must be 'auto', 'cpu' or 'nvdec', got {want!r}")
        if self.options["nvdec_convert"] not in ("cpu", "gpu", "model"):
            raise SourceError(f"{self.uri}: option nvdec_convert must be 'cpu', 'gpu' or 'model', "
                              f"got {self.options['nvdec_convert']!r}")
        if want == "cpu" or self.remote or self.options["capture_factory"]:
            return "cpu"
        if want == "auto":
            min_px = self.options["nvdec_min_pixels"]
            if not min_px:
                return "cpu"
            pixels, codec = self._probe_container()
            if pixels < float(min_px) or codec not in NVDEC_AUTO_CODECS:
                return "cpu"
        from .nvdec import nvdec_available

        ok, why = nvdec_available()
        if not ok:
            if want == "nvdec":
                raise SourceError(f"{self.uri}: decoder nvdec requested but unavailable: {why}")
            return "cpu"
        return "nvdec"

    def _probe_container(self) -> tuple[int, str]:
        """(width x height, codec FOURCC in lower case) the container announces, no frame decoded; 0 / '' when
        unknown."""
        cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG)
        try:
            pixels = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) * int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        finally:
            cap.release()
        return pixels, code.to_bytes(4, "little").decode("latin-1").strip("\x00 ").lower()

    def _open(self, probe: bool = False):
        """The capture frames are read from; ``probe``: for reading the container's properties and first frame
        in ``__init__`` (OpenCV, also for an NVDEC stream)."""
        factory = self.options["capture_factory"]
        if self.decoder == "nvdec" and not probe:
            from .nvdec import NvdecCapture

            try:
                return NvdecCapture(self.uri, convert=self.options["nvdec_convert"])
            except Exception as e:  # a codec NVDEC does not take: OpenCV decodes this file
                if self.options["decoder"] == "nvdec":
                    raise SourceError(f"{self.uri}: NVDEC cannot decode this file: {type(e).__name__}: {e}") from e
                log.warning("%s: NVDEC cannot decode it (%s); decoding on the CPU", self.uri, e)
                self.decoder = "cpu"
        if factory:
            cap = factory(self.uri)
        elif self.remote:
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 15000,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, 15000])
        else:
            threads, prop = int(self.options["threads"] or 0), getattr(cv2, "CAP_PROP_N_THREADS", None)
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [prop, threads] if threads > 0 and prop else [])
        if not cap.isOpened() and not factory:
            cap = cv2.VideoCapture(self.uri)
        if not cap.isOpened():
            what = "the URL is reachable" if self.remote else "the file is a complete video (not still being written)"
            raise SourceError(f"{self.uri}: OpenCV/FFmpeg cannot open this video; check that {what} and that "
                              f"`ffprobe {self.uri}` reads it, or re-encode it to H.264 mp4")
        return cap

    def _timestamp(self, cap, index: int, prev: float | None) -> float:
        by_index = index / self.fps
        mode = self.options["timestamps"]
        if mode == "index":
            return by_index
        t = (float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) - self._msec0) / 1000.0
        sane = math.isfinite(t) and t >= 0 and (prev is None or t > prev)
        if mode == "auto":
            sane = sane and abs(t - by_index) <= max(2.0, 0.2 * by_index)
        if sane:
            return t
        if prev is not None and by_index <= prev:
            return prev + 1.0 / self.fps
        return by_index

    def _seek(self, cap) -> int:
        """Position the capture at start_frame; returns the index of the next frame read."""
        if self.start_frame == 0:
            return 0
        if cap.set(cv2.CAP_PROP_POS_FRAMES, self.start_frame) and \
                int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == self.start_frame:
            return self.start_frame
        log.info("%s: seeking not supported, decoding %d frames to reach start", self.uri, self.start_frame)
        for i in range(self.start_frame):
            if not cap.grab():
                raise SourceError(f"{self.uri}: the video ended at frame {i}, before start={self.start} s")
        return self.start_frame

    def _check_end(self, first_failed: int, decoded: int) -> None:
        """Decoding stopped at file frame ``first_failed``: a file that ends well before the frame count its
        container announced (truncated, still being written) is recorded in ``stats['ended_early']`` and
        logged as a warning. "Well before": more than max(1 s of frames, 1 % of the count, 3 frames) missing
        (containers often announce a few frames more than they hold)."""
        n = self.frame_count
        if n is None or first_failed >= n:
            return
        missing = n - first_failed
        if missing <= max(round(self.fps), 0.01 * n, 3):
            log.info("%s: decoding ended at frame %d; the container announced %d frames", self.uri,
                     first_failed, n)
            return
        self.stats["ended_early"] = {"decoded": int(decoded), "expected": int(n - self.start_frame),
                                     "ended_at_s": round(first_failed / self.fps, 2),
                                     "expected_s": round(n / self.fps, 2)}
        log.warning("%s: the video ended early, at %.1f s of the %.1f s (%d frames) its container announces "
                    "(%d frames decoded); the file is truncated or damaged (check it with `ffprobe %s`)", self.uri,
                    first_failed / self.fps, n / self.fps, n, decoded, self.uri)

    def _read(self, cap):
        """One frame, into ``self.into`` when set (a capture whose read() takes no buffer reads as usual)."""
        if self.into is not None:
            try:
                return cap.read(self.into)
            except TypeError:  # a capture_factory's reader without cv2's image argument
                pass
        return cap.read()

    def _rewind(self, cap) -> bool:
        """A looped file's next pass on the same capture, when it can start over (NVDEC: the decoder restarts
        instead of a new one being made, ~225 ms during which a decode process's other streams waited); else
        False and the next pass opens the file anew."""
        rewind = getattr(cap, "rewind", None)
        if rewind is None:
            return False
        try:
            return bool(rewind())
        except Exception as e:  # the capture could not start over: a new one
            log.info("%s: could not rewind (%s: %s); opening it again", self.uri, type(e).__name__, e)
            return False

    def _frames(self) -> Iterator[tuple[np.ndarray, int, float, dict]]:
        idx_off, t_off, passes = 0, 0.0, 0
        retries = int(self.options["corrupt_retries"])
        cap = None
        again = False  # the same capture plays the next pass (rewound)
        while True:
            if cap is None:
                cap = self._open()
            rewound, again = again, False
            read_this_pass = 0
            last_ok = -1
            try:
                index = self._seek(cap)
                prev_ts: float | None = None
                failed: list[int] = []
                while not self._closed:
                    ok, img = self._read(cap)
                    if not ok or img is None:
                        failed.append(index)
                        index += 1
                        if (self.frame_count is None or index >= self.frame_count or len(failed) > retries):
                            if not (rewound and read_this_pass == 0):  # else opened anew below
                                self._check_end(failed[0], read_this_pass)
                            break
                        continue
                    if failed:
                        self.stats["corrupt"] += len(failed)
                        log.warning("%s: %d frame(s) could not be decoded (index %s); skipped", self.uri,
                                    len(failed), failed[0] if len(failed) == 1 else f"{failed[0]}-{failed[-1]}")
                        failed = []
                    self.stats["read"] += 1
                    read_this_pass += 1
                    ts = self._timestamp(cap, index, prev_ts)
                    prev_ts = ts
                    meta = {"loop": passes, "file_index": index} if self.loop else {}
                    if getattr(cap, "last_nv12", False):  # NV12 left in self.into for the pipeline (NVDEC)
                        meta["pixel_format"] = "nv12"
                    if (img.shape[1], img.shape[0]) != self.native_size:
                        log.warning("%s: frame %d is %dx%d, earlier frames %s", self.uri, index, img.shape[1],
                                    img.shape[0], self.native_size)
                        self._set_native_size((img.shape[1], img.shape[0]))
                    last_ok = index
                    yield img, idx_off + index, t_off + ts, meta
                    index += 1
                if self.loop and not self._closed and read_this_pass:
                    again = self._rewind(cap)
            finally:
                if not again:  # else the next pass plays on it
                    cap.release()
                    cap = None
            if rewound and read_this_pass == 0 and not self._closed:  # it said it started over, but gave nothing
                log.warning("%s: no frame after rewinding its decoder; opening the file again", self.uri)
                continue
            if not self.loop or self._closed or read_this_pass == 0:
                if cap is not None:  # rewound just before a close from another thread
                    cap.release()
                return
            passes += 1
            idx_off += last_ok + 1 - self.start_frame
            t_off += (prev_ts or 0.0) + 1.0 / self.fps - self.start_frame / self.fps


# ============================================================================================
class ImageFolderSource(Source):
    """A folder of images (natural sort order) or a MOTChallenge sequence (``img1/`` + ``seqinfo.ini``).

    Timestamps are index / fps. In a MOT sequence the frame index is the image number - 1, so a
    missing image leaves a gap instead of shifting the ground truth. fps: seqinfo.ini ``frameRate``,
    else option ``native_fps`` (default 25). An unreadable image is logged, counted in
    ``stats['corrupt']`` and skipped. Also accepts a glob pattern (``frames/*.png``).
    """

    kind = "images"
    OPTIONS = {"native_fps": None}

    def __init__(self, uri: Any, **kw: Any):
        super().__init__(uri, **kw)
        self.seqinfo: dict[str, str] = {}
        self.files, self.indices = self._list()
        fps = self.options["native_fps"] or self.seqinfo.get("framerate") or 25.0
        try:
            self.fps = float(fps)
        except ValueError:
            raise SourceError(f"{self.uri}: frameRate {fps!r} in seqinfo.ini is not a number") from None
        if not self.fps > 0:
            raise SourceError(f"{self.uri}: frame rate must be > 0, got {fps!r}")
        if self.seqinfo.get("imwidth") and self.seqinfo.get("imheight"):
            self._set_native_size((int(self.seqinfo["imwidth"]), int(self.seqinfo["imheight"])))
        else:
            for f in self.files[:5]:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is not None:
                    self._set_native_size((img.shape[1], img.shape[0]))
                    break
        self.start_frame = first_index(self.start, self.fps)
        self._first = next((i for i, idx in enumerate(self.indices) if idx >= self.start_frame), None)
        if self._first is None:
            raise SourceError(f"{self.uri}: start={self.start} s is past the last image "
                              f"(index {self.indices[-1]}, {self.indices[-1] / self.fps:.2f} s at {self.fps} fps)")
        if self.loop:
            self.total = self.max_frames
        else:
            self.total = expected_count([i / self.fps for i in self.indices[self._first:]], self.target_fps,
                                        self.max_frames)

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def default_id(self) -> str:
        p = Path(self.uri)
        if "*" in p.name or "?" in p.name:
            p = p.parent
        if p.name == "img1":
            p = p.parent
        return safe_id(p.name)

    def _list(self) -> tuple[list[Path], list[int]]:
        p = Path(self.uri)
        if "*" in self.uri or "?" in self.uri:
            folder, files = p.parent, sorted(p.parent.glob(p.name), key=lambda f: natural_key(f.name))
            files = [f for f in files if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
            if not files:
                raise SourceError(f"{self.uri}: no image matches this pattern; check the folder and extension")
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            folder, files = p.parent, [p]
        else:
            if not p.exists():
                what = "image file" if p.suffix.lower() in IMAGE_EXTS else "image folder"
                raise SourceError(f"{what} not found: {self.uri} (cwd {os.getcwd()}); check the path")
            if not p.is_dir():
                raise SourceError(f"{self.uri}: not a folder")
            folder = p
            ini = p / "seqinfo.ini"
            if ini.is_file():
                self.seqinfo = _read_seqinfo(ini)
                folder = p / self.seqinfo.get("imdir", "img1")
                if not folder.is_dir():
                    raise SourceError(f"{ini}: imDir {self.seqinfo.get('imdir', 'img1')!r} is not a folder in {p}")
            elif (p / "img1").is_dir() and not _images_in(p):
                folder = p / "img1"
            files = sorted(_images_in(folder), key=lambda f: natural_key(f.name))
            if not files:
                raise SourceError(f"{self.uri}: no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {folder}; "
                                  "check the path or that the frames were extracted")
        self.folder = folder
        ini = folder.parent / "seqinfo.ini"
        if not self.seqinfo and folder.name == "img1" and ini.is_file():
            # img1/ (or a file or pattern in it) of a MOT sequence: frame rate and size from its seqinfo.ini
            info = _read_seqinfo(ini)
            if info.get("imdir", "img1") == "img1":
                self.seqinfo = info
        is_mot = bool(self.seqinfo) or folder.name == "img1"
        if is_mot:
            self.kind = "mot"
            if all(f.stem.isdigit() for f in files):
                indices = [int(f.stem) - 1 for f in files]
                if len(set(indices)) != len(indices) or min(indices) < 0:
                    raise SourceError(f"{folder}: image numbers are not unique positive integers (MOT names "
                                      "frames 000001.jpg, 000002.jpg, ...)")
                n = int(self.seqinfo.get("seqlength", 0) or 0)
                if n and n != len(files) and p.is_dir():  # not for one file or a pattern
                    log.warning("%s: seqinfo.ini says seqLength=%d but %d images are present", self.uri, n, len(files))
                return files, indices
            log.warning("%s: image names are not frame numbers; using sorted position as frame index", folder)
        return files, list(range(len(files)))

    def _frames(self) -> Iterator[tuple[np.ndarray, int, float, dict]]:
        idx_off, passes = 0, 0
        span = self.indices[-1] + 1 - self.indices[self._first]
        while True:
            read_this_pass = 0
            for f, idx in zip(self.files[self._first:], self.indices[self._first:]):
                if self._closed:
                    return
                img = _imread(f)
                if img is None:
                    self.stats["corrupt"] += 1
                    log.warning("%s: cannot read image %s (corrupt or not an image); skipped", self.uri, f.name)
                    continue
                self.stats["read"] += 1
                read_this_pass += 1
                size = (img.shape[1], img.shape[0])
                if size != self.native_size:
                    if self.native_size is not None:
                        log.warning("%s: image %s is %dx%d, earlier images %s", self.uri, f.name, *size,
                                    self.native_size)
                    self._set_native_size(size)
                meta = {"path": str(f)}
                if self.loop:
                    meta.update(loop=passes, file_index=idx)
                i = idx_off + idx
                yield img, i, i / self.fps, meta
            if not self.loop or read_this_pass == 0:
                return
            passes += 1
            idx_off += span


def _read_seqinfo(ini: Path) -> dict[str, str]:
    cp = configparser.ConfigParser()
    try:
        cp.read(ini, encoding="utf-8")
        return {k.lower(): v for k, v in cp["Sequence"].items()}
    except (configparser.Error, KeyError) as e:
        raise SourceError(f"{ini}: not a MOTChallenge seqinfo.ini ([Sequence] section expected): {e}") from None


def _images_in(folder: Path) -> list[Path]:
    try:
        return [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTS and not f.name.startswith(".")
                and f.is_file()]
    except OSError as e:
        raise SourceError(f"{folder}: cannot list folder: {e}") from None


def _imread(path: Path) -> np.ndarray | None:
    """cv2.imread that also reads non-ASCII paths and never raises."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        if data.size == 0:
            return None
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        return None
