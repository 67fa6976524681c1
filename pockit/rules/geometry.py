"""Vectorized geometry for the rules: point-in-polygon, side of a polyline, segment crossing.

All functions take (N, 2) float arrays of points and work on every point in one numpy call.
Polygons are closed: a point on an edge or a vertex counts as inside.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def is_normalized(points: Sequence[Sequence[float]], flag: bool | None) -> bool:
    """How a rule's coordinates are read (the rule, checked by :func:`geometry_problem` when a config loads):

    * ``normalized: true``: fractions of the frame width/height; every coordinate must lie in [0, 1];
    * ``normalized: false``: pixels of the source frame;
    * ``normalized`` omitted: normalized when every coordinate lies in [0, 1], else pixels. Pixels read
      this way may not mix in fractions strictly between 0 and 1 (``[[0.2, 0.3], [1.2, 0.9], ...]`` is a
      normalized zone with a typo, not a 1-pixel zone): such a rule is refused.

    Geometry read as pixels must span at least :data:`MIN_PIXELS` (a zone across and down, each line
    or fence segment in length): anything smaller cannot hold a detection's anchor point."""
    if flag is not None:
        return bool(flag)
    arr = np.asarray(points, np.float64)
    return bool(arr.size and np.all((arr >= 0) & (arr <= 1)))


MIN_PIXELS = 2.0
_EPS = 1e-12


def _orient(a, b, c, tol: float) -> int:
    o = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return 0 if abs(o) <= tol else (1 if o > 0 else -1)


def _on_segment(a, b, p) -> bool:  # p collinear with a-b: within the segment's box
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_touch(a, b, c, d, tol: float = 0.0) -> bool:
    """Do the closed segments a-b and c-d share a point (crossing or touching)?"""
    o1, o2, o3, o4 = _orient(a, b, c, tol), _orient(a, b, d, tol), _orient(c, d, a, tol), _orient(c, d, b, tol)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True
    return ((o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d))
            or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b)))


def polygon_problem(points: Sequence[Sequence[float]], field: str = "zone") -> str | None:
    """Why the closed polygon cannot work as a zone (None when it can): fewer than 3 distinct points,
    all points on one line (zero area), or edges that cross or touch (self-intersecting, bow-tie, spike).
    A point repeated right after itself (or a last point repeating the first) is allowed."""
    pts = [(float(x), float(y)) for x, y in points]
    if len(set(pts)) < 3:
        return f"{field} needs at least 3 distinct points, it has {len(set(pts))}"
    idx = [i for i in range(len(pts)) if pts[i] != pts[i - 1]] or [0]  # drop repeats (cyclically)
    ring = [pts[i] for i in idx]
    arr = np.asarray(ring)
    scale = max(float(np.ptp(arr[:, 0])), float(np.ptp(arr[:, 1])), 1e-300)
    tol = _EPS * scale * scale
    a = ring[0]
    b = next(p for p in ring if p != a)
    if all(_orient(a, b, c, tol) == 0 for c in ring):
        return f"{field} has zero area: all its points lie on one line"
    m = len(ring)
    for i in range(m):
        p1, p2 = ring[i], ring[(i + 1) % m]
        for j in range(i + 1, m):
            q1, q2 = ring[j], ring[(j + 1) % m]
            name_i = f"{field}[{idx[i]}]->{field}[{idx[(i + 1) % m]}]"
            name_j = f"{field}[{idx[j]}]->{field}[{idx[(j + 1) % m]}]"
            if j == i + 1 or (i == 0 and j == m - 1):  # adjacent edges share one vertex
                v, x, y = (p2, p1, q2) if j == i + 1 else (p1, p2, q1)
                if _orient(x, v, y, tol) == 0 and (x[0] - v[0]) * (y[0] - v[0]) + (x[1] - v[1]) * (y[1] - v[1]) > 0:
                    return (f"{field} folds back on itself: edges {name_i} and {name_j} overlap "
                            "(a self-intersecting polygon)")
            elif segments_touch(p1, p2, q1, q2, tol):
                return (f"{field} is self-intersecting: edge {name_i} crosses or touches edge {name_j}; "
                        "list the corners in order around the area")
    return None


