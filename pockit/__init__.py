"""pockit: a toolkit for computer-vision proofs of concept.

Source -> Detector -> Tracker -> Rules -> Sinks, one small data type (:class:`Detections`)
flowing through, one YAML config per PoC. The runtime needs no torch.
"""
from __future__ import annotations

from .config import ConfigError, PocConfig, load_config
from .core import Detections, Event, Frame

__version__ = "0.1.0"
__all__ = ["ConfigError", "Detections", "Event", "Frame", "PocConfig", "load_config", "run", "__version__"]


def run(config, **kwargs):
    """Run a PoC config (path, dict or PocConfig); returns the run summary. Same as ``pockit run``."""
    from .pipeline import run as _run

    return _run(config, **kwargs)
