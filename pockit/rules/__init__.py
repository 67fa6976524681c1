"""pockit.rules: the scenario rules engine (zones, lines, loitering, crowd, abandoned objects ...).

``RuleEngine(rules, source_id, frame_size, class_names).update(frame, dets, timestamp, index)`` returns
:class:`pockit.core.Event` records; ``replay(config, tracks_path)`` runs rules on a MOT tracks file.
"""
from .engine import ALARM_HOLD, RuleEngine
from .replay import replay, replay_rules, seqinfo_for

__all__ = ["ALARM_HOLD", "RuleEngine", "replay", "replay_rules", "seqinfo_for"]
