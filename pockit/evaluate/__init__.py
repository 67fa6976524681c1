"""pockit.evaluate."""
