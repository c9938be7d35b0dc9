"""WHIP ingest (RFC 9725): a show's host publishes, and the show's stream state follows.

``WhipIngest`` answers the host's offer, feeds the host's packets to the show's relay (and
recorder), and ends or loses the publisher; ``VideoStates`` holds each show's stream state
(``offline -> live -> reconnecting | paused -> live | offline``) and reports every change to
``ShowAccess.video_state_changed``. A publisher whose connection failed leaves its show
reconnecting for ``reconnect_grace_s``, then offline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError
from starlette.requests import Request
from starlette.responses import Response

from . import aiortc_hooks
from .access import VIDEO_TRANSITIONS, ShowAccess, VideoHealth, VideoState
from .config import SignalingConfig
from .errors import SignalingError
from .hls import HlsOrigin
from .http import bearer_token, read_sdp, require_sdp, token_digest
from .peers import Peers, close_pc
from .recording import Recorder
from .relay import ShowRelay
from .sdp import choose_video_codec, has_kind, parse_offer, require_candidates
from .sessions import PeerRole, PeerSession, PeerState

logger = logging.getLogger(__name__)

# How often a publisher's health (codec, keyframe interval, bitrate) is reported.
HEALTH_REPORT_S = 2.0


class VideoStates:
    """Each show's stream state; an offline show has none."""

    def __init__(self, access: ShowAccess) -> None:
        self._access = access
        self._states: dict[str, VideoState] = {}
        self._paused: set[str] = set()  # not streaming, but said so until live or offline
        # Told of every change first, on the event loop (the HLS packager ends on offline).
        self.listeners: list[Callable[[str, VideoState], None]] = []

    def get(self, show_id: str) -> VideoState:
        if show_id in self._paused:
            return VideoState.PAUSED
        return self._states.get(show_id, VideoState.OFFLINE)

    def streaming(self, show_id: str) -> bool:
        """True while the show is live or reconnecting."""
        return show_id in self._states

    def shows(self) -> list[str]:
        """The shows streaming or paused here."""
        return [*self._states, *self._paused]

    def forget(self, show_id: str) -> None:
        """Drop the show's state without announcing it (another process serves it now)."""
        self._states.pop(show_id, None)
        self._paused.discard(show_id)

    async def set(self, show_id: str, state: VideoState) -> None:
        current = self.get(show_id)
        if state is current:
            return
        VIDEO_TRANSITIONS.check(current, state)
        self._paused.discard(show_id)
        if state in (VideoState.OFFLINE, VideoState.PAUSED):
            self._states.pop(show_id, None)
            if state is VideoState.PAUSED:
                self._paused.add(show_id)
        else:
            self._states[show_id] = state
        for listener in self.listeners:
            listener(show_id, state)
        try:
            await self._access.video_state_changed(show_id, state)
        except Exception:
            logger.exception("video_state_changed(%s, %s) failed", show_id, state)


