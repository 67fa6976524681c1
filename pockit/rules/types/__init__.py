"""One module per rule type: its pydantic schema and its implementation, registered with
:func:`pockit.rules.registry.register`. Every module here is imported by the registry on first use
(modules whose name starts with ``_`` are not); see docs/CONTRACTS.md, "Add a rule type"."""
