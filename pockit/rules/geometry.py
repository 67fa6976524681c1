"""Vectorized geometry for the rules: point-in-polygon, side of a polyline, segment crossing.

All functions take (N, 2) float arrays of points and work on every point in one numpy call.
Polygons are closed: a point on an edge or a vertex counts as inside.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def is_normalized(points: Sequence[Sequence[float]], flag: bool | None) -> bool:
    """The rule's ``normalized`` flag, or auto-detect: every coordinate within [0, 1]."""
    if flag is not None:
        return bool(flag)
    arr = np.asarray(points, np.float64)
    return bool(arr.size and np.all((arr >= 0) & (arr <= 1)))


def to_pixels(points, normalized: bool, frame_size: tuple[int, int] | None, what: str = "geometry") -> np.ndarray:
    """(K, 2) float64 pixel coordinates; normalized points are scaled by (width, height)."""
    arr = np.asarray(points, np.float64).reshape(-1, 2)
    if not normalized:
        return arr.copy()
    if frame_size is None:
        raise ValueError(f"{what} uses normalized [0, 1] coordinates but the frame size is unknown: "
                         "give RuleEngine(frame_size=(w, h)), pass frames, or use --size in replay")
    w, h = frame_size
    return arr * np.array([w, h], np.float64)


def points_in_polygon(pts: np.ndarray, poly: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """(N,) bool: inside or on the boundary of the closed polygon ``poly`` (K, 2). Crossing-number test."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, bool)
    x, y = pts[:, 0:1], pts[:, 1:2]
    a = poly
    b = np.roll(poly, -1, axis=0)
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    # crossing number (half-open rule on y so vertices are counted once)
    cond = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = ax + (y - ay) * (bx - ax) / (by - ay)
    inside = (np.count_nonzero(cond & (x < xint), axis=1) % 2) == 1
    # boundary: distance to an edge ~ 0
    ex, ey = bx - ax, by - ay
    cross = ex * (y - ay) - ey * (x - ax)
    dot = (x - ax) * ex + (y - ay) * ey
    l2 = ex * ex + ey * ey
    scale = max(1.0, float(np.abs(poly).max()))
    on = (np.abs(cross) <= eps * scale * np.sqrt(l2)) & (dot >= -eps * scale) & (dot <= l2 + eps * scale)
    return inside | on.any(axis=1)


def polyline_side(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) int8 side of each point w.r.t. the directed polyline ``line`` (K >= 2 points).

    For a single segment A->B: sign(cross(B - A, p - A)) (+1, -1, or 0 on the infinite line).
    For a polyline, the side w.r.t. the nearest segment (the first one on ties).
    """
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    a, b = line[:-1], line[1:]
    d = b - a  # (S, 2)
    rel = pts[:, None, :] - a[None]  # (N, S, 2)
    cross = d[None, :, 0] * rel[..., 1] - d[None, :, 1] * rel[..., 0]
    if len(a) == 1:
        return np.sign(cross[:, 0]).astype(np.int8)
    l2 = (d * d).sum(1)
    t = np.clip((rel * d[None]).sum(-1) / np.where(l2 > 0, l2, 1), 0, 1)
    near = a[None] + t[..., None] * d[None]
    dist = ((pts[:, None, :] - near) ** 2).sum(-1)
    k = dist.argmin(1)
    return np.sign(cross[np.arange(len(pts)), k]).astype(np.int8)


def crosses_polyline(p: Sequence[float], q: Sequence[float], line: np.ndarray) -> bool:
    """Does the movement segment p->q touch or cross any segment of the polyline (closed segments)?"""
    px, py = float(p[0]), float(p[1])
    qx, qy = float(q[0]), float(q[1])
    dx, dy = qx - px, qy - py
    for i in range(len(line) - 1):
        ax, ay = line[i]
        bx, by = line[i + 1]
        ex, ey = bx - ax, by - ay
        d1 = ex * (py - ay) - ey * (px - ax)  # side of p w.r.t. AB
        d2 = ex * (qy - ay) - ey * (qx - ax)
        d3 = dx * (ay - py) - dy * (ax - px)  # side of A w.r.t. PQ
        d4 = dx * (by - py) - dy * (bx - px)
        if d1 * d2 <= 0 and d3 * d4 <= 0:
            if d1 == 0 and d2 == 0:  # collinear: overlap of projections
                if dx == 0 and dy == 0:
                    t = ((px - ax) * ex + (py - ay) * ey) / max(ex * ex + ey * ey, 1e-12)
                    if 0 <= t <= 1:
                        return True
                    continue
                ts = sorted((((ax - px) * dx + (ay - py) * dy), ((bx - px) * dx + (by - py) * dy)))
                if ts[1] >= 0 and ts[0] <= dx * dx + dy * dy:
                    return True
                continue
            return True
    return False


def polygon_bbox_distance(boxes: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance from ``point`` (2,) to each xyxy box (0 inside the box)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    dx = np.maximum(np.maximum(boxes[:, 0] - point[0], 0), point[0] - boxes[:, 2])
    dy = np.maximum(np.maximum(boxes[:, 1] - point[1], 0), point[1] - boxes[:, 3])
    return np.hypot(dx, dy)
