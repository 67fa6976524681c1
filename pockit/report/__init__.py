"""pockit.report: the customer PoC report (self-contained HTML, PDF via headless Chromium)."""
from .builder import (
    ReportError,
    build_report,
    collect,
    judge_acceptance,
    parse_gt,
    render_html,
)

__all__ = ["ReportError", "build_report", "collect", "judge_acceptance", "parse_gt", "render_html"]
