"""``presence``: an object of the configured classes stays in the zone ``min_duration`` seconds."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import ZoneRuleBase
from ..registry import register
from .loitering import Dwell


class PresenceRule(ZoneRuleBase):
    type: Literal["presence"]
    min_duration: float = Field(..., ge=0)


@register(PresenceRule)
class Presence(Dwell):
    @staticmethod
    def dwell_seconds(cfg) -> float:
        return cfg.min_duration
