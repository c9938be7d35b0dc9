"""Peers: the registry and lifecycle of the relay's peer sessions, the show relays they
share, and every task the relay runs.

WHIP (``whip.py``) and WHEP (``whep.py``) make the sessions; here each one gets its peer
connection, its answer, its place in the registry, its ``201 Created``, and its end: the
peer connection closed, its tasks cancelled, its viewer taken off the show's relay, and
the relay dropped once nothing of its show is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from starlette.requests import Request
from starlette.responses import Response

from . import aiortc_hooks
from .config import SignalingConfig
from .errors import SignalingError
from .http import CORS_HEADERS, add_link_headers
from .ice import IcePolicy
from .pacing import SenderStats
from .relay import RelayTrack, ShowRelay
from .sdp import SDP_CONTENT_TYPE, audio_preferences, has_kind, video_preferences
from .sessions import PeerRole, PeerSession, PeerState

Connected = Callable[[PeerSession], None]
Lost = Callable[[PeerSession], Coroutine[Any, Any, None]]


class Peers:
    """Owns every peer session, show relay and task. ``sessions`` (session id -> session)
    is read by the WHIP and WHEP sides and changed only here. ``streaming(show_id)`` says
    whether a show has a stream state (live or reconnecting): its relay is kept then."""

    def __init__(
        self, config: SignalingConfig, ice: IcePolicy, streaming: Callable[[str], bool]
    ) -> None:
        self._config = config
        self._ice = ice
        self._streaming = streaming
        self.sessions: dict[str, PeerSession] = {}
        self._relays: dict[str, ShowRelay] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # Process totals of the paced senders; viewers' re-primes and stalls are added here
        # when their session closes (the relay's figures count the viewers it has now).
        self.sender_stats = SenderStats()

    # -- what the service reports ---------------------------------------------------------

    def shows_in_use(self) -> set[str]:
        """The shows there are peers or a relay for."""
        return {session.show_id for session in self.sessions.values()} | set(self._relays)

    def of_show(self, show_id: str) -> list[PeerSession]:
        return [s for s in self.sessions.values() if s.show_id == show_id]

    def stats(self) -> dict[str, int]:
        """Counts of the peers, tasks and relays, and the viewers' video queues."""
        viewers = sum(1 for s in self.sessions.values() if s.role is PeerRole.VIEWER)
        tasks = len(self._tasks) + sum(r.task_count for r in self._relays.values())
        queues = [r.queue_stats() for r in self._relays.values()]
        sent = self.sender_stats
        return {
            "viewers": viewers,
            "peer_connections": len(self.sessions),
            "tasks": tasks,
            "relays": len(self._relays),
            "viewer_frames_queued": sum(q["queued"] for q in queues),
            "viewer_keyframe_skips": sum(q["skips"] for q in queues),
            "viewer_frames_dropped": sum(q["dropped"] for q in queues),
            "viewer_keyframe_jumps": sum(q["jumps"] for q in queues),
            "viewer_reprimes": sent.reprimes + sum(q["reprimes"] for q in queues),
            "viewer_stalls": sent.stalls + sum(q["stalls"] for q in queues),
            "paced_bytes_queued": sent.queued_bytes,
            "paced_packets": sent.paced_packets,
            "nacks_served": sent.nacks_served,
            "nacks_unserved": sent.nacks_unserved,
            "nacks_skipped": sent.nacks_skipped,
        }

    # -- requests ---------------------------------------------------------------------

    def check_open(self) -> None:
        if self._closed:
            raise SignalingError("service_closed", "The video relay is shutting down.")

    def find_session(self, request: Request, role: PeerRole) -> PeerSession:
        session = self.sessions.get(request.path_params["session_id"])
        if (
            session is None
            or session.role is not role
            or session.show_id != request.path_params["show_id"]
        ):
            raise SignalingError("session_not_found", "No such session.")
        return session

    def created(self, session: PeerSession, prefix: str) -> Response:
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

    # -- peer connections -------------------------------------------------------------

    def new_pc(self) -> Any:
        servers = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in self._ice.servers("relay")
        ]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        aiortc_hooks.accept_rsa_peers(pc)  # (RSA and ECDSA peers, whichever DTLS role)
        return pc

    async def negotiate(self, session: PeerSession, offer: Any, body: bytes, codec: Any) -> None:
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
            await close_pc(pc)
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
            if kind == "video":
                relay = self.relay(session.show_id)
                fast = aiortc_hooks.send_fast(
                    transceiver.sender,
                    self.sender_stats,
                    stream_bps=lambda: relay.video_bitrate_bps,
                )

                def cannot_decode() -> None:
                    relay.viewer_cannot_decode(viewer)

                fast.on_unservable = cannot_decode
                aiortc_hooks.on_keyframe_request(transceiver.sender, cannot_decode)
            else:
                aiortc_hooks.send_fast(transceiver.sender, self.sender_stats)
        if kind == "audio":
            transceiver.setCodecPreferences(audio_preferences())
        elif codec is not None:
            transceiver.setCodecPreferences(video_preferences(codec))

    # -- the sessions' lifecycle ----------------------------------------------------------

    def register(
        self,
        session: PeerSession,
        *,
        connected: Connected | None = None,
        lost: Lost | None = None,
    ) -> None:
        """Own ``session`` and follow its connection. ``connected`` runs once it first
        connects (by default a viewer joins its show's relay); ``lost`` when it fails or
        closes without a DELETE (by default the session is closed)."""
        self.sessions[session.session_id] = session
        on_connected = connected or self._join_relay
        on_lost = lost or self.close_session

        @session.pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        def on_state() -> None:
            state = session.pc.connectionState
            if state == "connected":
                self._connected(session, on_connected)
            elif state in ("failed", "closed") and session.state is not PeerState.CLOSED:
                self.spawn(on_lost(session))

    def _connected(self, session: PeerSession, then: Connected) -> None:
        if session.state is not PeerState.NEW:
            return
        session.transition(PeerState.CONNECTED)
        then(session)

    def _join_relay(self, session: PeerSession) -> None:
        if session.viewer is not None:
            self.relay(session.show_id).join(session.viewer)

    async def close_session(self, session: PeerSession) -> None:
        if not session.transition(PeerState.CLOSED):
            return
        self.sessions.pop(session.session_id, None)
        if session.viewer is not None:
            self.sender_stats.reprimes += session.viewer.video.reprimes
            self.sender_stats.stalls += session.viewer.video.stalls
            relay = self._relays.get(session.show_id)
            if relay is not None:
                relay.remove_viewer(session.viewer)
            else:
                session.viewer.close()
        current = asyncio.current_task()
        owned = [t for t in session.tasks if t is not current]
        for task in owned:
            task.cancel()
        await close_pc(session.pc)
        await asyncio.gather(*owned, return_exceptions=True)
        if session.recorder is not None:
            session.recorder.close()
        self.drop_relay_if_idle(session.show_id)

    async def close_show(self, show_id: str) -> None:
        """Close every session of ``show_id``, and its relay once idle."""
        for session in self.of_show(show_id):
            await self.close_session(session)
        self.drop_relay_if_idle(show_id)

    # -- relays -------------------------------------------------------------------------

    def relay(self, show_id: str) -> ShowRelay:
        relay = self._relays.get(show_id)
        if relay is None:
            relay = ShowRelay(
                show_id,
                viewer_queue_frames=self._config.viewer_queue_frames,
                keyframe_request_interval_s=self._config.keyframe_request_interval_s,
            )
            self._relays[show_id] = relay
        return relay

    def drop_relay_if_idle(self, show_id: str) -> None:
        relay = self._relays.get(show_id)
        if (
            relay is not None
            and relay.viewer_count == 0
            and not relay.has_source
            and not relay.pinned
            and relay.tap_count == 0
            and not self._streaming(show_id)
            and not any(s.show_id == show_id for s in self.sessions.values())
        ):
            del self._relays[show_id]
            self.spawn(relay.close())

    # -- tasks ----------------------------------------------------------------------------

    def spawn(self, coro: Any, session: PeerSession | None = None) -> asyncio.Task[None]:
        """Run ``coro`` as a task the service owns (and ``session`` too, when given)."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if session is not None:
            session.tasks.add(task)
            task.add_done_callback(session.tasks.discard)
        return task

    def refuse_new(self) -> None:
        """From now on every publish and play is answered 503 ``service_closed``."""
        self._closed = True

    async def close(self) -> None:
        """Close every session and relay and cancel every task."""
        await asyncio.gather(*[self.close_session(s) for s in list(self.sessions.values())])
        for relay in list(self._relays.values()):
            await relay.close()
        self._relays.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def close_pc(pc: Any) -> None:
    """Close a peer connection; shielded because aiortc's ``close`` shares one future
    between concurrent callers, and a cancelled caller would cancel it for all."""
    await asyncio.shield(pc.close())
