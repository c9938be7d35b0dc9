"""WHIP and WHEP sessions: one peer connection each, with an explicit state machine."""

from __future__ import annotations

import asyncio
import enum
import secrets
from dataclasses import dataclass, field
from typing import Any

from core.transitions import Transitions

from .recording import Recorder
from .relay import RelayViewer


class PeerState(enum.StrEnum):
    NEW = "new"
    CONNECTED = "connected"
    CLOSED = "closed"


PEER_TRANSITIONS = Transitions(
    "peer session",
    {
        PeerState.NEW: frozenset({PeerState.CONNECTED, PeerState.CLOSED}),
        PeerState.CONNECTED: frozenset({PeerState.CLOSED}),
        PeerState.CLOSED: frozenset(),
    },
)


class PeerRole(enum.StrEnum):
    PUBLISHER = "publisher"
    VIEWER = "viewer"


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(eq=False)
class PeerSession:
    show_id: str
    identity: str
    role: PeerRole
    pc: Any  # aiortc.RTCPeerConnection
    token_digest: str = ""  # of the bearer token that opened it; DELETE must bring the same
    session_id: str = field(default_factory=new_session_id)
    etag: str = field(default_factory=lambda: f'"{secrets.token_hex(8)}"')
    state: PeerState = PeerState.NEW
    viewer: RelayViewer | None = None
    video_receiver: Any = None
    recorder: Recorder | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def transition(self, new: PeerState) -> bool:
        """Move to ``new``; False when already there, an error when not allowed."""
        if new is self.state:
            return False
        self.state = PEER_TRANSITIONS.check(self.state, new)
        return True
