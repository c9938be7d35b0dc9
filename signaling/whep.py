"""WHEP playback: a viewer plays a show from its relay.

A viewer's offer is answered with the codec its show's host sends (or, before any host,
the first of VP8 and H.264 in the offer), and the viewer joins the relay once connected.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .access import ShowAccess
from .errors import SignalingError
from .http import bearer_token, read_sdp, require_sdp, token_digest
from .peers import Peers
from .relay import RelayViewer
from .sdp import (
    choose_video_codec,
    describe_codec,
    has_kind,
    offers_codec,
    parse_offer,
    require_candidates,
)
from .sessions import PeerRole, PeerSession


class WhepPlayback:
    """The POST /whep/{show_id} endpoint."""

    def __init__(self, access: ShowAccess, peers: Peers) -> None:
        self._access = access
        self._peers = peers

    async def play(self, request: Request) -> Response:
        self._peers.check_open()
        show_id = request.path_params["show_id"]
        require_sdp(request)
        identity = await self._access.authorize_viewer(show_id, bearer_token(request))
        body = await read_sdp(request)
        offer = parse_offer(body)
        require_candidates(offer)
        relay = self._peers.relay(show_id)
        codec = relay.video_codec
        if codec is None and has_kind(offer, "video"):
            codec = choose_video_codec(offer)
            if codec is None:
                self._peers.drop_relay_if_idle(show_id)
                raise SignalingError(
                    "unsupported_codec",
                    "The offer has neither VP8 nor H.264 constrained baseline.",
                )
        elif codec is not None and has_kind(offer, "video") and not offers_codec(offer, codec):
            raise SignalingError(
                "unsupported_codec",
                f"The show's video is {describe_codec(codec)}; the offer does not carry it.",
            )
        session = PeerSession(
            show_id,
            identity,
            PeerRole.VIEWER,
            self._peers.new_pc(),
            token_digest(bearer_token(request)),
        )
        session.viewer = RelayViewer(
            video=relay.new_queue(),
            audio=relay.new_audio_queue(),
            video_mime=None if codec is None else codec.mimeType.lower(),
        )
        try:
            await self._peers.negotiate(session, offer, body, codec)
        except SignalingError:
            self._peers.drop_relay_if_idle(show_id)
            raise
        self._peers.register(session)
        return self._peers.created(session, "whep")
