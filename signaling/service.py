"""SignalingService: the WHIP ingest and WHEP playback endpoints and the peers they own."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import aiortc_hooks
from .access import VIDEO_TRANSITIONS, ShowAccess, VideoState
from .config import SignalingConfig
from .errors import SignalingError
from .http import (
    CORS_HEADERS,
    add_link_headers,
    bearer_token,
    read_sdp,
    require_sdp,
    token_digest,
    with_errors,
)
from .ice import IcePolicy, IceServer, is_turn
from .recording import Recorder
from .relay import RelayTrack, RelayViewer, ShowRelay
from .sdp import (
    SDP_CONTENT_TYPE,
    audio_preferences,
    choose_video_codec,
    has_kind,
    parse_offer,
    video_preferences,
)
from .sessions import PeerRole, PeerSession, PeerState

logger = logging.getLogger(__name__)


class SignalingService:
    """Owns every peer connection, relay and task of the video relay.

    Trickle ICE: aiortc gathers all its candidates before it answers, and the client's
    candidates come in its offer, so a session's PATCH is answered 405 Method Not Allowed
    (RFC 9725 section 4.3.1: a WHIP session that does not support trickle ICE or ICE
    restarts answers PATCH with 405).
    """

    def __init__(self, config: SignalingConfig, access: ShowAccess) -> None:
        self._config = config
        self._access = access
        self._ice = IcePolicy(
            tuple(config.ice_servers),
            turn_username=config.turn_username,
            turn_credential=config.turn_credential,
            turn_secret=config.turn_secret,
            turn_ttl_s=config.turn_ttl_s,
        )
        self.reconnect_grace_s = config.reconnect_grace_s
        self._relays: dict[str, ShowRelay] = {}
        self._sessions: dict[str, PeerSession] = {}
        self._publishers: dict[str, PeerSession] = {}
        self._stream: dict[str, VideoState] = {}
        self._grace: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        aiortc_hooks.install()

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

    async def close_show(self, show_id: str) -> None:
        """End every peer of ``show_id`` here, without announcing a stream state: another
        process serves the show now, and the clients' retries reach it there."""
        grace = self._grace.pop(show_id, None)
        if grace is not None:
            grace.cancel()
        if show_id in self._publishers:
            publisher = self._publishers.pop(show_id)
            self._relay(show_id).detach_source(publisher)
        self._stream.pop(show_id, None)
        for session in [s for s in self._sessions.values() if s.show_id == show_id]:
            await self._close_session(session)
        self._drop_relay_if_idle(show_id)

    def shows_in_use(self) -> set[str]:
        """The shows this service has peers or a relay for."""
        return {session.show_id for session in self._sessions.values()} | set(self._relays)

    def stats(self) -> dict[str, int]:
        """Counts of what the service owns, and its viewers' video queues."""
        viewers = sum(1 for s in self._sessions.values() if s.role is PeerRole.VIEWER)
        tasks = len(self._tasks) + sum(r.task_count for r in self._relays.values())
        queues = [r.queue_stats() for r in self._relays.values()]
        return {
            "publishers": len(self._publishers),
            "viewers": viewers,
            "peer_connections": len(self._sessions),
            "tasks": tasks,
            "relays": len(self._relays),
            "viewer_frames_queued": sum(q[0] for q in queues),
            "viewer_keyframe_skips": sum(q[1] for q in queues),
            "viewer_frames_dropped": sum(q[2] for q in queues),
        }

    def video_state(self, show_id: str) -> VideoState:
        return self._stream.get(show_id, VideoState.OFFLINE)

    async def close(self) -> None:
        """Close every peer connection and cancel every task; the service is then unusable."""
        self._closed = True
        for task in list(self._grace.values()):
            task.cancel()
        for show_id in list(self._stream):  # the broadcast ends with this process
            await self._set_video_state(show_id, VideoState.OFFLINE)
        await asyncio.gather(*[self._close_session(s) for s in list(self._sessions.values())])
        for relay in list(self._relays.values()):
            await relay.close()
        self._relays.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- HTTP endpoints ----------------------------------------------------------------

    async def _whip_collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options("POST, OPTIONS")
        return await self._publish(request)

    async def _whep_collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options("POST, OPTIONS")
        return await self._play(request)

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
        session = self._find_session(request, role)
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
            await self._end_publisher(session)
        else:
            await self._close_session(session)
        return Response(status_code=200)

    def _find_session(self, request: Request, role: PeerRole) -> PeerSession:
        session = self._sessions.get(request.path_params["session_id"])
        if (
            session is None
            or session.role is not role
            or session.show_id != request.path_params["show_id"]
        ):
            raise SignalingError("session_not_found", "No such session.")
        return session

    def _created(self, session: PeerSession, prefix: str) -> Response:
        description = session.pc.localDescription
        response = Response(
            content=description.sdp,
            status_code=201,
            media_type=SDP_CONTENT_TYPE,
            headers={
                "Location": f"/{prefix}/{session.show_id}/{session.session_id}",
                "ETag": session.etag,
                **CORS_HEADERS,
            },
        )
        add_link_headers(response, self._ice.servers(session.session_id))
        return response

    # -- WHIP: the host publishes ----------------------------------------------------------

    async def _publish(self, request: Request) -> Response:
        self._check_open()
        show_id = request.path_params["show_id"]
        require_sdp(request)
        identity = await self._access.authorize_publisher(show_id, bearer_token(request))
        body = await read_sdp(request)
        offer = parse_offer(body)
        if not has_kind(offer, "video"):
            raise SignalingError("no_video", "A WHIP offer must carry a video track.")
        codec = choose_video_codec(offer)
        if codec is None:
            raise SignalingError(
                "unsupported_codec",
                "The offer has neither VP8 nor H.264 constrained baseline (packetization-mode 1).",
                http_status=400,
            )
        self._check_publisher(show_id, identity)
        session = PeerSession(
            show_id,
            identity,
            PeerRole.PUBLISHER,
            self._new_pc(),
            token_digest(bearer_token(request)),
        )
        await self._negotiate(session, offer, body, codec)
        # Checked again: another request may have won while this one negotiated.
        try:
            self._check_publisher(show_id, identity)
        except SignalingError:
            await _close_pc(session.pc)
            raise
        # The host's packets must not wait behind the fan-out (see aiortc_hooks).
        aiortc_hooks.drain_reads(session.pc)
        previous = self._publishers.get(show_id)
        if previous is not None:
            # The same host reconnecting takes the show over; viewers stay attached.
            await self._lose_publisher(previous)
        self._start_publisher(session, codec)
        return self._created(session, "whip")

    def _check_publisher(self, show_id: str, identity: str) -> None:
        current = self._publishers.get(show_id)
        if current is not None and current.identity != identity:
            raise SignalingError(
                "publisher_conflict", "Another publisher is already live on this show."
            )

    async def _negotiate(self, session: PeerSession, offer: Any, body: bytes, codec: Any) -> None:
        """Answer ``offer``. Transceivers are made first: aiortc applies codec preferences
        while it reads the remote description."""
        pc = session.pc
        try:
            for kind in ("video", "audio"):
                if has_kind(offer, kind):
                    self._add_transceiver(session, kind, codec)
            with contextlib.ExitStack() as stack:
                if session.role is PeerRole.VIEWER:
                    # aiortc starts the senders from tasks made in these two calls.
                    stack.enter_context(aiortc_hooks.shared_packing())
                await pc.setRemoteDescription(RTCSessionDescription(body.decode(), "offer"))
                answer = await pc.createAnswer()
                with aiortc_hooks.ice_host_addresses(self._config.ice_host_addresses):
                    await pc.setLocalDescription(answer)
        except BaseException as exc:  # cancelled requests too: no peer is left behind
            await _close_pc(pc)
            if session.viewer is not None:
                session.viewer.close()
            if isinstance(exc, SignalingError) or not isinstance(exc, Exception):
                raise
            raise SignalingError("malformed_sdp", f"The offer cannot be answered: {exc}") from None

    def _add_transceiver(self, session: PeerSession, kind: str, codec: Any) -> None:
        pc = session.pc
        if session.role is PeerRole.PUBLISHER:
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            aiortc_hooks.receive_encoded(transceiver.receiver)
            if kind == "video":
                session.video_receiver = transceiver.receiver
        else:
            viewer = session.viewer
            assert viewer is not None
            queue = viewer.video if kind == "video" else viewer.audio
            viewer.wants_audio = viewer.wants_audio or kind == "audio"
            transceiver = pc.addTransceiver(RelayTrack(kind, queue), direction="sendonly")
            aiortc_hooks.send_fast(transceiver.sender)
            if kind == "video":
                relay = self._relay(session.show_id)
                aiortc_hooks.on_keyframe_request(transceiver.sender, relay.request_keyframe)
        if kind == "audio":
            transceiver.setCodecPreferences(audio_preferences())
        elif codec is not None:
            transceiver.setCodecPreferences(video_preferences(codec))

    def _start_publisher(self, session: PeerSession, codec: Any) -> None:
        show_id = session.show_id
        self._register(session)
        self._publishers[show_id] = session
        relay = self._relay(show_id)
        receiver = session.video_receiver
        relay.attach_source(session, codec.mimeType.lower(), codec, lambda: self._pli(receiver))
        if self._config.recording_dir is not None:
            session.recorder = Recorder(
                self._config.recording_dir, show_id, session.session_id, codec.mimeType.lower()
            )
        for transceiver in session.pc.getTransceivers():
            track = transceiver.receiver.track
            self._spawn(self._pump(session, relay, transceiver.kind, track), session)
        self._end_viewers_of_other_codecs(show_id, codec.mimeType.lower())

    def _end_viewers_of_other_codecs(self, show_id: str, video_mime: str) -> None:
        """Viewers who negotiated another codec before this host came cannot be served
        without transcoding: their sessions end, and their players may ask again."""
        for session in list(self._sessions.values()):
            viewer = session.viewer
            if (
                session.show_id == show_id
                and viewer is not None
                and viewer.video_mime not in (None, video_mime)
            ):
                self._spawn(self._close_session(session))

    async def _pli(self, receiver: Any) -> None:
        for source in receiver.getSynchronizationSources():
            await aiortc_hooks.request_keyframe(receiver, source.source)

    async def _pump(self, session: PeerSession, relay: ShowRelay, kind: str, track: Any) -> None:
        try:
            while True:
                packet = await track.recv()
                relay.push(session, kind, packet)
                if session.recorder is not None:
                    session.recorder.write(kind, packet)
        except MediaStreamError:
            pass
        if kind == "video" and session.state is not PeerState.CLOSED:
            # The host's track ended (RTCP BYE, transport closed) without a DELETE.
            self._spawn(self._lose_publisher(session))

    async def _lose_publisher(self, session: PeerSession) -> None:
        """The host's connection failed or was taken over: the show is reconnecting."""
        show_id = session.show_id
        if self._publishers.get(show_id) is session:
            del self._publishers[show_id]
            self._relay(show_id).detach_source(session)
            if self.video_state(show_id) is VideoState.LIVE:
                await self._set_video_state(show_id, VideoState.RECONNECTING)
                self._start_grace(show_id)
        await self._close_session(session)

    async def _end_publisher(self, session: PeerSession) -> None:
        """The host ended the broadcast (DELETE)."""
        show_id = session.show_id
        if self._publishers.get(show_id) is session:
            del self._publishers[show_id]
            self._relay(show_id).detach_source(session)
            await self._set_video_state(show_id, VideoState.OFFLINE)
        await self._close_session(session)

    def _start_grace(self, show_id: str) -> None:
        async def expire() -> None:
            await asyncio.sleep(self.reconnect_grace_s)
            self._grace.pop(show_id, None)
            if show_id not in self._publishers:
                await self._set_video_state(show_id, VideoState.OFFLINE)
                self._drop_relay_if_idle(show_id)

        self._cancel_grace(show_id)
        self._grace[show_id] = self._spawn(expire())

    def _cancel_grace(self, show_id: str) -> None:
        task = self._grace.pop(show_id, None)
        if task is not None:
            task.cancel()

    async def _set_video_state(self, show_id: str, state: VideoState) -> None:
        current = self.video_state(show_id)
        if state is current:
            return
        VIDEO_TRANSITIONS.check(current, state)
        if state is VideoState.OFFLINE:
            self._stream.pop(show_id, None)
        else:
            self._stream[show_id] = state
        try:
            await self._access.video_state_changed(show_id, state)
        except Exception:
            logger.exception("video_state_changed(%s, %s) failed", show_id, state)

    # -- WHEP: a viewer plays ----------------------------------------------------------------

    async def _play(self, request: Request) -> Response:
        self._check_open()
        show_id = request.path_params["show_id"]
        require_sdp(request)
        identity = await self._access.authorize_viewer(show_id, bearer_token(request))
        body = await read_sdp(request)
        offer = parse_offer(body)
        relay = self._relay(show_id)
        codec = relay.video_codec
        if codec is None and has_kind(offer, "video"):
            codec = choose_video_codec(offer)
            if codec is None:
                self._drop_relay_if_idle(show_id)
                raise SignalingError(
                    "unsupported_codec",
                    "The offer has neither VP8 nor H.264 constrained baseline.",
                    http_status=400,
                )
        session = PeerSession(
            show_id, identity, PeerRole.VIEWER, self._new_pc(), token_digest(bearer_token(request))
        )
        session.viewer = RelayViewer(
            video=relay.new_queue(),
            audio=relay.new_audio_queue(),
            video_mime=None if codec is None else codec.mimeType.lower(),
        )
        try:
            await self._negotiate(session, offer, body, codec)
        except SignalingError:
            self._drop_relay_if_idle(show_id)
            raise
        self._register(session)
        return self._created(session, "whep")

    # -- peers, relays and tasks ---------------------------------------------------------------

    def _new_pc(self) -> Any:
        servers = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in self._ice.servers("relay")
        ]
        return RTCPeerConnection(RTCConfiguration(iceServers=servers))

    def _register(self, session: PeerSession) -> None:
        self._sessions[session.session_id] = session

        @session.pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        def on_state() -> None:
            state = session.pc.connectionState
            if state == "connected":
                self._connected(session)
            elif state in ("failed", "closed") and session.state is not PeerState.CLOSED:
                if session.role is PeerRole.PUBLISHER:
                    self._spawn(self._lose_publisher(session))
                else:
                    self._spawn(self._close_session(session))

    def _connected(self, session: PeerSession) -> None:
        if session.state is not PeerState.NEW:
            return
        session.transition(PeerState.CONNECTED)
        show_id = session.show_id
        if session.role is PeerRole.PUBLISHER:
            if self._publishers.get(show_id) is session:
                self._cancel_grace(show_id)
                self._spawn(self._set_video_state(show_id, VideoState.LIVE))
        elif session.viewer is not None:
            self._relay(show_id).join(session.viewer)

    async def _close_session(self, session: PeerSession) -> None:
        if not session.transition(PeerState.CLOSED):
            return
        self._sessions.pop(session.session_id, None)
        if session.viewer is not None:
            relay = self._relays.get(session.show_id)
            if relay is not None:
                relay.remove_viewer(session.viewer)
            else:
                session.viewer.close()
        current = asyncio.current_task()
        owned = [t for t in session.tasks if t is not current]
        for task in owned:
            task.cancel()
        await _close_pc(session.pc)
        await asyncio.gather(*owned, return_exceptions=True)
        if session.recorder is not None:
            session.recorder.close()
        self._drop_relay_if_idle(session.show_id)

    def _relay(self, show_id: str) -> ShowRelay:
        relay = self._relays.get(show_id)
        if relay is None:
            relay = ShowRelay(
                show_id,
                viewer_queue_frames=self._config.viewer_queue_frames,
                keyframe_request_interval_s=self._config.keyframe_request_interval_s,
            )
            self._relays[show_id] = relay
        return relay

    def _drop_relay_if_idle(self, show_id: str) -> None:
        relay = self._relays.get(show_id)
        if (
            relay is not None
            and relay.viewer_count == 0
            and not relay.has_source
            and show_id not in self._stream
            and not any(s.show_id == show_id for s in self._sessions.values())
        ):
            del self._relays[show_id]
            self._spawn(relay.close())

    def _spawn(self, coro: Any, session: PeerSession | None = None) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if session is not None:
            session.tasks.add(task)
            task.add_done_callback(session.tasks.discard)
        return task

    def _check_open(self) -> None:
        if self._closed:
            raise SignalingError(
                "service_closed", "The video relay is shutting down.", http_status=503
            )


async def _close_pc(pc: Any) -> None:
    """Close a peer connection; shielded because aiortc's ``close`` shares one future
    between concurrent callers, and a cancelled caller would cancel it for all."""
    await asyncio.shield(pc.close())
