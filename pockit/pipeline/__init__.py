"""pockit.pipeline."""
