from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Frame:
    """One decoded frame.

    image: HxWx3 uint8 BGR (OpenCV order); index: 0-based position in the source's decode order
    (MOTChallenge files write index + 1); timestamp: seconds from the start of the source;
    source_id: the configured source name.
    """

    image: np.ndarray
    index: int
    timestamp: float
    source_id: str = "0"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        h, w = self.image.shape[:2]
        return w, h
