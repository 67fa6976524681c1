"""pockit.report: the customer PoC report (self-contained HTML, PDF via headless Chromium)."""
from .builder import (
    ReportError,
    build_report,
    collect,
    collect_site,
    find_runs,
    judge_acceptance,
    parse_gt,
    render_html,
)
from .environment import run_environment

__all__ = ["ReportError", "build_report", "collect", "collect_site", "find_runs", "judge_acceptance", "parse_gt",
           "render_html", "run_environment"]
