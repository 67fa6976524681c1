"""``fence_crossing``: ``line_crossing`` on a polyline (``fence``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Point, RuleBase
from ..registry import register
from .line_crossing import Crossing


class FenceCrossingRule(RuleBase):
    type: Literal["fence_crossing"]
    fence: list[Point] = Field(..., min_length=2)
    line_name: str | None = None
    direction: Literal["in", "out", "both"] = "both"
    min_frames: int = Field(1, ge=1)


@register(FenceCrossingRule)
class FenceCrossing(Crossing):
    geometry_kind = "fence"

    def raw_geometry(self):
        return self.cfg.fence
