"""pockit.tracking."""
