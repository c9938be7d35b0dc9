"""SignalingService: the WHIP ingest and WHEP playback endpoints, and the one door to the
pieces that serve them: ``whip.py`` (the host publishes), ``whep.py`` (a viewer plays) and
``peers.py`` (the peer sessions, relays and tasks they share)."""

from __future__ import annotations

import hmac

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import aiortc_hooks
from .access import ShowAccess
from .config import SignalingConfig
from .errors import SignalingError
from .hls import HlsOrigin
from .http import add_link_headers, bearer_token, token_digest, with_errors
from .ice import IcePolicy, IceServer, is_turn
from .peers import Peers
from .sessions import PeerRole
from .whep import WhepPlayback
from .whip import VideoStates, WhipIngest


class SignalingService:
    """Owns every peer connection, relay and task of the video relay.

    Trickle ICE: aiortc gathers all its candidates before it answers, and the client's
    candidates come in its offer, so a session's PATCH is answered 405 Method Not Allowed
    (RFC 9725 section 4.3.1: a WHIP session that does not support trickle ICE or ICE
    restarts answers PATCH with 405).
    """

    def __init__(self, config: SignalingConfig, access: ShowAccess) -> None:
        self._config = config
        self._ice = IcePolicy(
            tuple(config.ice_servers),
            turn_username=config.turn_username,
            turn_credential=config.turn_credential,
            turn_secret=config.turn_secret,
            turn_ttl_s=config.turn_ttl_s,
        )
        self._states = VideoStates(access)
        self._peers = Peers(config, self._ice, self._states.streaming)
        self.hls = HlsOrigin(config.hls)
        self._states.listeners.append(self.hls.video_state_changed)
        self._whip = WhipIngest(config, access, self._peers, self._states, self.hls)
        self._whep = WhepPlayback(access, self._peers)
        aiortc_hooks.install()

    @property
    def reconnect_grace_s(self) -> float:
        """How long a lost publisher's show stays reconnecting before it goes offline."""
        return self._whip.reconnect_grace_s

    @reconnect_grace_s.setter
    def reconnect_grace_s(self, seconds: float) -> None:
        self._whip.reconnect_grace_s = seconds

    @property
    def publisher_recheck_s(self) -> float:
        """How often a publisher's right to go on is asked again (``publisher_allowed``)."""
        return self._whip.publisher_recheck_s

    @publisher_recheck_s.setter
    def publisher_recheck_s(self, seconds: float) -> None:
        self._whip.publisher_recheck_s = seconds

    @property
    def health_report_s(self) -> float:
        """How often a publisher's health is reported (``video_health_reported``)."""
        return self._whip.health_report_s

    @health_report_s.setter
    def health_report_s(self, seconds: float) -> None:
        self._whip.health_report_s = seconds

    # -- the interface ---------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/whip/{show_id}", with_errors(self._whip_collection), methods=["POST", "OPTIONS"]
            ),
            Route(
                "/whip/{show_id}/{session_id}",
                with_errors(self._whip_session),
                methods=["DELETE", "PATCH", "OPTIONS"],
            ),
            Route(
                "/whep/{show_id}", with_errors(self._whep_collection), methods=["POST", "OPTIONS"]
            ),
            Route(
                "/whep/{show_id}/{session_id}",
                with_errors(self._whep_session),
                methods=["DELETE", "PATCH", "OPTIONS"],
            ),
        ]

    def hls_routes(self) -> list[BaseRoute]:
        """``/hls/{show_id}/...``, read from Redis: served by any process, never forwarded."""
        return self.hls.routes()

    def start(self, redis: aioredis.Redis) -> None:
        """Redis is open: H.264 shows published here are packaged for HLS from now on."""
        self.hls.start(redis)

    async def close_show(self, show_id: str) -> None:
        """End every peer of ``show_id`` here, without announcing a stream state: another
        process serves the show now, and the clients' retries reach it there."""
        self.hls.forget(show_id)
        self._whip.forget_show(show_id)
        await self._peers.close_show(show_id)

    async def recheck_publisher(self, show_id: str) -> None:
        """Ask ``ShowAccess.publisher_allowed`` now for the show's publisher in this process
        (a stream key was revoked): the session ends if it may not go on. A publisher in
        another process is asked at its next periodic check."""
        await self._whip.recheck(show_id)

    async def end_show(self, show_id: str) -> None:
        """The show ended: its stream goes offline (announced) and every peer of it here,
        publisher and viewers, is closed. New offers are refused by ``ShowAccess``."""
        await self._whip.end_show(show_id)
        await self._peers.close_show(show_id)

    async def remove_viewer(self, show_id: str, identity: str) -> int:
        """Close the viewer sessions ``identity`` plays ``show_id`` with here (a viewer
        removed from the show); returns how many were closed."""
        sessions = [
            s
            for s in self._peers.of_show(show_id)
            if s.role is PeerRole.VIEWER and s.identity == identity
        ]
        for session in sessions:
            await self._peers.close_session(session)
        return len(sessions)

    def shows_in_use(self) -> set[str]:
        """The shows this service has peers or a relay for."""
        return self._peers.shows_in_use()

    def stats(self) -> dict[str, int]:
        """Counts of what the service owns, and its viewers' video queues."""
        return {"publishers": self._whip.publisher_count, **self._peers.stats()}

    async def close(self) -> None:
        """Close every peer connection and cancel every task; the service is then unusable."""
        self._peers.refuse_new()
        await self._whip.close()
        await self._peers.close()
        await self.hls.close()

    # -- HTTP endpoints ----------------------------------------------------------------

    async def _whip_collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options("POST, OPTIONS")
        return await self._whip.publish(request)

    async def _whep_collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options("POST, OPTIONS")
        return await self._whep.play(request)

    async def _whip_session(self, request: Request) -> Response:
        return await self._session_request(request, PeerRole.PUBLISHER)

    async def _whep_session(self, request: Request) -> Response:
        return await self._session_request(request, PeerRole.VIEWER)

    def _options(self, allow: str) -> Response:
        response = Response(status_code=204, headers={"Allow": allow})
        # STUN only: TURN needs credentials, which go to authenticated requests (the 201
        # answer) alone, and a TURN URL without them makes RTCPeerConnection throw.
        stun = [IceServer(url) for url in self._config.ice_servers if not is_turn(url)]
        add_link_headers(response, stun)
        return response

    async def _session_request(self, request: Request, role: PeerRole) -> Response:
        session = self._peers.find_session(request, role)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": "DELETE, OPTIONS"})
        if request.method == "PATCH":
            # Trickle ICE and ICE restarts are not supported (see the class docstring).
            raise SignalingError(
                "method_not_allowed",
                "Trickle ICE and ICE restarts are not supported: all candidates are in the "
                "offer and the answer.",
            )
        # RFC 9725 clients send their token on DELETE too: only the one who opened the
        # session may end it (an anonymous viewer's unguessable URL is its own key).
        if not hmac.compare_digest(session.token_digest, token_digest(bearer_token(request))):
            raise SignalingError("forbidden", "Only the session's owner may end it.")
        if role is PeerRole.PUBLISHER:
            await self._whip.end_publisher(session)
        else:
            await self._peers.close_session(session)
        return Response(status_code=200)
