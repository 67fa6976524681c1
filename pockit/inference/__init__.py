"""pockit.inference."""
