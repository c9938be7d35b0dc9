"""Interop with GStreamer 1.22's webrtcbin (Debian's packages), unmodified, in H.264 and VP8.

The GStreamer clients are ``gst_client.py`` run by Debian's ``/usr/bin/python3``; their
WHIP/WHEP exchange is written there (RFC 9725, no trickle). The relay runs in the test's
loop behind uvicorn. libnice never offers loopback candidates, so each client runs in a
network namespace of its own joined to the test's by one veth pair and nothing else
(``benches.netns.ImpairedLink`` without any impairment): the relay offers only its end of
that pair, the client only the other end, and nothing can reach another host.

A viewer joins mid-GOP (``JOIN_S`` into the publisher's 10 s keyframe interval, keyframe
requests dropped as OBS does): the relay hands it the cached GOP. It must connect (DTLS:
webrtcbin holds an RSA certificate and is the DTLS server of the relay's
``a=setup:active``), decode its first frame soon after, and lose no packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from benches import netns
from benches.synthetic import EncodedPatternTrack
from signaling import SignalingConfig, SignalingService, VideoState

from .support import FakeShows, end, play, publish

GST_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi and python3-gst-1.0
GST_CLIENT = Path(__file__).with_name("gst_client.py")
DEBIAN_PACKAGES = (
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
    "gstreamer1.0-nice gstreamer1.0-libav gstreamer1.0-tools python3-gi python3-gst-1.0 "
    "gir1.2-gst-plugins-bad-1.0"
)
JOIN_S = 5.0  # the mid-GOP viewer joins this long after the publisher's first keyframe
PLAY_S = 4.0  # how long a GStreamer viewer plays once connected
FIRST_FRAME_WITHIN_S = 1.0  # a viewer's first decoded frame, from its connection
STALL_S = 0.5  # the longest pause between a viewer's decoded frames (issue 15's bound)
WAIT_S = 20.0  # any single wait


def _require_gstreamer() -> None:
    if not os.path.exists(GST_PYTHON):
        pytest.fail(f"{GST_PYTHON} is missing: the GStreamer interop tests need Debian's python3")
    probe = subprocess.run(
        [GST_PYTHON, str(GST_CLIENT), "check"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.fail(
            "GStreamer's webrtcbin is not usable here "
            f"({probe.stdout.strip() or probe.stderr.strip()[-400:]}); "
            f"./dev test installs it (ensure_gstreamer), or: apt-get install {DEBIAN_PACKAGES}"
        )


@pytest.fixture(scope="module")
def gstreamer() -> None:
    _require_gstreamer()
    reason = netns.available()
    if reason is not None:
        pytest.fail(f"the GStreamer interop tests need a network namespace: {reason}")


@pytest.fixture
def link(gstreamer: None) -> Iterator[netns.ImpairedLink]:
    """The client's namespace (the link's "server" side) and the relay's address (the other
    end, in the test's own namespace)."""
    with netns.ImpairedLink(viewer_ns=False) as made:
        yield made


@dataclass
class Relay:
    service: SignalingService
    gate: FakeShows
    http: httpx.AsyncClient  # in-process, for aiortc clients
    base_url: str  # over the veth, for GStreamer clients


