"""Rule configuration schema (one pydantic model per rule type, discriminated by ``type``).

Geometry is given in pixels of the source frame or normalized to [0, 1] (``normalized: true``,
or auto-detected when every coordinate is within [0, 1]); :func:`pockit.rules.geometry.is_normalized`
states the rule. Geometry that cannot work is refused when the config loads, naming the rule and the
field: a self-intersecting or zero-area zone, fewer than 3 distinct zone points, a zero-length line or
fence segment, ``normalized: true`` with a coordinate outside [0, 1], auto-detected pixels mixed with
fractions, pixel geometry smaller than 2 px, non-finite numbers.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .geometry import geometry_problem

Point = tuple[float, float]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    classes: list[str | int] | None = Field(None, description="class filter: names or ids; None = all")
    min_score: float = Field(0.0, ge=0, le=1)
    anchor: Literal["bottom_center", "center", "top_center"] = "bottom_center"
    cooldown: float = Field(0.0, ge=0, description="seconds before the same track can raise this rule again")
    sources: list[str] | None = Field(None, description="source ids this rule applies to; None = all")
    normalized: bool | None = Field(None, description="coordinates in [0,1]; None = auto-detect")
    enabled: bool = True

    @field_validator("zone", "line", "fence", "region", check_fields=False)
    @classmethod
    def _geometry(cls, v, info: ValidationInfo):
        problem = geometry_problem(info.field_name, v, info.data.get("normalized"))
        if problem:
            raise ValueError(f"rule {info.data.get('name', '?')!r}: {problem}")
        return v


class _ZoneRule(_Base):
    zone: list[Point] = Field(..., min_length=3, description="polygon vertices")
    zone_name: str | None = None


class ZoneEnterRule(_ZoneRule):
    type: Literal["zone_enter"]
    min_frames: int = Field(1, ge=1)


class ZoneExitRule(_ZoneRule):
    type: Literal["zone_exit"]
    min_frames: int = Field(1, ge=1)


class LoiteringRule(_ZoneRule):
    type: Literal["loitering"]
    dwell: float = Field(..., gt=0, description="seconds of continuous stay")
    max_entries: int | None = Field(None, ge=2, description="'number of passes' variant")
    window: float | None = Field(None, gt=0, description="seconds for max_entries")

    @model_validator(mode="after")
    def _window(self):
        if self.max_entries is not None and self.window is None:
            raise ValueError("max_entries needs window (seconds)")
        return self


class LineCrossingRule(_Base):
    type: Literal["line_crossing"]
    line: tuple[Point, Point]
    line_name: str | None = None
    direction: Literal["in", "out", "both"] = "both"
    min_frames: int = Field(1, ge=1)


class FenceCrossingRule(_Base):
    type: Literal["fence_crossing"]
    fence: list[Point] = Field(..., min_length=2)
    line_name: str | None = None
    direction: Literal["in", "out", "both"] = "both"
    min_frames: int = Field(1, ge=1)


class CrowdRule(_ZoneRule):
    type: Literal["crowd"]
    min_count: int = Field(..., ge=1)
    min_duration: float = Field(0.0, ge=0)


class PresenceRule(_ZoneRule):
    type: Literal["presence"]
    min_duration: float = Field(..., ge=0)


class AbandonedObjectRule(_Base):
    type: Literal["abandoned_object"]
    zone: list[Point] | None = None
    zone_name: str | None = None
    mode: Literal["detector", "foreground", "auto"] = "auto"
    person_classes: list[str | int] = ["person"]
    max_motion: float = Field(0.1, gt=0, description="max centre motion, in box heights (or pixels if > 1)")
    min_duration: float = Field(5.0, ge=0)
    owner_distance: float = Field(2.0, gt=0, description="object box heights (detector mode) or owner box heights "
                                  "(foreground mode) when <= 10, pixels when > 10")
    unattended: float = Field(5.0, ge=0, description="seconds the owner is away before the alarm")
    min_area: float | None = Field(None, ge=0, description="foreground mode: smallest blob in px^2 (None: 0.1 % of the frame)")


class ObjectRemovedRule(_Base):
    type: Literal["object_removed"]
    region: tuple[float, float, float, float] | None = Field(None, description="x1,y1,x2,y2 of the guarded object")
    threshold: float = Field(0.35, gt=0, le=1, description="appearance change (0..1) counted as removed")
    min_duration: float = Field(2.0, ge=0)


class FallRule(_Base):
    type: Literal["fall"]
    fall_classes: list[str | int] = ["Fall"]
    aspect_ratio: float | None = Field(1.3, description="width/height above this counts as fallen; None = class only")
    min_duration: float = Field(1.0, ge=0)
    zone: list[Point] | None = None
    zone_name: str | None = None


RuleConfig = Annotated[
    ZoneEnterRule | ZoneExitRule | LoiteringRule | LineCrossingRule | FenceCrossingRule | CrowdRule | PresenceRule | AbandonedObjectRule | ObjectRemovedRule | FallRule,
    Field(discriminator="type"),
]
RULE_TYPES = (
    "zone_enter", "zone_exit", "loitering", "line_crossing", "fence_crossing",
    "crowd", "presence", "abandoned_object", "object_removed", "fall",
)
