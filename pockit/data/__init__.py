"""pockit.data."""
