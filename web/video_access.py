"""Who may publish and watch a show's video: the ShowAccess that signaling asks.

It knows tokens and show status, which signaling must not. Signaling reports the video's
state back; this hands it to the event bus, and the live channel announces it and
keeps it for late joiners' snapshots; the publisher's health (codec, keyframe interval,
bitrate, and advice for an OBS host) likewise, for the show's staff only.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import update

from checkout.errors import NotFound
from checkout.service import CheckoutService
from checkout.show_state import ShowStatus
from core.db import utcnow
from core.roles import Role
from live.service import LiveService
from signaling import SignalingError, VideoHealth, VideoState
from web import stream_keys
from web.auth import AuthError, TokenIssuer
from web.event_bus import EventBus
from web.stream_keys import StreamKey

HOST = frozenset({Role.HOST})
# A stream-key publisher that makes a keyframe less often than this is told what to set: a
# late joiner's picture starts at the cached keyframe and catches up through what followed
# it, which takes longer the longer the interval, most on a narrow link.
LONG_KEYFRAME_INTERVAL_S = 2.5


class VideoAccess:
    """signaling's ``ShowAccess``: tokens decide who, checkout says the show's status, and
    video states go out on the event bus. Checkout and live are attached while the app runs."""

    def __init__(self, tokens: TokenIssuer, bus: EventBus) -> None:
        self.tokens = tokens
        self.bus = bus
        self.checkout: CheckoutService | None = None
        self.live: LiveService | None = None  # (attached with checkout: who is banned)

    async def _show_status(self, show_id: str) -> ShowStatus:
        if self.checkout is None:
            raise SignalingError("service_closed", "The app is not running.")
        try:
            return await self.checkout.show_status(show_id)
        except NotFound:
            raise SignalingError("session_not_found", "no such show") from None

    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        if stream_keys.looks_like_key(bearer):
            assert bearer is not None
            return await self._authorize_key(show_id, bearer)
        try:
            principal = self.tokens.require(bearer, show_id, HOST)
        except AuthError as exc:
            code = "unauthorized" if exc.http_status == 401 else "forbidden"
            raise SignalingError(code, exc.message) from None
        status = await self._show_status(show_id)
        if status is ShowStatus.ENDED:
            raise SignalingError("show_ended", "the show has ended")
        if status is not ShowStatus.LIVE:
            raise SignalingError("show_not_live", f"the show is {status}, not live")
        return principal.user_id

    async def _authorize_key(self, show_id: str, key: str) -> str:
        """A stream key of this show, not revoked, while the show is live (its last use is
        written down)."""
        if self.checkout is None:
            raise SignalingError("service_closed", "The app is not running.")
        async with self.checkout.sessions() as session:
            row = await stream_keys.find(session, key)
        if row is None:
            raise SignalingError("unauthorized", "unknown stream key")
        if row.revoked_at is not None:
            raise SignalingError("key_revoked", "this stream key was revoked: make a new one")
        if row.show_id != show_id:
            raise SignalingError("forbidden", "this stream key is for another show")
        status = await self._show_status(show_id)
        if status is ShowStatus.ENDED:
            raise SignalingError("show_ended", "the show has ended")
        if status is not ShowStatus.LIVE:
            raise SignalingError("show_not_live", f"the show is {status}, not live")
        async with self.checkout.sessions.begin() as session:
            await session.execute(
                update(StreamKey).where(StreamKey.id == row.id).values(last_used_at=utcnow())
            )
        return stream_keys.identity(row)

    async def publisher_allowed(self, show_id: str, identity: str) -> bool:
        """A host token's publisher goes on; a stream key's while the key is not revoked."""
        if not identity.startswith(stream_keys.IDENTITY_PREFIX) or self.checkout is None:
            return True
        async with self.checkout.sessions() as session:
            row = await session.get(StreamKey, identity.removeprefix(stream_keys.IDENTITY_PREFIX))
        return row is not None and row.revoked_at is None and row.show_id == show_id

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        """Anyone may watch a show that has not ended; a token, when sent, must be valid,
        and its viewer not removed (banned) from the show."""
        if await self._show_status(show_id) is ShowStatus.ENDED:
            raise SignalingError("show_ended", "the show has ended")
        if bearer is None:
            return f"anon_{secrets.token_urlsafe(6)}"
        try:
            principal = self.tokens.verify(bearer)
        except AuthError as exc:
            raise SignalingError("unauthorized", exc.message) from None
        if not principal.can_act_on(show_id):
            raise SignalingError("forbidden", "this token is for another show")
        if self.live is not None and await self.live.is_banned(show_id, principal.user_id):
            raise SignalingError("banned", "you were removed from this show")
        return principal.user_id

    async def video_state_changed(self, show_id: str, state: VideoState) -> None:
        await self.bus.video_state_changed(show_id, state.value)

    async def video_health_reported(self, show_id: str, identity: str, health: VideoHealth) -> None:
        """The relay's figures, and whether the host publishes with a stream key (from OBS
        or another encoder, whose keyframe interval the host sets) and should change it."""
        await self.bus.video_health_reported(show_id, health_json(identity, health))


def health_json(identity: str, health: VideoHealth) -> dict[str, Any]:
    """A publisher's health as the studio shows it; ``advice`` a code, or None."""
    stream_key = identity.startswith(stream_keys.IDENTITY_PREFIX)
    interval = health.keyframe_interval_s
    advice = None
    if stream_key and interval is not None and interval > LONG_KEYFRAME_INTERVAL_S:
        advice = "keyframe_interval_long"
    return {**health.to_json(), "stream_key": stream_key, "advice": advice}
