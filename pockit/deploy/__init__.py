"""pockit.deploy."""
