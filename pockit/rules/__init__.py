"""pockit.rules."""
