"""smartcity.tracking: the per-camera multi-object tracker (pure, no I/O)."""

from smartcity.tracking.byte_tracker import ByteTracker
from smartcity.tracking.config import TrackerConfig

__all__ = ["ByteTracker", "TrackerConfig"]
