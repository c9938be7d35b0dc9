"""Test gate, app and real aiortc WHIP/WHEP clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from starlette.applications import Starlette

from benches.synthetic import EncodedPatternTrack, PatternTrack, read_index
from signaling import ShowAccess, SignalingConfig, SignalingError, SignalingService, VideoState
from signaling.access import VideoHealth
from signaling.aiortc_hooks import ice_host_addresses

LOOPBACK = ["127.0.0.1"]


@dataclass
class FakeShows:
    """A ShowAccess over plain tokens ``role:show[:device]``; the identity is the token."""

    live: set[str] = field(default_factory=lambda: {"show1"})
    states: list[tuple[str, VideoState]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: set[str] = field(default_factory=set)  # identities no longer allowed
    health: list[tuple[str, str, VideoHealth]] = field(default_factory=list)

    def _check(self, show_id: str, bearer: str | None, role: str) -> str:
        if bearer is None:
            raise SignalingError("unauthorized", "A bearer token is required.")
        parts = bearer.split(":")
        if len(parts) not in (2, 3) or parts[0] not in ("host", "viewer"):
            raise SignalingError("unauthorized", "The token is not valid.")
        if parts[1] != show_id or (role == "host" and parts[0] != "host"):
            raise SignalingError("forbidden", "The token does not allow this.")
        return bearer

    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        identity = self._check(show_id, bearer, "host")
        if show_id not in self.live:
            raise SignalingError("show_not_live", "The show is not live.")
        return identity

    async def publisher_allowed(self, show_id: str, identity: str) -> bool:
        return identity not in self.revoked

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        return self._check(show_id, bearer, "viewer")

    async def video_state_changed(self, show_id: str, state: VideoState) -> None:
        self.states.append((show_id, state))
        self.changed.set()

    async def video_health_reported(self, show_id: str, identity: str, health: VideoHealth) -> None:
        self.health.append((show_id, identity, health))

    async def wait_state(self, show_id: str, state: VideoState, within: float = 10) -> None:
        async with asyncio.timeout(within):
            while not self.states or self.states[-1] != (show_id, state):
                self.changed.clear()
                await self.changed.wait()


NOTHING_LEFT = {
    "publishers": 0,
    "viewers": 0,
    "peer_connections": 0,
    "tasks": 0,
    "relays": 0,
    "viewer_frames_queued": 0,
    "viewer_keyframe_skips": 0,
    "viewer_frames_dropped": 0,
    "viewer_keyframe_jumps": 0,
    "paced_bytes_queued": 0,
}
"""What ``SignalingService.stats()`` says of what it owns once every peer, relay and task is
gone (``owned``); the other figures are process totals (NACKs, re-primes, stalls)."""


def owned(stats: dict[str, int]) -> dict[str, int]:
    return {key: stats[key] for key in NOTHING_LEFT}


_gate_check: type[ShowAccess] = FakeShows  # FakeShows satisfies the protocol


@dataclass
class Server:
    service: SignalingService
    gate: FakeShows
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def running_server(**config: Any) -> AsyncIterator[Server]:
    cfg = SignalingConfig(
        ice_servers=config.pop("ice_servers", []), ice_host_addresses=LOOPBACK, **config
    )
    gate = FakeShows()
    service = SignalingService(cfg, gate)
    app = Starlette(routes=service.routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        try:
            yield Server(service, gate, http)
        finally:
            await service.close()


def prefer(transceiver: Any, codec: str) -> None:
    caps = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in caps if c.mimeType.lower() == f"video/{codec}"][:1]
    rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(chosen + rtx)


@dataclass
class Client:
    pc: Any
    location: str
    response: httpx.Response

    async def close(self) -> None:
        await self.pc.close()


def _use_certificate(pc: Any, certificate: Any) -> None:
    """A client with a DTLS certificate of the test's choosing (aiortc has no public way)."""
    if certificate is not None:
        pc._RTCPeerConnection__certificates = [certificate]


async def _exchange(
    http: httpx.AsyncClient, pc: Any, url: str, token: str | None, setup: str | None = None
) -> httpx.Response:
    """Offer, POST, answer. ``setup="active"`` offers to be the DTLS client (the relay is
    then the DTLS server), as some clients do instead of aiortc's ``actpass``."""
    with ice_host_addresses(LOOPBACK):
        await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    sdp = pc.localDescription.sdp
    if setup is not None:
        sdp = sdp.replace("a=setup:actpass", f"a=setup:{setup}")
    response = await http.post(url, content=sdp, headers=headers)
    if response.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    return response


async def publish(
    http: httpx.AsyncClient,
    track: MediaStreamTrack,
    show: str = "show1",
    token: str | None = "host:show1",  # noqa: S107
    codec: str = "vp8",
    audio: MediaStreamTrack | None = None,
    certificate: Any = None,
) -> Client:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _use_certificate(pc, certificate)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    prefer(transceiver, codec)
    if audio is not None:
        pc.addTransceiver(audio, direction="sendonly")
    response = await _exchange(http, pc, f"/whip/{show}", token)
    if response.status_code != 201:
        await pc.close()
        raise AssertionError(f"publish failed: {response.status_code} {response.text}")
    return Client(pc, response.headers["location"], response)


@dataclass
class Viewer(Client):
    frames: list[tuple[int, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.pc.close()

    async def wait_frames(self, count: int, within: float = 10) -> None:
        async with asyncio.timeout(within):
            while len(self.frames) < count:  # noqa: ASYNC110 - polls a list the track fills
                await asyncio.sleep(0.02)


async def play(
    http: httpx.AsyncClient,
    show: str = "show1",
    token: str | None = "viewer:show1",  # noqa: S107
    audio: bool = False,
    certificate: Any = None,
    setup: str | None = None,
) -> Viewer:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _use_certificate(pc, certificate)
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", lambda track: tracks.put_nowait(track) if track.kind == "video" else None)
    response = await _exchange(http, pc, f"/whep/{show}", token, setup)
    if response.status_code != 201:
        await pc.close()
        raise AssertionError(f"play failed: {response.status_code} {response.text}")
    viewer = Viewer(pc, response.headers["location"], response)
    track = await tracks.get()

    async def consume() -> None:
        try:
            while True:
                frame = await track.recv()
                viewer.frames.append((read_index(frame), time.monotonic()))
        except MediaStreamError:
            pass

    viewer.task = asyncio.get_running_loop().create_task(consume())
    return viewer


async def offer_whip(
    http: httpx.AsyncClient, token: str | None, show: str = "show1", **headers: str
) -> httpx.Response:
    """POST a real publisher's offer and return the raw response (the peer is closed)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(PatternTrack(), direction="sendonly")
    try:
        return await _exchange(http, pc, f"/whip/{show}", token)
    finally:
        await pc.close()


async def wait_index(track: EncodedPatternTrack, index: int) -> None:
    async with asyncio.timeout(10):
        while track.index < index:  # noqa: ASYNC110 - polls the publisher's frame counter
            await asyncio.sleep(0.02)


async def end(http: httpx.AsyncClient, client: Any, token: str | None = "") -> httpx.Response:
    """DELETE a session as RFC 9725 clients do: with the token that opened it.

    ``token=None`` sends none; a string other than "" sends that one instead.
    """
    headers: dict[str, str] = {}
    sent = (
        client.response.request.headers.get("authorization")
        if token == ""
        else (None if token is None else f"Bearer {token}")
    )
    if sent:
        headers["Authorization"] = sent
    return await http.delete(client.location, headers=headers)


@contextlib.asynccontextmanager
async def app_process(settings: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """One app (as one worker process would run it) and an HTTP client to it."""
    from web.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield app, http
