"""The :class:`Detector` interface (``detect(images) -> list[Detections]``, ``class_names``, ``info``,
``last_timings``) and the numpy pre/post-processing shared by the YOLO backends.

The ONNX Runtime, OpenVINO and TensorRT backends only implement :meth:`Detector._forward` (a preprocessed
(B,3,H,W) batch -> raw outputs); letterboxing, batching, decode/NMS and the mapping back to frame pixels are
done here, so identical raw outputs give identical :class:`~pockit.core.Detections` on those three. The other
backends keep the interface but not this code: the torch backend (:mod:`.torch_backend`, not a subclass)
letterboxes and runs NMS on the GPU in torch (checked against this path by its tests, within one uint8
rounding step); Ultralytics (:mod:`.ultralytics_backend`) returns Ultralytics' own preprocessing, NMS and box
scaling; the SSD (:mod:`.ssd_backend`) and face (:mod:`.face_backend`) backends override ``detect`` with
their models' own input and output formats. Class filters resolve through :mod:`pockit.resolve`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.detections import Detections
from .postprocess import decode, to_detections
from .preprocess import preprocess_batch, target_shape

log = logging.getLogger(__name__)


class BackendUnavailable(ImportError):
    """A backend's runtime (onnxruntime-gpu, tensorrt, ultralytics, torch ...) is not installed."""


from ..registry import sha256_file  # noqa: E402,F401  (one checksum helper for pockit)


def parse_names(value: Any) -> dict[int, str]:
    """Class names from model metadata: a dict, a dict-literal string (Ultralytics), a list or a YAML list."""
    import ast

    if value is None:
        return {}
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:
                import yaml

                value = yaml.safe_load(text)
            except Exception:  # noqa: BLE001 - unparseable metadata: no names
                return {}
    if isinstance(value, Mapping):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return {}
    if isinstance(value, (list, tuple)):
        return {i: str(v) for i, v in enumerate(value)}
    return {}


#: shortest side the rectangular network input keeps for very wide frames (see Detector.rect_size_for)
MIN_SHORT_SIDE = 320

