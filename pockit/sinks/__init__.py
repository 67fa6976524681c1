"""pockit.sinks."""
