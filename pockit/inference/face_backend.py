"""Face detection and recognition: YuNet finds faces (box, five landmarks, score), SFace turns each aligned face
into a 128-d embedding.

``model: {path: face-yunet}`` (the backend is picked from the registry entry; ``backend: face`` for a YuNet file
of your own). One class, ``face``; per detection ``data["embedding"]`` (N,128) float32, L2-normalised (cosine
similarity = dot product), ``data["landmarks"]`` (N,10) float32 (right eye, left eye, nose tip, right and left
mouth corner as x,y in frame pixels) and ``data["quality"]`` (N,) float32 in [0, 1] (see
:func:`pockit.faces.quality.quality_score`), which the face rules use to keep a track's best views.

Runs on OpenCV DNN (``cv2.FaceDetectorYN`` + ``cv2.dnn.readNetFromONNX``), not ONNX Runtime: measured on this
2-core CPU with the int8 block-quantized files as shipped, SFace took 15.5 ms per face on OpenCV DNN against
119 ms on ONNX Runtime 1.32 (39-69 ms after dequantizing the weights to float), the same embeddings to 3e-6.
OpenCV 5.1's ``FaceRecognizerSF.feature`` fails on this file (it sets the input by an empty name); the network is
run directly with ``setInput(blob, "data")``.

Frames longer than ``imgsz`` pixels are downscaled for detection only; landmarks are mapped back and the face
crop is taken from the full-resolution frame. ``conf`` is YuNet's score threshold, ``iou`` its NMS overlap.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.detections import Detections
from ..faces.align import align_face
from ..faces.quality import measure_faces
from .base import Detector

log = logging.getLogger(__name__)

EMBED_DIM = 128
SFACE_BATCH = 32  # aligned faces per SFace call
#: frame rotations (degrees) YuNet runs at, for tilted heads; see FaceDetector._find
ROLL_ANGLES = (-30.0, 0.0, 30.0)
#: two detections (of different orientations) are one face when their centres are closer than this x its size
SAME_FACE = 0.75


class FaceDetector(Detector):
    """YuNet + SFace on OpenCV DNN; see the module docstring."""

    backend = "face"

    def __init__(self, path: str | Path, *, embedder: str | Path = "face-sface",
                 roll_angles: Sequence[float] = ROLL_ANGLES, **kw: Any) -> None:
        kw.pop("rect", None)
        super().__init__(path, **kw)
        self.roll_angles = tuple(float(a) for a in roll_angles) or (0.0,)
        from ..registry import resolve_model, sha256_file

        self.embedder_path = Path(resolve_model(str(embedder)))
        self._embedder_sha = sha256_file(self.embedder_path)
        if str(self.device).lower() not in ("cpu", ""):
            log.warning("model.backend face runs on the CPU (OpenCV DNN); device %r is not used", self.device)
        try:
            self._yunet = cv2.FaceDetectorYN.create(str(self.path), "", (320, 320), self.conf, self.iou, 5000)
        except cv2.error as e:
            raise ValueError(f"{self.path}: not a YuNet face detector OpenCV can load ({e})") from e
        try:
            self._sface = cv2.dnn.readNetFromONNX(str(self.embedder_path))
        except cv2.error as e:
            raise ValueError(f"{self.embedder_path}: not an SFace recognizer OpenCV can load ({e})") from e
        self._yunet_size: tuple[int, int] | None = None
        self.model_names = {0: "face"}
        self.providers = ["OpenCV DNN (CPU)"]
        self._finish_init()

    @property
    def info(self) -> dict[str, Any]:
        out = super().info
        out["embedder"] = {"path": str(self.embedder_path), "sha256": self._embedder_sha, "dim": EMBED_DIM}
        out["imgsz"] = [self.imgsz, self.imgsz]
        return out

    # -- detection ------------------------------------------------------------------------------
    def _yunet_rows(self, work: np.ndarray) -> np.ndarray:
        """YuNet's raw rows (x, y, w, h, 10 landmark coordinates, score) on one detection-size image."""
        size = (work.shape[1], work.shape[0])
        if size != self._yunet_size:
            self._yunet.setInputSize(size)
            self._yunet_size = size
        _, raw = self._yunet.detect(np.ascontiguousarray(work))
        if raw is None or len(raw) == 0:
            return np.zeros((0, 15), np.float32)
        raw = np.asarray(raw, np.float32).reshape(-1, 15)
        return raw[(raw[:, 2] > 1) & (raw[:, 3] > 1)]

    def _find(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (xyxy), landmarks (N,10) and scores of the faces in one BGR frame, in frame pixels.

        With ``roll_angles`` other than (0,), YuNet also runs on the frame rotated by each angle: a tilted head
        is found upright there, with landmarks on the eyes (YuNet places them as if upright on a tilted face,
        and the misaligned crop loses the identity). Each face keeps the orientation with the highest score;
        its landmarks are rotated back, its box is the upright box of the same size around the same centre."""
        h, w = image.shape[:2]
        scale = min(1.0, self.imgsz / max(h, w))
        work = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        wh, ww = work.shape[:2]
        cands = []
        for ang in self.roll_angles:
            if ang == 0:
                raw = self._yunet_rows(work)
            else:
                m = cv2.getRotationMatrix2D((ww / 2, wh / 2), float(ang), 1.0)
                raw = self._yunet_rows(cv2.warpAffine(work, m, (ww, wh), borderMode=cv2.BORDER_REPLICATE))
                if len(raw):
                    inv = cv2.invertAffineTransform(m)
                    pts = raw[:, 4:14].reshape(-1, 5, 2) @ inv[:, :2].T + inv[:, 2]
                    ctr = (raw[:, :2] + raw[:, 2:4] / 2) @ inv[:, :2].T + inv[:, 2]
                    raw = raw.copy()
                    raw[:, 4:14] = pts.reshape(-1, 10)
                    raw[:, :2] = ctr - raw[:, 2:4] / 2
            cands.append(raw)
        raw = np.concatenate(cands) if cands else np.zeros((0, 15), np.float32)
        raw = raw[np.argsort(-raw[:, 14], kind="stable")]
        if len(self.roll_angles) > 1 and len(raw) > 1:  # one face, several orientations: the best score wins
            keep: list[int] = []
            ctr = raw[:, :2] + raw[:, 2:4] / 2
            for i in range(len(raw)):
                if not any(np.hypot(*(ctr[i] - ctr[k])) < SAME_FACE * raw[k, 2:4].max() for k in keep):
                    keep.append(i)
            raw = raw[keep]
        raw = raw[: self.max_det] / np.array([scale] * 14 + [1.0], np.float32)
        xyxy = np.concatenate([raw[:, :2], raw[:, :2] + raw[:, 2:4]], axis=1)
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
        return xyxy, raw[:, 4:14].copy(), raw[:, 14].copy()

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N,128) float32 L2-normalised SFace embeddings of aligned 112x112 BGR crops."""
        if len(crops) == 0:
            return np.zeros((0, EMBED_DIM), np.float32)
        out = []
        for start in range(0, len(crops), SFACE_BATCH):
            blob = cv2.dnn.blobFromImages(list(crops[start:start + SFACE_BATCH]), 1.0, (112, 112), (0, 0, 0),
                                          swapRB=True, crop=False)
            self._sface.setInput(blob, "data")
            out.append(np.asarray(self._sface.forward(), np.float32).reshape(len(blob), -1))
        emb = np.concatenate(out)
        norm = np.linalg.norm(emb, axis=1, keepdims=True)
        return (emb / np.where(norm > 0, norm, 1.0)).astype(np.float32)

    def detect(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Detections]:
        """Faces in BGR frames; one :class:`Detections` per frame, with embeddings, landmarks and quality."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        images = self._as_list(images)
        t0 = time.perf_counter()
        found = [self._find(im) for im in images]
        t1 = time.perf_counter()
        crops, owner = [], []
        for i, (im, (_, lms, _)) in enumerate(zip(images, found)):
            for lm in lms:
                crops.append(align_face(im, lm))
                owner.append(i)
        t2 = time.perf_counter()
        emb = self.embed(crops)
        t3 = time.perf_counter()
        owner_arr = np.asarray(owner, np.int64)
        results = []
        keep_all = self.classes is None or 0 in self.classes
        for i, (xyxy, lms, scores) in enumerate(found):
            sel = np.flatnonzero(owner_arr == i)
            q = measure_faces(images[i], xyxy, lms, scores)
            det = Detections(xyxy=xyxy, scores=scores, class_ids=np.zeros(len(xyxy), np.int32),
                             class_names=self.class_names,
                             data={"embedding": emb[sel].reshape(-1, EMBED_DIM), "landmarks": lms.reshape(-1, 10),
                                   "quality": q})
            results.append(det if keep_all else det[np.zeros(len(det), bool)])
        t4 = time.perf_counter()
        self.last_timings = {"preprocess": t2 - t1, "inference": (t1 - t0) + (t3 - t2), "postprocess": t4 - t3}
        return results

    def warmup(self, n: int = 1) -> None:
        blank = np.full((self.imgsz * 9 // 16, self.imgsz, 3), 114, np.uint8)
        for _ in range(max(1, n)):
            self.detect([blank])
            self.embed([np.full((112, 112, 3), 114, np.uint8)])
