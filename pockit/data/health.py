"""Dataset health (tables + plotly figures) and leak-free train/val splits.

Splits are group-aware: images of one source are grouped in contiguous time chunks
(``chunk_s`` seconds; consecutive frames of a camera look alike), and a whole chunk goes to one
split. Groups are assigned greedily so each split gets its share of every class and every source.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .dataset import Dataset, ImageRecord


@dataclass
class DatasetHealth:
    """per_class: class, images, boxes, small, medium, large, ignored, median_w, median_h;
    per_source: source, images, boxes, background (images without boxes), one column per class;
    per_split: split, images, boxes, one column per class; boxes: one row per box (Dataset.boxes_frame);
    images: one row per image (Dataset.images_frame); summary: headline numbers."""

    per_class: object
    per_source: object
    per_split: object
    boxes: object
    images: object
    summary: dict

    def figures(self) -> dict:
        """plotly figures: per_class, sizes, boxes_per_image, aspect_ratios, per_source."""
        import plotly.graph_objects as go

        pc, b = self.per_class, self.boxes
        figs = {}
        f = go.Figure([go.Bar(name="boxes", x=pc["class"], y=pc["boxes"]), go.Bar(name="images", x=pc["class"], y=pc["images"])])
        f.update_layout(title="Boxes and images per class", barmode="group", yaxis_title="count")
        figs["per_class"] = f
        f = go.Figure([go.Bar(name=s, x=pc["class"], y=pc[s]) for s in ("small", "medium", "large")])
        f.update_layout(title="Box sizes per class (COCO: small < 32², medium < 96² px², large)", barmode="stack",
                        yaxis_title="boxes")
        figs["sizes"] = f
        f = go.Figure(go.Histogram(x=self.images["boxes"], xbins={"size": 1}))
        f.update_layout(title="Boxes per image", xaxis_title="boxes in the image", yaxis_title="images")
        figs["boxes_per_image"] = f
        f = go.Figure([go.Histogram(x=np.log2(b.loc[b["class"] == c, "aspect"].astype(float)), name=c, opacity=0.7)
                       for c in pc["class"]])
        f.update_layout(title="Box aspect ratio (log2 width/height; 0 = square, -1 = twice as tall)", barmode="overlay",
                        xaxis_title="log2(w/h)", yaxis_title="boxes")
        figs["aspect_ratios"] = f
        ps = self.per_source
        f = go.Figure([go.Bar(name="images", x=ps["source"], y=ps["images"]), go.Bar(name="boxes", x=ps["source"], y=ps["boxes"])])
        f.update_layout(title="Images and boxes per source (camera)", barmode="group", yaxis_title="count")
        figs["per_source"] = f
        return figs

    def text(self) -> str:
        s = self.summary
        lines = [(f"{s['images']} images ({s['background']} without boxes), {s['boxes']} boxes, {s['classes']} classes, "
                  f"{s['sources']} sources")]
        lines.append(self.per_class.to_string(index=False))
        return "\n".join(lines)


def health(ds: Dataset) -> DatasetHealth:
    """Counts and distributions of a dataset (see :class:`DatasetHealth`)."""
    import pandas as pd

    b = ds.boxes_frame()
    ims = ds.images_frame()
    rows = []
    for cid, name in enumerate(ds.class_names):
        sub = b[b["class_id"] == cid]
        sizes = sub["size"].value_counts()
        rows.append({"class": name, "images": int(sub["image"].nunique()), "boxes": len(sub),
                     "small": int(sizes.get("small", 0)), "medium": int(sizes.get("medium", 0)),
                     "large": int(sizes.get("large", 0)), "ignored": int(sub["ignore"].sum()),
                     "median_w": float(sub["w"].median()) if len(sub) else float("nan"),
                     "median_h": float(sub["h"].median()) if len(sub) else float("nan")})
    per_class = pd.DataFrame(rows, columns=["class", "images", "boxes", "small", "medium", "large", "ignored",
                                            "median_w", "median_h"])

    def by(col: str):
        out = []
        keys = sorted(ims[col].astype(str).unique())
        for k in keys:
            im_k = ims[ims[col].astype(str) == k]
            b_k = b[b[col].astype(str) == k]
            r = {col: k, "images": len(im_k), "boxes": len(b_k), "background": int((im_k["boxes"] == 0).sum())}
            for cid, name in enumerate(ds.class_names):
                r[name] = int((b_k["class_id"] == cid).sum())
            out.append(r)
        return pd.DataFrame(out, columns=[col, "images", "boxes", "background", *ds.class_names])

    summary = {"images": len(ds), "boxes": ds.n_boxes, "background": int((ims["boxes"] == 0).sum()) if len(ims) else 0,
               "classes": len(ds.class_names), "sources": len(ds.sources),
               "boxes_per_image_mean": float(ims["boxes"].mean()) if len(ims) else 0.0, "issues": len(ds.report)}
    return DatasetHealth(per_class, by("source"), by("split"), b, ims, summary)


def group_key(im: ImageRecord, chunk_s: float, chunk_frames: int) -> Hashable:
    """The leakage group of an image: (source, time chunk) or (source, frame chunk), else the image itself."""
    if im.timestamp is not None:
        return (im.source, int(np.floor(float(im.timestamp) / chunk_s)))
    if im.frame is not None:
        return (im.source, int(im.frame) // chunk_frames)
    return (im.source, "image", im.file)


def split(ds: Dataset, val: float = 0.2, test: float = 0.0, *, chunk_s: float = 60.0, chunk_frames: int = 300, seed: int = 0,
          inplace: bool = False) -> Dataset:
    """Assign ``split`` = train/val/test to every image, stratified by class and source, never
    splitting a group (see :func:`group_key`). Deterministic for a given seed."""
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ValueError(f"val ({val}) and test ({test}) must be fractions with val + test < 1")
    if chunk_s <= 0 or chunk_frames <= 0:
        raise ValueError("chunk_s and chunk_frames must be positive")
    out = ds if inplace else ds.copy()
    groups: dict[Hashable, list[ImageRecord]] = {}
    for im in out.images:
        groups.setdefault(group_key(im, chunk_s, chunk_frames), []).append(im)
    names = ["train", "val", "test"]
    targets = np.array([1 - val - test, val, test])
    active = [i for i, t in enumerate(targets) if t > 0]
    nc = len(out.class_names)
    sources = sorted({k[0] for k in groups})
    keys = list(groups)

    def vec(ims: list[ImageRecord]) -> np.ndarray:
        v = np.zeros(nc + len(sources) + 1)
        for im in ims:
            if len(im):
                np.add.at(v, im.class_ids, 1)
            v[nc + sources.index(im.source)] += 1
            v[-1] += 1
        return v

    vecs = {k: vec(g) for k, g in groups.items()}
    total = np.sum(list(vecs.values()), axis=0) if vecs else np.zeros(nc + len(sources) + 1)
    weight = np.where(total > 0, 1.0 / np.maximum(total, 1) ** 2, 0.0)
    weight[-1] *= 2.0  # overall image share matters most
    for j, src in enumerate(sources):  # a source that is one group cannot be split: do not let it pull
        if sum(k[0] == src for k in keys) < 2:
            weight[nc + j] = 0.0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    order = sorted(order, key=lambda i: -vecs[keys[i]][-1])  # big groups first (stable after the shuffle)
    cur = np.zeros((3, len(total)))
    assign: dict[Hashable, int] = {}
    for i in order:
        k = keys[i]
        g = vecs[k]
        best, best_cost = active[0], None
        for s in active:
            want = targets[s] * total
            delta = np.sum(weight * ((cur[s] + g - want) ** 2 - (cur[s] - want) ** 2)) / targets[s]  # chi-square-like
            if best_cost is None or delta < best_cost - 1e-12:
                best, best_cost = s, delta
        assign[k] = best
        cur[best] += g
    for s in active:  # never leave a wanted split empty while another has groups to spare
        if cur[s][-1] == 0 and len(keys) > len(active):
            donor = int(np.argmax(cur[:, -1]))
            movable = [k for k in keys if assign[k] == donor]
            if len(movable) > 1:
                k = min(movable, key=lambda k: (vecs[k][-1], str(k)))
                assign[k] = s
                cur[donor] -= vecs[k]
                cur[s] += vecs[k]
    for k, ims in groups.items():
        for im in ims:
            im.split = names[assign[k]]
    return out


def leakage(ds: Dataset, chunk_s: float = 60.0, chunk_frames: int = 300) -> list[Hashable]:
    """Groups (see :func:`group_key`) whose images are in more than one split: should be empty."""
    seen: dict[Hashable, set] = {}
    for im in ds.images:
        seen.setdefault(group_key(im, chunk_s, chunk_frames), set()).add(im.split)
    return [k for k, s in seen.items() if len(s) > 1]
