"""Face alignment and image-quality measures shared by the face backend and enrolment.

``align_face`` maps the five YuNet landmarks (right eye, left eye, nose tip, right and left mouth corner, in
image pixels) onto SFace's 112x112 template with a least-squares similarity transform (Umeyama), the same
template and estimate as OpenCV's ``FaceRecognizerSF.alignCrop`` (tests/test_faces_backend.py compares them).
"""
from __future__ import annotations

import cv2
import numpy as np

#: where the five landmarks land on the 112x112 crop SFace was trained on (OpenCV face_recognize.cpp)
TEMPLATE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], np.float64)
CROP = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the similarity transform (rotation, uniform scale, translation) that maps the points
    ``src`` onto ``dst`` in the least-squares sense (Umeyama 1991)."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
    rot = u @ np.diag(d) @ vt
    var = (sc ** 2).sum() / len(src)
    scale = float((s * d).sum() / var) if var > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 BGR face crop SFace expects, from a frame and the face's 10 landmark coordinates."""
    m = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2), TEMPLATE_112)
    return cv2.warpAffine(image, m, (CROP, CROP), flags=cv2.INTER_LINEAR)


def native_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The aligned face at (at most) its own resolution: the 112x112 template shrunk so the frame is never
    upsampled (a 40 px face gives a ~40x40 crop, a 300 px face a 112x112 one)."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    m = similarity_transform(lm, TEMPLATE_112)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop pixels per frame pixel
    size = round(CROP * min(1.0, 1.0 / scale)) if scale > 0 else CROP
    size = max(16, size)
    m = similarity_transform(lm, TEMPLATE_112 * size / CROP)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA)


def sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Focus measure of one face: variance of the Laplacian of the grey aligned face at its own resolution
    (:func:`native_crop`, central three quarters). Upsampling would make every small face look blurred, so the
    face size is judged separately (``min_size``). Measured: sharp faces of the shared GIF clips 38-198, the same
    faces after a Gaussian blur of sigma 1 px 11-25, sigma 2 px 5-11."""
    crop = native_crop(image, landmarks)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    k = max(1, grey.shape[0] // 8)
    return float(cv2.Laplacian(grey[k:-k, k:-k].astype(np.float64), cv2.CV_64F).var())


def face_size(xyxy: np.ndarray) -> np.ndarray:
    """Shorter side of each face box in pixels, (N,) float32."""
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def frontal(landmarks: np.ndarray) -> np.ndarray:
    """How frontal each face is, (N,) in [0, 1]: 1 when the nose tip is midway between the eyes, falling to 0
    when it is level with one eye (a profile). From (N, 10) landmarks."""
    lm = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    re, le, nose = lm[:, 0], lm[:, 1], lm[:, 2]
    eye_vec = le - re
    dist = np.linalg.norm(eye_vec, axis=1)
    safe = np.where(dist > 0, dist, 1.0)
    t = ((nose - re) * eye_vec).sum(1) / (safe ** 2)  # nose position along the eye axis, 0.5 = centred
    return np.where(dist > 0, np.clip(1.0 - 2.0 * np.abs(t - 0.5), 0.0, 1.0), 0.0).astype(np.float32)
