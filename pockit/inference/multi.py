"""Several models in one PoC: the main detector plus ``extra_models`` run on the same frames.

:class:`MultiDetector` is itself a detector (``detect(images, sources=None) -> list[Detections]``), so the
pipeline, the bench and the notebooks need no second path. What it returns per image:

- the main model's detections with their own class ids and names;
- extra model *i* (0-based): class ids offset by ``1000 * (i + 1)``; names kept unless an earlier model already
  has that name, then ``"<extra name>.<class>"`` (e.g. ``coco.person``);
- an extra model with ``attach_to``: each detection whose box centre lies inside a box of those main-model
  classes (the *host*) becomes an attribute of the host that covers most of it (ties: the smaller host), at
  most one per host and model (the highest score). The host gets per-box arrays ``data["<name>"]`` (class name,
  "" when none), ``data["<name>.score"]`` (NaN when none), ``data["<name>.xyxy"]`` and ``data["<name>.<key>"]``
  for each per-box array the extra model produces (e.g. ``face.embedding``). A detection inside no host stays
  an object of its own, with the same ``<name>.*`` arrays describing itself, so close-ups are not lost;
- per-box arrays of a model without ``attach_to`` are kept as ``data["<name>.<key>"]``.

Every output carries every key (filled with NaN / "" where it does not apply), so detections of several
frames and streams merge and track without losing attributes.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.detections import Detections
from ..resolve import resolve_classes

OFFSET = 1000


def _fill(n: int, like: np.ndarray) -> np.ndarray:
    """An (n, *tail) array of 'nothing' of the same kind as ``like``: NaN for numbers, "" for anything else."""
    tail = like.shape[1:]
    if like.dtype.kind in "fiub":
        return np.full((n, *tail), np.nan, np.float32)
    return np.full((n, *tail), "", dtype=object)


def _as_column(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) if values.dtype.kind in "fiub" else values.astype(object)


class _Extra:
    def __init__(self, index: int, cfg: Any, detector: Any, taken: set[str], main_names: Mapping[int, str]) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.detector = detector
        self.offset = OFFSET * (index + 1)
        self.sources = set(cfg.sources) if cfg.sources else None
        self.names = {}
        for cid, cname in dict(detector.class_names).items():
            self.names[self.offset + int(cid)] = f"{self.name}.{cname}" if cname in taken else str(cname)
        self.hosts = (set(resolve_classes(cfg.attach_to, main_names, field=f"extra_models[{index}].attach_to",
                                          owner="the main model")) if cfg.attach_to else None)

    def runs_on(self, source: str | None) -> bool:
        return self.sources is None or source is None or source in self.sources


def attach(hosts_xyxy: np.ndarray, hosts_ok: np.ndarray, parts: Detections) -> np.ndarray:
    """For each detection of ``parts``, the index of the host box it belongs to, or -1.

    A part belongs to a host (``hosts_ok`` True) whose box contains the part's centre; among those, the one that
    covers the largest fraction of the part (ties: the smaller host). Each host keeps one part, the highest score;
    a part that loses that contest is -2 (inside a host, dropped)."""
    n = len(parts)
    owner = np.full(n, -1, np.int64)
    if n == 0 or not hosts_ok.any():
        return owner
    h = hosts_xyxy.astype(np.float64)
    p = parts.xyxy.astype(np.float64)
    cx, cy = (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2
    inside = ((cx[:, None] >= h[None, :, 0]) & (cx[:, None] <= h[None, :, 2])
              & (cy[:, None] >= h[None, :, 1]) & (cy[:, None] <= h[None, :, 3]) & hosts_ok[None, :])
    tl = np.maximum(p[:, None, :2], h[None, :, :2])
    br = np.minimum(p[:, None, 2:], h[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    part_area = np.maximum(np.prod(np.clip(p[:, 2:] - p[:, :2], 0, None), axis=1), 1e-9)
    host_area = np.prod(np.clip(h[:, 2:] - h[:, :2], 0, None), axis=1)
    cover = np.where(inside, inter / part_area[:, None], -1.0)
    for i in range(n):
        if not inside[i].any():
            continue
        best = cover[i].max()
        cands = np.flatnonzero(inside[i] & (cover[i] >= best - 1e-9))
        owner[i] = int(cands[np.argmin(host_area[cands])])
    # one part per host: the highest score
    for host in set(owner[owner >= 0].tolist()):
        idx = np.flatnonzero(owner == host)
        if len(idx) > 1:
            keep = idx[np.argmax(parts.scores[idx])]
            owner[idx[idx != keep]] = -2
    return owner


class MultiDetector:
    """The main detector plus extra models; see the module docstring for what the detections look like."""

    def __init__(self, main: Any, extras: Sequence[tuple[Any, Any]]) -> None:
        self.main = main
        names = dict(main.class_names)
        taken = {str(v) for v in names.values()}
        self.extras: list[_Extra] = []
        for i, (cfg, det) in enumerate(extras):
            ex = _Extra(i, cfg, det, taken, dict(main.class_names))
            names.update(ex.names)
            taken.update(str(n) for n in ex.names.values())
            self.extras.append(ex)
        self._names = names
        self._protos: dict[str, np.ndarray] = {}  # every data key seen so far, so every output carries it
        self.last_timings: dict[str, float] = {}
        self.is_cuda = bool(getattr(main, "is_cuda", False))
        self.batch = getattr(main, "batch", 1)
        self.chunk_size = getattr(main, "chunk_size", None)

    @property
    def class_names(self) -> dict[int, str]:
        return dict(self._names)

    @property
    def info(self) -> dict[str, Any]:
        out = dict(getattr(self.main, "info", {}) or {})
        out["extra_models"] = {
            ex.name: {**dict(getattr(ex.detector, "info", {}) or {}),
                      "attach_to": sorted(self.main.class_names.get(c, str(c)) for c in ex.hosts) if ex.hosts else None,
                      "sources": sorted(ex.sources) if ex.sources else None}
            for ex in self.extras}
        return out

    def warmup(self, n: int = 1) -> None:
        for d in [self.main, *(ex.detector for ex in self.extras)]:
            if hasattr(d, "warmup"):
                d.warmup(n)

    def close(self) -> None:
        for d in [self.main, *(ex.detector for ex in self.extras)]:
            if hasattr(d, "close"):
                d.close()

    def _timed(self, det: Any, images: list[np.ndarray], timings: dict[str, float]) -> list[Detections]:
        t0 = time.perf_counter()
        out = det.detect(images)
        lt = getattr(det, "last_timings", None) or {}
        if lt:
            for k, v in lt.items():
                timings[k] = timings.get(k, 0.0) + float(v)
        else:
            timings["inference"] = timings.get("inference", 0.0) + time.perf_counter() - t0
        return out

    def detect(self, images: Sequence[np.ndarray] | np.ndarray, sources: Sequence[str | None] | None = None,
               ) -> list[Detections]:
        images = list(images) if not isinstance(images, np.ndarray) or images.ndim == 4 else [images]
        if sources is None:
            sources = [None] * len(images)
        if len(sources) != len(images):
            raise ValueError(f"MultiDetector.detect: {len(images)} images but {len(sources)} source ids")
        timings: dict[str, float] = {}
        main = self._timed(self.main, images, timings)
        per_extra: list[dict[int, Detections]] = []
        for ex in self.extras:
            idx = [i for i, s in enumerate(sources) if ex.runs_on(s)]
            got = self._timed(ex.detector, [images[i] for i in idx], timings) if idx else []
            per_extra.append(dict(zip(idx, got)))
        self.last_timings = timings
        return [self._combine(main[i], [pe.get(i) for pe in per_extra]) for i in range(len(images))]

    # -- combining one image ---------------------------------------------------------------------
    def _combine(self, main: Detections, extra: list[Detections | None]) -> Detections:
        pieces: list[Detections] = [Detections(main.xyxy, main.scores, main.class_ids, main.track_ids,
                                               self._names, dict(main.data))]
        attrs: dict[str, np.ndarray] = {}  # columns over the main detections
        for ex, dets in zip(self.extras, extra):
            if dets is None:
                dets = Detections.empty()
            cols = {f"{ex.name}.{k}": v for k, v in dets.data.items()}
            own = Detections(dets.xyxy, dets.scores, dets.class_ids + ex.offset, dets.track_ids, self._names, {})
            if ex.hosts is None:
                own.data.update(cols)
                pieces.append(own)
                continue
            names = np.array([ex.names.get(int(c) + ex.offset, str(c)) for c in dets.class_ids], dtype=object)
            self_cols = {ex.name: names, f"{ex.name}.score": dets.scores.astype(np.float32),
                         f"{ex.name}.xyxy": dets.xyxy.astype(np.float32), **{k: _as_column(v) for k, v in cols.items()}}
            ok = np.isin(main.class_ids, list(ex.hosts))
            owner = attach(main.xyxy, ok, dets)
            for key, col in self_cols.items():
                out = _fill(len(main), col)
                hit = owner >= 0
                out[owner[hit]] = col[hit]
                attrs[key] = out
            alone = owner == -1
            if alone.any():
                lone = own[alone]
                lone.data.update({k: v[alone] for k, v in self_cols.items()})
                pieces.append(lone)
        pieces[0].data.update(attrs)
        for p in pieces:
            for k, v in p.data.items():
                self._protos.setdefault(k, v[:0])
        return _merge_filled(pieces, self._names, self._protos)


def _merge_filled(pieces: list[Detections], names: Mapping[int, str],
                  protos: Mapping[str, np.ndarray] | None = None) -> Detections:
    """Concatenate detections, giving every piece every data key (NaN / "" where it has none)."""
    like: dict[str, np.ndarray] = dict(protos or {})
    for p in pieces:
        for k, v in p.data.items():
            like.setdefault(k, v)
    data = {}
    for k, proto in like.items():
        cols = []
        for p in pieces:
            v = p.data.get(k)
            cols.append(_as_column(v) if v is not None else _fill(len(p), proto))
        if any(c.dtype == object for c in cols):
            cols = [c.astype(object) for c in cols]
        data[k] = np.concatenate(cols) if cols else proto[:0]
    return Detections(
        xyxy=np.concatenate([p.xyxy for p in pieces]),
        scores=np.concatenate([p.scores for p in pieces]),
        class_ids=np.concatenate([p.class_ids for p in pieces]),
        track_ids=np.concatenate([p.track_ids for p in pieces]),
        class_names=dict(names),
        data=data,
    )


def load_multi(cfg: Any, main: Any, resolve=None) -> Any:
    """The detector a config asks for: ``main`` alone, or a :class:`MultiDetector` when ``cfg.extra_models``
    is set. ``resolve`` maps a model path as written (relative to the config) to a usable one."""
    if not getattr(cfg, "extra_models", None):
        return main
    from . import load_detector

    extras = []
    for ex in cfg.extra_models:
        m = ex.model.model_copy()
        if resolve is not None:
            m.path = resolve(m.path)
        try:
            extras.append((ex, load_detector(m)))
        except Exception as e:
            try:
                err = type(e)(f"extra_models {ex.name!r}: {e}")
            except Exception:  # noqa: BLE001 - an exception type with another signature
                raise RuntimeError(f"extra_models {ex.name!r}: {e}") from e
            raise err from e
    return MultiDetector(main, extras)
