"""``unknown_face``: a track whose face matches nobody on the watch list (e.g. in a restricted zone).

Shared behaviour (where the face comes from, per-track decision, zone, ``privacy``): :mod:`pockit.faces.rules`.
One event per track: when it has ``min_frames`` face views (default 5, more than ``face_match``'s 3, so that
a known person is not called unknown on a first poor view) and its decision is unknown (similarity below
``threshold`` or margin below ``margin``). A track already matched to an identity is never reported. ``extra``:
identity (null), similarity and the nearest identity (``nearest``), frames, face_box, watchlist, reason.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...faces.rules import FaceRule, FaceRuleBase
from ..registry import register


class UnknownFaceRule(FaceRuleBase):
    type: Literal["unknown_face"]
    min_frames: int = Field(5, ge=1, description="face views of a track before it is called unknown")


@register(UnknownFaceRule)
class UnknownFace(FaceRule):
    def decide_event(self, v, i, tid, st, m, face_box):
        if m.identity is not None:
            st.raised.add(m.identity)  # a known face: never reported as unknown
            return None
        if st.raised or not self.cool(tid, v.t):
            return None
        st.raised.add(None)
        return self.face_event(v, i, tid, m, face_box, nearest=m.best, reason=m.reason)
