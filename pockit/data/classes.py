"""Class mapping: rename, merge and drop classes; line a dataset's classes up with a model's class ids."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .dataset import Dataset


def remap_classes(ds: Dataset, mapping: Mapping[str, str | None], *, order: Sequence[str] | None = None,
                  drop_unmapped: bool = False) -> Dataset:
    """New dataset with classes renamed/merged/dropped by name.

    mapping: old name -> new name (several old names to one new name merge them) or None (drop
    those boxes; each is listed in the report as ``dropped_class``). Classes not in ``mapping``
    keep their name unless ``drop_unmapped``. order: the resulting class list (ids follow it;
    it may hold names no box uses, e.g. a model's other classes); default: first-seen order.
    """
    unknown = [k for k in mapping if k not in ds.class_names]
    if unknown:
        raise KeyError(f"class mapping names {unknown}, which the dataset does not have; its classes are {ds.class_names}")
    target: list[str | None] = []
    for n in ds.class_names:
        target.append(mapping.get(n, None if drop_unmapped else n))
    new_names = list(order) if order is not None else list(dict.fromkeys(t for t in target if t is not None))
    missing = sorted({t for t in target if t is not None and t not in new_names})
    if missing:
        raise ValueError(f"mapped class names {missing} are not in order={list(new_names)}")
    lut = np.array([new_names.index(t) if t is not None else -1 for t in target] or [0], np.int64)
    out = ds.copy()
    out.class_names = new_names
    for im in out.images:
        if not len(im):
            continue
        new = lut[im.class_ids]
        for j in np.flatnonzero(new < 0):
            old = ds.class_names[im.class_ids[j]]
            out.report.add("dropped_class", "dropped", f"class {old!r} dropped by the class mapping", image=im.file,
                           box=im.xyxy[j], class_name=old)
        im.class_ids = new
        im.keep(new >= 0)
    return out


def map_to_model(ds: Dataset, model_names: Sequence[str] | Mapping[int, str], mapping: Mapping[str, str | None] | None = None,
                 *, drop_unknown: bool = False) -> Dataset:
    """Give the dataset the model's class list and ids (for fine-tuning or evaluating that model).

    Dataset classes are matched to model classes by ``mapping`` first, then by name (case-insensitive).
    A dataset class with no match raises (naming it), unless ``drop_unknown`` (its boxes are then
    dropped and reported). Example: ``map_to_model(ds, {0: 'Normal', 1: 'Fall'}, {'person': 'Normal'})``.
    """
    if isinstance(model_names, Mapping):
        ids = sorted(int(k) for k in model_names)
        names = [str(model_names.get(i, model_names.get(str(i), f"class{i}"))) for i in range(max(ids) + 1)] if ids else []
    else:
        names = [str(n) for n in model_names]
    from ..resolve import find_class

    by_id = dict(enumerate(names))
    full: dict[str, str | None] = {}
    unmatched = []
    for n in ds.class_names:
        if mapping and n in mapping:
            t = mapping[n]
            if t is not None and t not in names:
                raise ValueError(f"mapping sends {n!r} to {t!r}, which is not a model class {names}")
            full[n] = t
        elif (i := find_class(n, by_id)) is not None:  # pockit's one case rule for class names
            full[n] = names[i]
        else:
            unmatched.append(n)
            full[n] = None
    if unmatched and not drop_unknown:
        raise ValueError(f"dataset classes {unmatched} have no model class among {names}; pass mapping="
                         f"{{{unmatched[0]!r}: <model class or None>}} or drop_unknown=True")
    if mapping:
        extra = [k for k in mapping if k not in ds.class_names]
        if extra:
            raise KeyError(f"class mapping names {extra}, which the dataset does not have; its classes are {ds.class_names}")
    return remap_classes(ds, full, order=names)


def parse_class_map(items: Sequence[str]) -> dict[str, str | None]:
    """``["old=new", "junk="]`` -> ``{"old": "new", "junk": None}`` (an empty target drops the class)."""
    out: dict[str, str | None] = {}
    for m in items:
        if "=" not in m:
            raise ValueError(f"{m!r}: expected OLD=NEW (NEW empty to drop the class)")
        k, v = m.split("=", 1)
        out[k.strip()] = v.strip() or None
    return out
