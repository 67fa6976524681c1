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


class Polygon:
    """A closed polygon with its edge arrays precomputed; ``contains(pts)`` is :func:`points_in_polygon`."""

    def __init__(self, poly, eps: float = 1e-9) -> None:
        self.poly = np.asarray(poly, np.float64).reshape(-1, 2)
        a, b = self.poly, np.roll(self.poly, -1, axis=0)
        self.ax, self.ay, self.bx, self.by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
        self.ex, self.ey = self.bx - self.ax, self.by - self.ay
        with np.errstate(divide="ignore", invalid="ignore"):
            self.slope = np.where(self.ey != 0, self.ex / np.where(self.ey != 0, self.ey, 1), 0.0)
        self.l2 = self.ex * self.ex + self.ey * self.ey
        scale = max(1.0, float(np.abs(self.poly).max()))
        self.tol_cross = eps * scale * np.sqrt(self.l2)
        self.tol_dot = eps * scale
        self.lo, self.hi = self.poly.min(0), self.poly.max(0)

    def contains(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros(0, bool)
        x, y = pts[:, 0:1], pts[:, 1:2]
        dy = y - self.ay
        dx = x - self.ax
        cond = (self.ay > y) != (self.by > y)  # half-open rule on y: vertices counted once
        inside = (np.count_nonzero(cond & (x < self.ax + dy * self.slope), axis=1) & 1).astype(bool)
        cross = self.ex * dy - self.ey * dx
        dot = dx * self.ex + dy * self.ey
        on = (np.abs(cross) <= self.tol_cross) & (dot >= -self.tol_dot) & (dot <= self.l2 + self.tol_dot)
        return inside | on.any(axis=1)


def points_in_polygon(pts: np.ndarray, poly) -> np.ndarray:
    """(N,) bool: inside or on the boundary of the closed polygon ``poly`` (K, 2). Crossing-number test."""
    return (poly if isinstance(poly, Polygon) else Polygon(poly)).contains(pts)


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