class Detector:
    """Object detector: ``detect(images) -> list[Detections]`` (boxes in original-frame pixels).

    Options (all from :class:`pockit.config.ModelConfig`): imgsz, conf, iou, classes (ids or names),
    max_det, device, batch (max frames per inference call), half, class_names (override), rect.

    ``rect=True`` letterboxes a chunk of same-sized frames to the smallest stride multiple that holds them
    (Ultralytics' rectangular inference: 640x480 frames -> a 480x640 input, not 640x640) on backends that can
    run other input sizes (``supports_rect``: dynamic models, or fixed YOLOv8 ONNX exports rewritten per size);
    mixed sizes in one chunk, and other backends, use the square ``imgsz`` (or the model's fixed size).
    """

    backend = "base"
    supports_rect = False  # backends that can run any stride-multiple input size set this
    MAX_SHAPES = 8  # input sizes of a fixed-input model kept loaded at once (see _fixed_model_variant)

    def __init__(
        self,
        path: str | Path,
        *,
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.45,
        classes: Sequence[int | str] | None = None,
        max_det: int = 300,
        device: str = "cpu",
        batch: int = 1,
        half: bool = False,
        class_names: Mapping[int, str] | None = None,
        agnostic: bool = False,
        layout: str = "auto",
        rect: bool = False,
        min_short_side: int = MIN_SHORT_SIDE,
        requests: int | str = 1,
    ) -> None:
        self.path = Path(path)
        self.rect = bool(rect)
        self.min_short_side = max(0, int(min_short_side))
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_det = int(max_det)
        self.device = str(device)
        self.batch = max(1, int(batch))
        self.half = bool(half)
        self.agnostic = bool(agnostic)
        self.layout = layout
        self._names_override = {int(k): str(v) for k, v in class_names.items()} if class_names else None
        self._classes_arg = list(classes) if classes is not None else None
        self.classes: list[int] | None = None
        # set by backends
        self.model_names: dict[int, str] = {}
        self.model_batch: int | None = None  # fixed batch of the model, None = dynamic
        self.max_model_batch: int | None = None  # upper bound of a dynamic batch (TensorRT profile)
        self.input_hw: tuple[int, int] | None = None  # fixed network input (h, w), None = dynamic
        self.input_dtype = np.float32
        self.stride = 32
        self.providers: list[str] = []
        self.last_timings: dict[str, float] = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        self.input_shapes_used: list[tuple[int, int]] = []  # network input (h, w) sizes run so far
        self._sha256: str | None = None
        self._closed = False
        # frames in flight on a CPU backend (see _resolve_requests): 1 until a backend that can run concurrent
        # calls on one model says otherwise
        self._requests_arg = requests
        self.requests = 1
        self._executor = None
        self._lock = threading.Lock()  # model variants and input_shapes_used, under concurrent requests
        self._tls = threading.local()  # .request: this thread runs a launched call (see in_request)

    # -- set-up helpers for subclasses ------------------------------------------------------
    def _finish_init(self) -> None:
        """Call at the end of a backend's __init__: resolves the class filter against the names; with
        ``requests`` > 1, gives the detector the two-phase ``launch``/``finish`` API the pipeline overlaps."""
        self.classes = self._resolve_classes(self._classes_arg)
        if self.requests > 1:  # instance attributes: the pipeline looks for launch/finish to overlap batches
            self.launch = self._launch_request
            self.finish = self._finish_request
        if self.model_batch is not None and self.batch > self.model_batch:
            log.warning("%s has a fixed batch of %d: batch=%d runs %d frame(s) per inference call; export it with "
                        "a dynamic batch (pockit deploy export MODEL.pt --dynamic) to batch several frames",
                        self.path.name, self.model_batch, self.batch, self.model_batch)

    def _resolve_requests(self, concurrent: bool) -> int:
        """Frames the pipeline keeps in flight on this detector (``model.requests``): ``auto`` = 2 on a CPU
        backend that can run concurrent calls on one loaded model (``concurrent``: ONNX Runtime on its CPU
        provider) when the host has at least 2 physical cores, else 1. One model call does not keep every
        core busy (its parallel sections stop at each of its ~200 operators: a 1-thread run on this project's
        2-core VM was only 1.4-1.5x slower than a 2-thread one); with two frames in flight the cores stay
        busy. The ONNX backend runs the launched calls on sessions of their own with the cores shared out
        (cores // requests threads each). Measured on the 2-core VM, INT8 person model at 480x640: 115-119 ms
        a frame one at a time, ~90 ms with two in flight (benchmarks/README.md, CPU section). ``detect()``
        still runs its frames one call after another on every core, at the same latency; only the
        pipeline's launch/finish overlap uses the extra requests."""
        r = self._requests_arg
        if r in (None, "auto"):
            from .onnx_backend import physical_cores

            return 2 if concurrent and physical_cores() >= 2 else 1
        r = int(r)
        if r > 1 and not concurrent:
            log.info("%s: backend %s runs one frame at a time; model.requests=%d ignored", self.path.name,
                     self.backend, r)
            return 1
        return max(1, r)

    def _launch_request(self, images, pinned: bool = False):
        """Start ``detect(images)`` on one of ``requests`` threads; returns a handle for :meth:`finish`.
        ``pinned`` (page-locked frames) is for the CUDA backends' signature; not used here."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.requests, thread_name_prefix=f"{self.backend}-request")
        return self._executor.submit(self._detect_request, self._as_list(images))

    def _detect_request(self, images: list[np.ndarray]):
        self._tls.request = True  # a request thread: backends may run it on a session of its own
        return self._detect_timed(images)

    def in_request(self) -> bool:
        """Whether the calling thread runs a launched call (one of ``requests`` in flight)."""
        return bool(getattr(self._tls, "request", False))

    def _finish_request(self, handle) -> list[Detections]:
        """Wait for a launched call -> its Detections. ``last_finish_timings``: the call's own preprocess /
        inference / postprocess seconds, and 'wait': how long this finish waited for it."""
        t0 = time.perf_counter()
        results, timings = handle.result()
        self.last_finish_timings = {**timings, "wait": time.perf_counter() - t0}
        return results

    def _resolve_classes(self, classes: Iterable[int | str] | None) -> list[int] | None:
        from ..resolve import resolve_classes

        return resolve_classes(classes, self.class_names, field="model.classes", owner=self.path.name)

    # -- public API ---------------------------------------------------------------------------
    @property
    def class_names(self) -> dict[int, str]:
        return dict(self._names_override) if self._names_override else dict(self.model_names)

    @property
    def nc(self) -> int | None:
        return max(self.model_names) + 1 if self.model_names else None

    @property
    def sha256(self) -> str | None:
        if self._sha256 is None and self.path.is_file():
            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "backend": self.backend,
            "sha256": self.sha256,
            "imgsz": list(self.input_hw) if self.input_hw else [self.imgsz, self.imgsz],  # [h, w]
            "rect": bool(self.rect and self.supports_rect),
            "input_shapes": [list(s) for s in self.input_shapes_used],  # [h, w] sizes actually run
            "providers": list(self.providers),
            "device": self.device,
            "class_names": self.class_names,
            "batch": self.chunk_size,
            "model_batch": self.model_batch if self.model_batch is not None else "dynamic",
            "half": self.half,
            "conf": self.conf,
            "iou": self.iou,
            "classes": self.classes,
            "max_det": self.max_det,
        }

    @property
    def chunk_size(self) -> int:
        """Frames per inference call: the model's fixed batch, or ``batch`` capped by its profile."""
        if self.model_batch is not None:
            return self.model_batch
        if self.max_model_batch is not None:
            return max(1, min(self.batch, self.max_model_batch))
        return self.batch

    def detect(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Detections]:
        """Detect objects in BGR uint8 frames; one :class:`Detections` per frame, in order."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        results, self.last_timings = self._detect_timed(self._as_list(images))
        return results

    def _detect_timed(self, images: list[np.ndarray]) -> tuple[list[Detections], dict[str, float]]:
        """``detect`` with its per-stage seconds returned, not stored (concurrent requests each have theirs)."""
        timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        results: list[Detections] = []
        n = self.chunk_size
        for start in range(0, len(images), n):
            results.extend(self._detect_chunk(images[start:start + n], timings))
        return results, timings

    def _detect_chunk(self, chunk: list[np.ndarray], timings: dict[str, float]) -> list[Detections]:
        t0 = time.perf_counter()
        with self._lock:  # a new size may build and load a model variant: once, not by two requests at once
            hw = self.input_size_for([im.shape[:2] for im in chunk])
            if hw not in self.input_shapes_used:
                self.input_shapes_used.append(hw)
        x, infos = preprocess_batch(chunk, hw, self.stride, auto=False, dtype=self.input_dtype)
        if self.model_batch is not None and len(chunk) < self.model_batch:  # fixed-batch model: pad
            pad = np.zeros((self.model_batch - len(chunk), *x.shape[1:]), x.dtype)
            x = np.concatenate([x, pad])
        t1 = time.perf_counter()
        raw = self._forward(x)
        t2 = time.perf_counter()
        dets = decode(raw, conf=self.conf, iou=self.iou, classes=self.classes, max_det=self.max_det,
                      nc=self.nc, agnostic=self.agnostic, layout=self.layout)[: len(chunk)]
        out = to_detections(dets, infos, self.class_names)
        t3 = time.perf_counter()
        timings["preprocess"] += t1 - t0
        timings["inference"] += t2 - t1
        timings["postprocess"] += t3 - t2
        return out

    def input_size_for(self, shapes: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """Network input (h, w) for a chunk of frames of these (h, w) shapes (see ``rect`` in the class doc)."""
        square = self.input_hw if self.input_hw else (self.imgsz, self.imgsz)
        if not (self.rect and self.supports_rect):
            return tuple(square)
        return target_shape([tuple(s) for s in shapes], self.rect_size_for(shapes, max(square)), self.stride,
                            auto=True)

    def _apply_metadata(self, meta: Mapping[str, str]) -> None:
        """Class names and stride from an exported model's metadata (Ultralytics writes both)."""
        self.metadata = dict(meta)
        self.model_names = parse_names(meta.get("names"))
        if "stride" in meta:
            try:
                self.stride = int(float(meta["stride"]))
            except ValueError:
                pass

    def _fixed_model_variant(self, hw: tuple[int, int], variants: dict, load) -> tuple[int, int]:
        """For backends that run a fixed-input YOLOv8 ONNX at other sizes: the rewritten model for input ``hw``
        (:func:`pockit.inference.rectangular.rectangular_model`, built once and cached), loaded with
        ``load(path)`` into ``variants`` (at most ``MAX_SHAPES``, the oldest dropped, never the model's own
        size). Any rewrite/load failure falls back to the fixed size, said once."""
        if self.input_hw is None or hw == self.input_hw or hw in variants:
            return hw
        from .rectangular import rectangular_model

        try:
            if len(variants) >= self.MAX_SHAPES:
                variants.pop(next(k for k in variants if k != self.input_hw))
            variants[hw] = load(rectangular_model(self.path, hw, self.sha256))
        except Exception as e:  # noqa: BLE001 - any rewrite/load failure falls back to the fixed size
            log.warning("%s: cannot run it at %dx%d (h x w) (%s); using its fixed %dx%d input",
                        self.path.name, hw[0], hw[1], e, *self.input_hw)
            self.supports_rect = False
            return self.input_hw
        return hw

    def rect_size_for(self, shapes: Sequence[tuple[int, int]], imgsz: int) -> int:
        """The longest side of the network input for these frames: ``imgsz``, raised for very wide frames so
        that their short side keeps at least ``min_short_side`` pixels (``model.min_short_side``, default
        ``MIN_SHORT_SIDE``; or its native size, if smaller): a 1224x370 street view letterboxed to 640 wide
        would leave people 25-40 px tall. Derived from the footage, the same rule for every camera; 4:3 and
        16:9 frames are not affected. 0 turns it off."""
        if len(set(map(tuple, shapes))) != 1:
            return imgsz
        h, w = shapes[0]
        short = min(h, w) * imgsz / max(h, w)
        want = min(self.min_short_side, min(h, w))
        if short >= want:
            return imgsz
        size = imgsz * want / short
        return int(-(-size // self.stride) * self.stride)  # up to a stride multiple

    @staticmethod
    def _as_list(images) -> list[np.ndarray]:
        if isinstance(images, np.ndarray):
            if images.ndim == 3:
                return [images]
            if images.ndim == 4:
                return list(images)
            raise ValueError(f"detect() expects a list of HxWx3 images, got an array of shape {images.shape}")
        images = list(images)
        for i, im in enumerate(images):
            if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(
                    f"detect(): image {i} is {type(im).__name__} with shape {getattr(im, 'shape', None)}; "
                    "expected an HxWx3 uint8 BGR array (cv2.imread / a Frame's .image)"
                )
        return images

    def warmup(self, n: int = 1) -> None:
        """Run ``n`` inferences on a blank frame (first-call allocation, CUDA kernels, ...)."""
        h, w = self.input_hw if self.input_hw else (self.imgsz, self.imgsz)
        blank = np.full((h, w, 3), 114, np.uint8)
        for _ in range(max(1, n)):
            self.detect([blank] * self.chunk_size)

    def _forward(self, batch: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, classes={self.class_names}, batch={self.chunk_size})"
