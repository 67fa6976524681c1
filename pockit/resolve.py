"""One resolution layer: what a name in a config, on the command line or in a file refers to.

* URIs and paths: ``data:REL/PATH`` (under :func:`pockit.paths.data_dir`), ``media:NAME`` (pockit's media
  registry), stream URIs (``rtsp://``, a camera index, ``/dev/video0``, ``v4l2``, ``gst:``/GStreamer pipelines)
  passed through, and relative files resolved against the config file's folder
  (:func:`resolve_uri`, :func:`resolve_path`, :func:`local_media`, :func:`is_stream`).
* Class filters by name or id (``model.classes``, a rule's ``classes``, ``extra_models[i].attach_to``):
  :func:`match_classes` / :func:`resolve_classes`. One case rule: a name matches case-insensitively (an exact-case
  match wins when two names differ only in case); an integer, or a digit string that is not a class name, is a class
  id. One message for an entry that is none of the classes, naming the field (:func:`class_error`).
* Box matching: :func:`match_boxes` (greedy one-to-one at IoU >= a threshold, in score order like COCO or in IoU
  order) and :func:`match_detections` on two :class:`~pockit.core.Detections`; used by evaluation, the ONNX export
  check, the INT8 checks and the INT8-vs-FP16 comparison.

Nothing here imports more than numpy at import time.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "UriError",
    "class_error",
    "find_class",
    "is_stream",
    "local_media",
    "match_boxes",
    "match_classes",
    "match_detections",
    "resolve_classes",
    "resolve_path",
    "resolve_uri",
]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class UriError(FileNotFoundError):
    """A ``data:``/``media:`` URI that names nothing on this machine (the message names the field and the URI)."""


# -- URIs and paths ---------------------------------------------------------------------------------
def _base_dir(base: Any) -> Path | None:
    """A PocConfig (its ``base_dir``), a folder, or None."""
    b = getattr(base, "base_dir", base)
    return Path(b) if b is not None else None


def is_stream(uri: Any) -> bool:
    """A live or device URI, never a local file: camera index, ``scheme://``, ``/dev/...``, ``v4l2``, ``gst:`` or a
    GStreamer pipeline (``!``)."""
    if isinstance(uri, int):
        return True
    s = str(uri)
    return (s.isdigit() or bool(_SCHEME.match(s)) or s.startswith(("/dev/", "v4l2", "gst:")) or "!" in s)


def resolve_path(p: str, base: Any = None) -> str:
    """A file path of a config resolved against the config file's folder (``base``: the PocConfig or the folder).

    Absolute paths, paths that exist from the working directory and stream URIs come back unchanged (``~``
    expanded); a relative path that does not exist beside the config either comes back unchanged, so the
    component that opens it names it in its error."""
    if is_stream(p):
        return p
    pp = Path(p).expanduser()
    if pp.is_absolute() or pp.exists():
        return str(pp)
    b = _base_dir(base)
    cand = b / pp if b is not None else pp
    return str(cand) if cand.exists() else p


def resolve_uri(uri: str | int, base: Any = None, *, field: str = "uri") -> str | int:
    """A source URI as a PoC config means it: ``data:REL`` -> the file under the data directory, ``media:NAME`` ->
    the registry's local copy (fetched and verified), anything else -> :func:`resolve_path`. Raises
    :class:`UriError` (``field: uri: ...``) for a ``data:`` file that is missing or a ``media:`` name that cannot be
    fetched."""
    if isinstance(uri, int):
        return uri
    if uri.startswith("data:"):
        from .paths import data_dir

        p = data_dir() / uri.split(":", 1)[1]
        if not p.exists():
            raise UriError(f"{field}: {uri}: not found under the data directory {data_dir()} (set POCKIT_DATA_DIR)")
        return str(p)
    if uri.startswith("media:"):
        from .registry import FetchError, fetch_media

        try:
            return str(fetch_media(uri.split(":", 1)[1]))
        except FetchError as e:
            raise UriError(f"{field}: {uri}: {e}") from e
    return resolve_path(uri, base)


def local_media(uri: Any, base: Any = None, *, field: str = "uri") -> Path | None:
    """The local file a source URI names, or None for a stream or a file that is not there (bundles copy it)."""
    if not isinstance(uri, str) or is_stream(uri):
        return None
    p = Path(resolve_uri(uri, base, field=field))
    if not p.is_absolute() and _base_dir(base) is not None:
        p = _base_dir(base) / p
    return p if p.exists() else None


# -- class filters ----------------------------------------------------------------------------------
def _is_id(c: Any) -> bool:
    return isinstance(c, (int, np.integer)) and not isinstance(c, bool)


def _digits(c: Any) -> bool:
    return isinstance(c, str) and c.strip().lstrip("-").isdigit() and c.strip() not in ("", "-")


def find_class(name: str, names: Mapping[int, str]) -> int | None:
    """The id of class ``name`` (blanks stripped; case-insensitive, an exact-case match first, else the lowest id of
    the names that differ only in case), or None."""
    s = str(name).strip()
    exact = [int(k) for k, v in names.items() if str(v).strip() == s]
    if exact:
        return min(exact)
    folded = [int(k) for k, v in names.items() if str(v).strip().casefold() == s.casefold()]
    return min(folded) if folded else None


def match_classes(spec: Iterable[int | str], names: Mapping[int, str], *, check_ids: bool = True
                  ) -> tuple[list[int], list[Any]]:
    """(sorted class ids, entries that are none of the classes) of a filter of names and/or ids.

    Names match case-insensitively after stripping blanks; an exact-case match wins where two names differ only in
    case. An int, or a digit string that is not itself a class name, is an id; with ``check_ids`` and known
    ``names``, an id that is not one of them is unknown. With no names, ids pass and every name is unknown."""
    ids: set[int] = set()
    unknown: list[Any] = []
    for c in spec:
        found = find_class(c, names) if isinstance(c, str) else None
        if found is not None:
            ids.add(found)
        elif _is_id(c) or _digits(c):
            i = int(c)
            if check_ids and names and i not in names:
                unknown.append(c)
            else:
                ids.add(i)
        else:
            unknown.append(c)
    return sorted(ids), unknown


def class_error(field: str, value: Any, names: Mapping[int, str], owner: str = "the model") -> str:
    """The one message for a class filter entry that is none of ``owner``'s classes."""
    listing = ", ".join(f"{k}={v}" for k, v in sorted(names.items())) or "(unknown: give ids)"
    return f"{field}: {value!r} is not a class of {owner}; its classes are {listing}"


