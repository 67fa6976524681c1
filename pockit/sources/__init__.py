"""pockit.sources."""
