"""Who may publish and watch a show's video: the ShowAccess that signaling asks.

It knows tokens and show status, which signaling must not. Signaling reports the stream's
state back; this hands it to the event bus, and the live channel announces it and
keeps it for late joiners' snapshots.
"""

from __future__ import annotations

import secrets
from typing import Any

from checkout import catalog
from checkout.errors import NotFound
from checkout.show_state import ShowStatus
from core.roles import Role
from signaling import SignalingError, VideoState
from web.auth import AuthError, TokenIssuer

HOST = frozenset({Role.HOST})


class VideoAccess:
    """Reads the app's state at call time: resources and hooks exist once the lifespan runs."""

    def __init__(self, tokens: TokenIssuer, state: Any) -> None:
        self.tokens = tokens
        self.state = state

    async def _show_status(self, show_id: str) -> ShowStatus:
        async with self.state.resources.sessions() as session:
            try:
                return (await catalog.get_show(session, show_id)).status
            except NotFound:
                raise SignalingError("session_not_found", "no such show") from None

    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        try:
            principal = self.tokens.require(bearer, show_id, HOST)
        except AuthError as exc:
            code = "unauthorized" if exc.http_status == 401 else "forbidden"
            raise SignalingError(code, exc.message) from None
        status = await self._show_status(show_id)
        if status is not ShowStatus.LIVE:
            raise SignalingError("show_not_live", f"the show is {status}, not live")
        return principal.user_id

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        """Anyone may watch a show that has not ended; a token, when sent, must be valid."""
        if await self._show_status(show_id) is ShowStatus.ENDED:
            raise SignalingError("forbidden", "the show has ended")
        if bearer is None:
            return f"anon_{secrets.token_urlsafe(6)}"
        try:
            principal = self.tokens.verify(bearer)
        except AuthError as exc:
            raise SignalingError("unauthorized", exc.message) from None
        if not principal.can_act_on(show_id):
            raise SignalingError("forbidden", "this token is for another show")
        return principal.user_id

    async def video_state_changed(self, show_id: str, state: VideoState) -> None:
        await self.state.hooks.video_state_changed(show_id, state.value)
