"""``zone_exit``: the anchor is outside for ``min_frames`` consecutive observations after having been inside."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import ZoneRuleBase
from ..registry import register
from .zone_enter import ZoneTransition


class ZoneExitRule(ZoneRuleBase):
    type: Literal["zone_exit"]
    min_frames: int = Field(1, ge=1)


@register(ZoneExitRule)
class ZoneExit(ZoneTransition):
    entering = False
