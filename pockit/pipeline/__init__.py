"""Wiring of the stages: :func:`run` / :class:`Pipeline` (``pockit run``) and the demo."""
from .rundir import make_run_dir, resolve_media
from .runner import Pipeline, RunSummary, SourceSummary, run
from .timing import STAGES, StageTimer

__all__ = ["Pipeline", "RunSummary", "STAGES", "SourceSummary", "StageTimer", "make_run_dir", "resolve_media", "run"]
