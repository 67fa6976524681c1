"""What a label import or check found: every dropped, clipped or suspicious item, one row each."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# kind -> default action text, for readers of the report
KINDS = {
    "malformed_file": "file skipped",
    "malformed_line": "line skipped",
    "missing_image": "image dropped",
    "unreadable_image": "image dropped",
    "size_mismatch": "actual image size used",
    "missing_label": "image kept without boxes",
    "empty_label": "image kept without boxes",
    "box_outside": "box clipped or dropped",
    "zero_area": "box dropped",
    "unknown_class": "box dropped",
    "duplicate_box": "box dropped",
    "dropped_class": "box dropped",
}


@dataclass
class Issue:
    """One finding. ``action`` says what was done: 'dropped', 'clipped', 'kept', 'skipped'."""

    kind: str
    action: str
    message: str
    file: str | None = None
    line: int | None = None
    image: str | None = None
    box: list[float] | None = None
    class_name: str | None = None

    def __str__(self) -> str:
        where = self.file or self.image or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.file and self.image and Path(self.file).stem != Path(self.image).stem:
            where += f" [{self.image}]"
        what = ""
        if self.class_name is not None or self.box is not None:
            what = " " + " ".join(str(x) for x in (self.class_name, self.box) if x is not None) + ":"
        return f"[{self.kind}] {where}:{what} {self.message} ({self.action})"


@dataclass
class ValidationReport:
    """All issues of one import/check. Empty report == clean data."""

    issues: list[Issue] = field(default_factory=list)
    title: str = "dataset check"

    def add(self, kind: str, action: str, message: str, **kw: Any) -> Issue:
        if kind not in KINDS:
            raise ValueError(f"unknown issue kind {kind!r}; expected one of {sorted(KINDS)}")
        if kw.get("box") is not None:
            kw["box"] = [round(float(v), 3) for v in kw["box"]]
        issue = Issue(kind, action, message, **kw)
        self.issues.append(issue)
        return issue

    def extend(self, other: ValidationReport | Iterable[Issue]) -> None:
        self.issues.extend(other.issues if isinstance(other, ValidationReport) else other)

    def __len__(self) -> int:
        return len(self.issues)

    def __bool__(self) -> bool:  # a report object is always truthy; use len() / .ok
        return True

    def __iter__(self):
        return iter(self.issues)

    @property
    def ok(self) -> bool:
        return not self.issues

    def counts(self) -> dict[str, int]:
        """Issue count per kind."""
        return dict(sorted(Counter(i.kind for i in self.issues).items()))

    def of_kind(self, kind: str) -> list[Issue]:
        return [i for i in self.issues if i.kind == kind]

    @property
    def dropped(self) -> list[Issue]:
        return [i for i in self.issues if i.action in ("dropped", "skipped")]

    def to_dataframe(self):
        import pandas as pd

        cols = ["kind", "action", "file", "line", "image", "class_name", "box", "message"]
        return pd.DataFrame([asdict(i) for i in self.issues], columns=cols).astype({"line": "Int64"})

    def text(self, limit: int | None = None) -> str:
        """Readable summary then one line per issue (``limit`` caps the lines)."""
        if not self.issues:
            return f"{self.title}: no issues"
        head = f"{self.title}: {len(self.issues)} issue(s): " + ", ".join(f"{k}={v}" for k, v in self.counts().items())
        lines = [str(i) for i in self.issues[: limit or len(self.issues)]]
        if limit and len(self.issues) > limit:
            lines.append(f"... {len(self.issues) - limit} more (see .to_dataframe())")
        return "\n".join([head, *("  " + s for s in lines)])

    def __str__(self) -> str:
        return self.text(limit=50)
