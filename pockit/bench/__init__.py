"""pockit.bench."""
