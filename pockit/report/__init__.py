"""pockit.report."""
