"""Wiring of the stages: :func:`run` / :class:`Pipeline` (``pockit run``) and the demo."""
from .runner import Pipeline, RunSummary, SourceSummary, make_run_dir, run
from .timing import STAGES, StageTimer

__all__ = ["Pipeline", "RunSummary", "STAGES", "SourceSummary", "StageTimer", "make_run_dir", "run"]
