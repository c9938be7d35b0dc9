"""WHIP ingest and WHEP playback with a pass-through (never transcoding) video relay."""

from .access import ShowAccess, VideoState
from .config import SignalingConfig
from .errors import SignalingError
from .service import SignalingService

__all__ = ["ShowAccess", "SignalingConfig", "SignalingError", "SignalingService", "VideoState"]
