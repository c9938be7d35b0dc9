"""What the relay needs from the rest of the app: who may publish or watch a show."""

from __future__ import annotations

import enum
from typing import Protocol


class StreamState(enum.StrEnum):
    """The state of a show's video stream, reported through the gate."""

    OFFLINE = "offline"
    LIVE = "live"
    RECONNECTING = "reconnecting"


# The transitions a show's stream may take; anything else is a bug in the relay.
STREAM_TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    StreamState.OFFLINE: frozenset({StreamState.LIVE}),
    StreamState.LIVE: frozenset({StreamState.RECONNECTING, StreamState.OFFLINE}),
    StreamState.RECONNECTING: frozenset({StreamState.LIVE, StreamState.OFFLINE}),
}


class ShowGate(Protocol):
    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        """Return the host identity, or raise SignalingError (401, 403, 409)."""
        ...

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        """Return the viewer identity, or raise SignalingError (401, 403)."""
        ...

    async def stream_state_changed(self, show_id: str, state: StreamState) -> None:
        """Called on every change of a show's stream state."""
        ...
