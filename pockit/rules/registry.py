"""The rule-type registry: one place that knows every rule type.

Each module of :mod:`pockit.rules.types` defines a schema (a :class:`~pockit.rules.base.RuleBase`
subclass with ``type: Literal["<type>"]``) and an implementation registered with::

    @register(MyRule)
    class My(Rule):
        def step(self, v): ...

The config's rule Union (:data:`pockit.rules.schema.RuleConfig`), ``RULE_TYPES``, the engine's
factory (:func:`make`) and the zone editor's models all come from here; every module of
``pockit/rules/types/`` is imported on first use, so adding a rule type is adding one module.
"""
from __future__ import annotations

import importlib
import pkgutil
import typing
from dataclasses import dataclass

from .base import Rule, RuleBase


@dataclass(frozen=True)
class RuleSpec:
    type: str
    schema: type[RuleBase]
    impl: type[Rule]


_REGISTRY: dict[str, RuleSpec] = {}
_LOADED = False


def type_name(schema: type[RuleBase]) -> str:
    """The ``type`` tag of a schema (its ``type: Literal["..."]`` field)."""
    f = schema.model_fields.get("type")
    args = typing.get_args(f.annotation) if f is not None else ()
    if f is None or typing.get_origin(f.annotation) is not typing.Literal or len(args) != 1:
        raise TypeError(f"{schema.__name__} needs a field  type: Literal['<rule type>']")
    return str(args[0])


def register(schema: type[RuleBase]):
    """Class decorator: registers a :class:`Rule` subclass as the implementation of ``schema``'s type."""
    if not (isinstance(schema, type) and issubclass(schema, RuleBase)):
        raise TypeError(f"register() takes the rule's schema (a RuleBase subclass), got {schema!r}")
    t = type_name(schema)

    def deco(cls: type[Rule]) -> type[Rule]:
        if not (isinstance(cls, type) and issubclass(cls, Rule)):
            raise TypeError(f"@register({schema.__name__}) decorates a Rule subclass, got {cls!r}")
        old = _REGISTRY.get(t)
        if old is not None and (old.impl.__module__, old.impl.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"rule type {t!r} registered twice: {old.impl.__module__}.{old.impl.__qualname__} "
                             f"and {cls.__module__}.{cls.__qualname__}")
        cls.schema, cls.type = schema, t
        _REGISTRY[t] = RuleSpec(t, schema, cls)
        return cls

    return deco


def load() -> None:
    """Imports every module of :mod:`pockit.rules.types` (each registers its rule type)."""
    global _LOADED
    if _LOADED:
        return
    from . import types as pkg

    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{m.name}")
    _LOADED = True


def specs() -> dict[str, RuleSpec]:
    """Every registered rule type, sorted by type name."""
    load()
    return {t: _REGISTRY[t] for t in sorted(_REGISTRY)}


def make(cfg: RuleBase, source_id: str = "0") -> Rule:
    """The runtime rule for a validated rule config."""
    spec = specs().get(cfg.type)
    if spec is None:
        raise ValueError(f"unknown rule type {cfg.type!r}; expected one of {tuple(specs())}")
    return spec.impl(cfg, source_id)
