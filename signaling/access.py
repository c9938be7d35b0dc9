"""What the relay needs from the rest of the app: who may publish or watch a show."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from core.transitions import Transitions


class VideoState(enum.StrEnum):
    """The state of a show's video, reported through ``ShowAccess``."""

    OFFLINE = "offline"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    PAUSED = "paused"  # the host hung up (DELETE): offline, said so; live again on return


# The transitions a show's video may take; anything else is a bug in the relay. A paused
# show is not streaming: like an offline one it is kept as no state (``VideoStates``).
VIDEO_TRANSITIONS = Transitions(
    "show's video",
    {
        VideoState.OFFLINE: frozenset({VideoState.LIVE}),
        VideoState.LIVE: frozenset(
            {VideoState.RECONNECTING, VideoState.PAUSED, VideoState.OFFLINE}
        ),
        VideoState.RECONNECTING: frozenset(
            {VideoState.LIVE, VideoState.PAUSED, VideoState.OFFLINE}
        ),
        VideoState.PAUSED: frozenset({VideoState.LIVE, VideoState.OFFLINE}),
    },
)


@dataclass(frozen=True)
class VideoHealth:
    """What the relay measures of a show's publisher, reported every few seconds.

    ``keyframe_interval_s``: the longest gap between the publisher's recent keyframes, the
    one still open included (so a 10 s interval reads "4 s" 4 s after the first keyframe,
    and 10 s from the second on); None before the first keyframe.
    """

    codec: str
    keyframe_interval_s: float | None
    bitrate_bps: int

    def to_json(self) -> dict[str, Any]:
        interval = self.keyframe_interval_s
        return {
            "codec": self.codec,
            "keyframe_interval_s": None if interval is None else round(interval, 1),
            "bitrate_bps": self.bitrate_bps,
        }


class ShowAccess(Protocol):
    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        """Return the host identity, or raise SignalingError (401, 403, 409)."""
        ...

    async def publisher_allowed(self, show_id: str, identity: str) -> bool:
        """Whether the publisher ``authorize_publisher`` let in as ``identity`` may go on
        (False: its credential was revoked since, and its session is ended). Asked every
        ``SignalingConfig.publisher_recheck_s`` while it publishes, and on
        ``SignalingService.recheck_publisher``."""
        ...

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        """Return the viewer identity, or raise SignalingError (401, 403)."""
        ...

    async def video_state_changed(self, show_id: str, state: VideoState) -> None:
        """Called on every change of a show's stream state."""
        ...

    async def video_health_reported(self, show_id: str, identity: str, health: VideoHealth) -> None:
        """Called every ``WhipIngest.health_report_s`` while the show's publisher (the
        ``identity`` ``authorize_publisher`` returned) sends video."""
        ...