@contextlib.asynccontextmanager
async def relay_at(address: str) -> AsyncIterator[Relay]:
    gate = FakeShows()
    service = SignalingService(SignalingConfig(ice_servers=[], ice_host_addresses=[address]), gate)
    app = Starlette(routes=service.routes())
    server = uvicorn.Server(
        uvicorn.Config(app, host=address, port=0, lifespan="off", log_config=None)
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    transport = httpx.ASGITransport(app=app)
    try:
        async with asyncio.timeout(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            yield Relay(service, gate, http, f"http://{address}:{port}")
    finally:
        await service.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class GstClient:
    """One ``gst_client.py`` process in the link's client namespace."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.lines: list[dict[str, Any]] = []

    @classmethod
    async def start(
        cls, link: netns.ImpairedLink, stderr: Path, *args: str, give_up_s: float = WAIT_S * 2
    ) -> GstClient:
        """``give_up_s``: the client itself gives up (and prints its result) after this."""
        command = link.command(
            "server", [GST_PYTHON, str(GST_CLIENT), *args, "--timeout", str(give_up_s)]
        )
        with stderr.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=err
            )
        return cls(process, stderr)

    async def next_line(self, within: float = WAIT_S) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise AssertionError(f"no word from the GStreamer client: {self.tail()}") from None
        if not line:
            raise AssertionError(f"the GStreamer client ended: {self.tail()}")
        record: dict[str, Any] = json.loads(line)
        self.lines.append(record)
        return record

    async def result(self, within: float = WAIT_S) -> dict[str, Any]:
        while True:
            record = await self.next_line(within)
            if record["event"] == "result":
                return record

    async def stop(self) -> dict[str, Any]:
        """SIGTERM (the client DELETEs its session) and its result line."""
        self.process.send_signal(signal.SIGTERM)
        return await self.result(10)

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await asyncio.wait_for(self.process.wait(), 10)

    def tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-2000:]


def assert_connected(result: dict[str, Any]) -> None:
    assert result["error"] is None, result
    assert "connected" in result["states"]["dtls"], result["states"]
    assert "connected" in result["states"]["connection"], result["states"]
    # webrtcbin (RSA certificate) is the DTLS server: the relay answers as the client
    assert result["answer_setup"] == ["a=setup:active"], result


def assert_local_candidates(result: dict[str, Any], link: netns.ImpairedLink) -> None:
    ipv4 = [c.split()[4] for c in result["offer_candidates"] if "." in c.split()[4]]
    assert ipv4 and set(ipv4) == {link.server_address}, result["offer_candidates"]


def udp_receive_buffer_errors(link: netns.ImpairedLink) -> int:
    """The client namespace's count of UDP datagrams dropped for a full socket buffer."""
    snmp = subprocess.run(
        link.command("server", ["cat", "/proc/net/snmp"]),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    header, values = (line.split()[1:] for line in snmp.splitlines() if line.startswith("Udp:"))
    return int(dict(zip(header, values, strict=True))["RcvbufErrors"])


def played(result: dict[str, Any]) -> str:
    keys = (
        "frames_decoded",
        "first_frame_at",
        "connected_at",
        "largest_gap_s",
        "packets_received",
        "packets_lost",
        "nack_sent",
        "pli_sent",
        "udp_rcvbuf_errors",
    )
    return json.dumps({key: result.get(key) for key in keys})


@pytest.mark.parametrize(
    ("codec", "decoder"),
    [("h264", "avdec_h264"), ("h264", "openh264dec"), ("vp8", "vp8dec")],
)
async def test_a_gstreamer_viewer_joins_a_gstreamer_publisher_mid_gop(
    codec: str, decoder: str, link: netns.ImpairedLink, tmp_path: Path
) -> None:
    clients: list[GstClient] = []
    async with relay_at(link.viewer_address) as relay:
        early = None
        try:
            host = await GstClient.start(
                link,
                tmp_path / "publish.log",
                "publish",
                f"{relay.base_url}/whip/show1",
                "--token=host:show1",
                f"--codec={codec}",
                "--keyframe-s=10",
            )
            clients.append(host)
            first = await host.next_line()
            assert first["event"] == "first_keyframe", first
            loop = asyncio.get_running_loop()
            keyframe_seen = loop.time()
            await relay.gate.wait_state("show1", VideoState.LIVE)
            # an aiortc viewer from the GOP's start decodes what GStreamer sends
            early = await play(relay.http, token="viewer:show1:aiortc")
            await early.wait_frames(30, within=WAIT_S)
            await asyncio.sleep(max(0.0, keyframe_seen + JOIN_S - loop.time()))
            viewer = await GstClient.start(
                link,
                tmp_path / "play.log",
                "play",
                f"{relay.base_url}/whep/show1",
                "--token=viewer:show1:gst",
                f"--codec={codec}",
                f"--decoder={decoder}",
                f"--duration={PLAY_S}",
            )
            clients.append(viewer)
            buffer_errors = udp_receive_buffer_errors(link)
            seen = await viewer.result(WAIT_S + PLAY_S)
            seen["udp_rcvbuf_errors"] = udp_receive_buffer_errors(link) - buffer_errors
            print(f"{decoder} viewer joining {JOIN_S} s into the GOP: {played(seen)}")
            assert_connected(seen)
            assert_local_candidates(seen, link)
            assert seen["delete_status"] == 200, seen
            assert seen["frames_decoded"] >= PLAY_S * 30 * 0.8, played(seen)
            assert seen["first_frame_at"] - seen["connected_at"] < FIRST_FRAME_WITHIN_S, played(
                seen
            )
            sent = await host.stop()
            print(
                f"{codec} publisher: {sent['keyframes_sent']} keyframes sent since connected, "
                f"{sent['keyframe_requests_dropped']} keyframe requests dropped"
            )
            assert_connected(sent)
            assert_local_candidates(sent, link)
            assert sent["delete_status"] == 200, sent
            assert sent["keyframe_requests_dropped"] >= 1, sent  # the relay asked; none made
            await relay.gate.wait_state("show1", VideoState.PAUSED)
            assert len(early.frames) >= (JOIN_S + PLAY_S) * 30 * 0.8, len(early.frames)
            assert seen["packets_lost"] == 0, played(seen)
            assert seen["largest_gap_s"] < STALL_S, played(seen)
        finally:
            if early is not None:
                await early.close()
            for client in clients:
                await client.kill()


@pytest.mark.parametrize(("codec", "decoder"), [("h264", "openh264dec"), ("vp8", "vp8dec")])
async def test_a_gstreamer_viewer_plays_an_aiortc_publisher(
    codec: str, decoder: str, link: netns.ImpairedLink, tmp_path: Path
) -> None:
    async with relay_at(link.viewer_address) as relay:
        host = await publish(relay.http, EncodedPatternTrack(codec, gop=60), codec=codec)
        viewer = None
        try:
            await relay.gate.wait_state("show1", VideoState.LIVE)
            viewer = await GstClient.start(
                link,
                tmp_path / "play.log",
                "play",
                f"{relay.base_url}/whep/show1",
                "--token=viewer:show1",
                f"--codec={codec}",
                f"--decoder={decoder}",
                "--duration=2",
            )
            seen = await viewer.result(WAIT_S)
            print(f"{decoder} viewer of an aiortc publisher: {played(seen)}")
            assert_connected(seen)
            assert seen["frames_decoded"] >= 2 * 30 * 0.8, played(seen)
            assert seen["first_frame_at"] - seen["connected_at"] < FIRST_FRAME_WITHIN_S
            assert seen["packets_lost"] == 0, played(seen)
            assert (await end(relay.http, host)).status_code == 200
        finally:
            if viewer is not None:
                await viewer.kill()
            await host.close()
