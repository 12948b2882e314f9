"""The simulator's error type: bad options a caller can fix."""

from __future__ import annotations


class SimError(ValueError):
    """Options that cannot describe a run (unknown engine, too many faulty nodes, ...)."""