def resolve_classes(spec: Iterable[int | str] | None, names: Mapping[int, str], *, field: str,
                    owner: str = "the model") -> list[int] | None:
    """Class ids of a filter (None = every class); the first entry that is none of the classes raises ValueError
    with :func:`class_error`'s message."""
    if spec is None:
        return None
    ids, unknown = match_classes(spec, names)
    if unknown:
        raise ValueError(class_error(field, unknown[0], names, owner))
    return ids


# -- box matching -----------------------------------------------------------------------------------
def match_boxes(a: np.ndarray, b: np.ndarray, iou: float = 0.5, *, scores: np.ndarray | None = None,
                classes: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of boxes ``a`` (N,4) to ``b`` (M,4), xyxy, at IoU >= ``iou``: [(i, j, IoU)].

    With ``scores`` (of ``a``): COCO order, each box of ``a`` by descending score (stable) takes the unmatched box
    of ``b`` it overlaps most. Without: the pair of highest IoU first, then the next among the unmatched ones.
    ``classes=(a_cls, b_cls)``: only boxes of the same class match."""
    from .core import box_iou

    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return []
    m = box_iou(a, b)
    if classes is not None:
        m = np.where(np.asarray(classes[0])[:, None] == np.asarray(classes[1])[None, :], m, -1.0)
    pairs: list[tuple[int, int, float]] = []
    taken = np.zeros(len(b), bool)
    if scores is not None:
        for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
            cand = np.where(taken, -1.0, m[i])
            j = int(np.argmax(cand))
            if cand[j] >= iou:
                taken[j] = True
                pairs.append((int(i), j, float(cand[j])))
        return pairs
    used_a = np.zeros(len(a), bool)
    for flat in np.argsort(-m, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(b))
        if m[i, j] < iou:
            break
        if not used_a[i] and not taken[j]:
            used_a[i] = taken[j] = True
            pairs.append((i, j, float(m[i, j])))
    return pairs


def match_detections(a: Any, b: Any, iou: float = 0.5, *, by_score: bool = False, same_class: bool = True
                     ) -> list[tuple[int, int, float]]:
    """:func:`match_boxes` on two Detections of one frame (``by_score``: in ``a``'s score order; ``same_class``:
    only boxes of the same class id match)."""
    return match_boxes(a.xyxy, b.xyxy, iou, scores=a.scores if by_score else None,
                       classes=(a.class_ids, b.class_ids) if same_class else None)
