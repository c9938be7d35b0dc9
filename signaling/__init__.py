"""WHIP ingest and WHEP playback with a pass-through (never transcoding) video relay."""

from .config import SignalingConfig
from .errors import SignalingError
from .gate import ShowGate, StreamState
from .service import SignalingService

__all__ = ["ShowGate", "SignalingConfig", "SignalingError", "SignalingService", "StreamState"]
