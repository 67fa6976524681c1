"""The one error type of the label readers: a file pockit cannot read names the file, where in it
(line number or JSON path), the field and the bad value.

Readers record a bad row or entry in the dataset's report and go on; they raise
:class:`LabelError` only when nothing more can be read (e.g. a data.yaml that is not a mapping,
a names file that is not text). :func:`number` is the one number check every reader uses.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_UNSET = object()


def show_value(value: Any, limit: int = 60) -> str:
    """The bad value as the user wrote it (repr, shortened)."""
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


class LabelError(ValueError):
    """A label file pockit cannot read.

    file: the file; line: 1-based line (text formats); field: where in the file, e.g.
    ``images[3].width`` (JSON path) or ``class id`` (a column); value: the bad value as read.
    ``str(e)`` reads ``FILE:LINE: FIELD: PROBLEM (got VALUE)``; :attr:`detail` is the same without the file and line.
    """

    def __init__(self, problem: str, *, file: str | Path | None = None, line: int | None = None, field: str | None = None,
                 value: Any = _UNSET):
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.has_value = value is not _UNSET
        self.value = value if self.has_value else None
        super().__init__(self._text())

    @property
    def detail(self) -> str:
        s = f"{self.field}: {self.problem}" if self.field else self.problem
        return s + (f" (got {show_value(self.value)})" if self.has_value else "")

    def _text(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.detail}" if where else self.detail


def number(value: Any, field: str, *, integer: bool = False, minimum: float | None = None, file: str | Path | None = None,
           line: int | None = None) -> float | int:
    """``value`` (a number or numeric text) as a finite float, or int when ``integer``; else LabelError.

    Booleans, lists, NaN, infinities, out-of-range numbers and text that is not a number are refused
    with the field and the value in the message.
    """
    def bad(problem: str) -> LabelError:
        return LabelError(problem, file=file, line=line, field=field, value=value)

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad("not a number")
    try:
        f = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise bad("not a number") from None
    except OverflowError:
        raise bad("number out of range") from None
    if not math.isfinite(f):
        raise bad("not a finite number")
    if minimum is not None and f < minimum:
        raise bad(f"must be >= {minimum:g}")
    if integer:
        if isinstance(value, int):
            return value
        if f != int(f):
            raise bad("not a whole number")
        return int(f)
    return f


def key(value: Any, field: str, *, file: str | Path | None = None) -> int | str:
    """A JSON id (int or text; integral floats become ints): anything else is a LabelError."""
    if isinstance(value, str):
        return value
    return number(value, field, integer=True, file=file)


def text(value: Any, field: str, *, file: str | Path | None = None, line: int | None = None) -> str:
    """A JSON string field (numbers are accepted and written as text; lists, dicts, null are not)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise LabelError("not text", file=file, line=line, field=field, value=value)
