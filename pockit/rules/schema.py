"""Rule configuration schema: one pydantic model per rule type, discriminated by ``type``.

Each rule type's model lives beside its implementation in :mod:`pockit.rules.types`; this module
collects them from the registry (:mod:`pockit.rules.registry`) into :data:`RuleConfig` (the Union the
PoC config validates against), :data:`RULE_TYPES` and :data:`SCHEMAS`, and re-exports every model by
its class name (``schema.LoiteringRule``, ...).

Geometry is given in pixels of the source frame or normalized to [0, 1] (``normalized: true``,
or auto-detected when every coordinate is within [0, 1]); :func:`pockit.rules.geometry.is_normalized`
states the rule. Geometry that cannot work is refused when the config loads, naming the rule and the
field: a self-intersecting or zero-area zone, fewer than 3 distinct zone points, a zero-length line or
fence segment, ``normalized: true`` with a coordinate outside [0, 1], auto-detected pixels mixed with
fractions, pixel geometry smaller than 2 px, non-finite numbers.
"""
from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Annotated

from pydantic import Field

from .base import Point as Point  # noqa: PLC0414 (re-exported)
from .base import RuleBase, ZoneRuleBase
from .registry import specs

_Base = RuleBase  # former names of the base classes
_ZoneRule = ZoneRuleBase

SCHEMAS: dict[str, type[RuleBase]] = {t: s.schema for t, s in specs().items()}
"""rule type -> its pydantic model"""
RULE_TYPES: tuple[str, ...] = tuple(SCHEMAS)
RuleConfig = Annotated[reduce(or_, SCHEMAS.values()), Field(discriminator="type")]

globals().update({m.__name__: m for m in SCHEMAS.values()})  # schema.LoiteringRule, ... (no hand list)