class WhipIngest:
    """The POST /whip/{show_id} endpoint and the publishers it makes, one per show."""

    def __init__(
        self,
        config: SignalingConfig,
        access: ShowAccess,
        peers: Peers,
        states: VideoStates,
        hls: HlsOrigin,
    ) -> None:
        self._config = config
        self._hls = hls
        self._access = access
        self._peers = peers
        self._states = states
        self.reconnect_grace_s = config.reconnect_grace_s
        self.publisher_recheck_s = config.publisher_recheck_s
        self.health_report_s = HEALTH_REPORT_S
        self._publishers: dict[str, PeerSession] = {}
        self._grace: dict[str, asyncio.Task[None]] = {}

    @property
    def publisher_count(self) -> int:
        return len(self._publishers)

    async def publish(self, request: Request) -> Response:
        self._peers.check_open()
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
            )
        require_candidates(offer)
        self._check_publisher(show_id, identity)
        session = PeerSession(
            show_id,
            identity,
            PeerRole.PUBLISHER,
            self._peers.new_pc(),
            token_digest(bearer_token(request)),
        )
        await self._peers.negotiate(session, offer, body, codec)
        # Checked again: another request may have won while this one negotiated.
        try:
            self._check_publisher(show_id, identity)
        except SignalingError:
            await close_pc(session.pc)
            raise
        # The host's packets must not wait behind the fan-out (see aiortc_hooks).
        aiortc_hooks.drain_reads(session.pc)
        previous = self._publishers.get(show_id)
        if previous is not None:
            # The same host reconnecting takes the show over; viewers stay attached.
            await self._lose_publisher(previous)
        self._start_publisher(session, codec)
        return self._peers.created(session, "whip")

    def _check_publisher(self, show_id: str, identity: str) -> None:
        current = self._publishers.get(show_id)
        if current is not None and current.identity != identity:
            raise SignalingError(
                "publisher_conflict", "Another publisher is already live on this show."
            )

    def _start_publisher(self, session: PeerSession, codec: Any) -> None:
        show_id = session.show_id
        self._peers.register(session, connected=self._connected, lost=self._lose_publisher)
        self._publishers[show_id] = session
        relay = self._peers.relay(show_id)
        receiver = session.video_receiver
        relay.attach_source(session, codec.mimeType.lower(), codec, lambda: self._pli(receiver))
        self._hls.publisher_attached(relay)  # (H.264: packaged for HLS too)
        if self._config.recording_dir is not None:
            session.recorder = Recorder(
                self._config.recording_dir, show_id, session.session_id, codec.mimeType.lower()
            )
        for transceiver in session.pc.getTransceivers():
            track = transceiver.receiver.track
            self._peers.spawn(self._pump(session, relay, transceiver.kind, track), session)
        self._end_viewers_of_other_codecs(show_id, codec.mimeType.lower())
        self._peers.spawn(self._recheck_every(session), session)
        self._peers.spawn(self._report_health_every(session, relay), session)

    async def _report_health_every(self, session: PeerSession, relay: ShowRelay) -> None:
        """The publisher's health, to ``ShowAccess.video_health_reported`` (from its first
        keyframe on, while it is the show's publisher)."""
        while session.state is not PeerState.CLOSED:
            await asyncio.sleep(self.health_report_s)
            gap = relay.keyframe_gap_s
            if self._publishers.get(session.show_id) is not session or gap is None:
                continue
            health = VideoHealth(
                codec=relay.video_mime or "",
                keyframe_interval_s=gap,
                bitrate_bps=round(relay.video_bitrate_bps),
            )
            try:
                await self._access.video_health_reported(session.show_id, session.identity, health)
            except Exception:  # (Redis is down: reported again next time)
                logger.exception("video_health_reported(%s) failed", session.show_id)

    async def _recheck_every(self, session: PeerSession) -> None:
        while session.state is not PeerState.CLOSED:
            await asyncio.sleep(self.publisher_recheck_s)
            await self._recheck(session)

    async def recheck(self, show_id: str) -> None:
        """Ask now whether the show's publisher here may go on; end it if not."""
        session = self._publishers.get(show_id)
        if session is not None:
            await self._recheck(session)

    async def _recheck(self, session: PeerSession) -> None:
        try:
            allowed = await self._access.publisher_allowed(session.show_id, session.identity)
        except Exception:  # (the database is down: the broadcast goes on, asked again later)
            logger.exception("publisher_allowed(%s) failed", session.show_id)
            return
        if not allowed and session.state is not PeerState.CLOSED:
            logger.info("publisher of %s no longer allowed: ended", session.show_id)
            await self.end_publisher(session, VideoState.OFFLINE)

    def _end_viewers_of_other_codecs(self, show_id: str, video_mime: str) -> None:
        """Viewers who negotiated another codec before this host came cannot be served
        without transcoding: their sessions end, and their players may ask again."""
        for session in self._peers.of_show(show_id):
            viewer = session.viewer
            if viewer is not None and viewer.video_mime not in (None, video_mime):
                self._peers.spawn(self._peers.close_session(session))

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
            self._peers.spawn(self._lose_publisher(session))

    def _connected(self, session: PeerSession) -> None:
        show_id = session.show_id
        if self._publishers.get(show_id) is session:
            self._cancel_grace(show_id)
            self._peers.spawn(self._states.set(show_id, VideoState.LIVE))

    async def _lose_publisher(self, session: PeerSession) -> None:
        """The host's connection failed or was taken over: the show is reconnecting."""
        show_id = session.show_id
        if self._publishers.get(show_id) is session:
            del self._publishers[show_id]
            self._peers.relay(show_id).detach_source(session)
            if self._states.get(show_id) is VideoState.LIVE:
                await self._states.set(show_id, VideoState.RECONNECTING)
                self._start_grace(show_id)
        await self._peers.close_session(session)

    async def end_publisher(
        self, session: PeerSession, state: VideoState = VideoState.PAUSED
    ) -> None:
        """The host stopped the broadcast (DELETE): the show is paused (viewers stay
        attached and resume when the host publishes again); ``OFFLINE`` when the publisher
        may not go on (its stream key was revoked)."""
        show_id = session.show_id
        if self._publishers.get(show_id) is session:
            del self._publishers[show_id]
            self._peers.relay(show_id).detach_source(session)
            self._cancel_grace(show_id)
            await self._states.set(show_id, state)
        await self._peers.close_session(session)

    async def end_show(self, show_id: str) -> None:
        """The show ended: its publisher is let go and its stream goes offline."""
        self._cancel_grace(show_id)
        publisher = self._publishers.pop(show_id, None)
        if publisher is not None:
            self._peers.relay(show_id).detach_source(publisher)
        await self._states.set(show_id, VideoState.OFFLINE)

    def _start_grace(self, show_id: str) -> None:
        async def expire() -> None:
            await asyncio.sleep(self.reconnect_grace_s)
            self._grace.pop(show_id, None)
            if show_id not in self._publishers:
                await self._states.set(show_id, VideoState.OFFLINE)
                self._peers.drop_relay_if_idle(show_id)

        self._cancel_grace(show_id)
        self._grace[show_id] = self._peers.spawn(expire())

    def _cancel_grace(self, show_id: str) -> None:
        task = self._grace.pop(show_id, None)
        if task is not None:
            task.cancel()

    def forget_show(self, show_id: str) -> None:
        """Let go of the show's publisher, grace timer and state, announcing nothing."""
        self._cancel_grace(show_id)
        if show_id in self._publishers:
            publisher = self._publishers.pop(show_id)
            self._peers.relay(show_id).detach_source(publisher)
        self._states.forget(show_id)

    async def close(self) -> None:
        """Cancel every grace timer; every show's stream goes offline."""
        for task in list(self._grace.values()):
            task.cancel()
        for show_id in self._states.shows():  # the broadcast ends with this process
            await self._states.set(show_id, VideoState.OFFLINE)
