"""``face_match``: a track whose face matches an identity of the watch list.

Shared behaviour (where the face comes from, per-track decision, zone, ``privacy``): :mod:`pockit.faces.rules`.
One event per track and identity (``cooldown`` applies): when the track has ``min_frames`` face views and its
best identity has similarity >= ``threshold`` and beats the second best by >= ``margin``. ``identities``
restricts the alarm to some names of the watch list (None = any). ``extra``: identity, similarity, second,
frames, face_box, watchlist.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...faces.rules import FaceRule, FaceRuleBase
from ...faces.watchlist import WatchlistError
from ..registry import register


class FaceMatchRule(FaceRuleBase):
    type: Literal["face_match"]
    identities: list[str] | None = Field(None, description="only these identities raise (None = any on the list)")


@register(FaceMatchRule)
class FaceMatch(FaceRule):
    def __init__(self, cfg, source_id="0") -> None:
        super().__init__(cfg, source_id)
        self.only = set(cfg.identities) if cfg.identities else None
        if self.only:
            unknown = sorted(self.only - set(self.watchlist.names))
            if unknown:
                raise WatchlistError(f"rule {cfg.name!r}: identities {unknown} are not in {cfg.watchlist} "
                                     f"(it holds {sorted(self.watchlist.names)})")

    def decide_event(self, v, i, tid, st, m, face_box):
        if m.identity is None or m.identity in st.raised:
            return None
        if self.only is not None and m.identity not in self.only:
            return None
        if not self.cool(tid, v.t):
            return None
        st.raised.add(m.identity)
        return self.face_event(v, i, tid, m, face_box)