def polyline_problem(points: Sequence[Sequence[float]], field: str = "line") -> str | None:
    """Why a counting line / fence cannot work (None when it can): fewer than 2 points or a zero-length segment."""
    pts = [(float(x), float(y)) for x, y in points]
    if len(pts) < 2:
        return f"{field} needs at least 2 points"
    for i in range(len(pts) - 1):
        if pts[i] == pts[i + 1]:
            return f"{field} has a zero-length segment: {field}[{i}] and {field}[{i + 1}] are the same point {list(pts[i])}"
    return None


def coordinates_problem(points: Sequence[Sequence[float]], flag: bool | None, kind: str,
                        field: str = "zone") -> str | None:
    """Why the coordinates cannot be read as the rule says (see :func:`is_normalized`); None when they can.
    ``kind``: "polygon" (span checked across and down), "polyline" (each segment's length) or "box"."""
    arr = np.asarray(points, np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(arr)):
        return f"{field} has a coordinate that is not a finite number"
    if flag is True:
        bad = np.argwhere((arr < 0) | (arr > 1))
        if len(bad):
            i = int(bad[0][0])
            return (f"{field}[{i}] = {arr[i].tolist()} is outside [0, 1] but the rule says normalized: true "
                    "(normalized coordinates are fractions of the frame width and height; for pixels set "
                    "normalized: false)")
        return None
    if is_normalized(arr, flag):
        return None
    if flag is None:
        frac = np.argwhere((arr > 0) & (arr < 1))
        if len(frac):
            big = float(arr.max())
            i = int(frac[0][0])
            return (f"mixes fractions and pixels: {field}[{i}] = {arr[i].tolist()} has a coordinate between 0 and 1 "
                    f"while another is {big:g} > 1; normalized coordinates must all lie within [0, 1], "
                    "pixel coordinates need normalized: false")
    how = "normalized: false" if flag is False else "a coordinate exceeds 1"
    if kind == "polygon" or kind == "box":
        w, h = float(np.ptp(arr[:, 0])), float(np.ptp(arr[:, 1]))
        if w < MIN_PIXELS or h < MIN_PIXELS:
            return (f"{field} spans only {w:g} x {h:g} px (read as pixels: {how}); a zone must span at least "
                    f"{MIN_PIXELS:g} px across and down (normalized coordinates must all lie within [0, 1])")
    else:
        seg = np.hypot(*np.diff(arr, axis=0).T)
        if len(seg) and float(seg.min()) < MIN_PIXELS:
            i = int(seg.argmin())
            return (f"{field}[{i}]->{field}[{i + 1}] is only {float(seg[i]):g} px long (read as pixels: {how}); "
                    f"a segment must be at least {MIN_PIXELS:g} px (normalized coordinates must all lie within [0, 1])")
    return None


def geometry_problem(field: str, value, flag: bool | None) -> str | None:
    """The one check of a rule's geometry field (``zone``, ``line``, ``fence``, ``region``): coordinates
    as the ``normalized`` flag reads them, then the shape. None when the rule can work."""
    if value is None:
        return None
    if field == "region":
        x1, y1, x2, y2 = (float(v) for v in value)
        pts = [[x1, y1], [x2, y2]]
        if not np.all(np.isfinite(pts)):
            return f"{field} has a coordinate that is not a finite number"
        if not (x2 > x1 and y2 > y1):
            return f"region must be x1, y1, x2, y2 with x2 > x1 and y2 > y1, got {[x1, y1, x2, y2]}"
        return coordinates_problem(pts, flag, "box", field)
    if not np.all(np.isfinite(np.asarray(value, np.float64))):
        return f"{field} has a coordinate that is not a finite number"
    if field == "zone":
        return polygon_problem(value, field) or coordinates_problem(value, flag, "polygon", field)
    return polyline_problem(value, field) or coordinates_problem(value, flag, "polyline", field)


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
