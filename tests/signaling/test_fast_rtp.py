"""The relay's own RTP sender (``aiortc_hooks.FastRtpSender``) against a real aiortc viewer:
the packets, retransmissions and sender reports aiortc's sender would have made."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from aiortc.rtp import RtpPacket

from benches.synthetic import PatternTrack
from signaling import VideoState
from signaling.aiortc_hooks import FastRtpSender, ntp_now

from .support import Viewer, play, publish, running_server


def spy_rtp(viewer: Viewer) -> tuple[Any, list[RtpPacket]]:
    """The viewer's video receiver, and every RTP packet it is handed from now on."""
    receiver = viewer.pc.getTransceivers()[0].receiver
    seen: list[RtpPacket] = []
    handle = receiver._handle_rtp_packet

    async def spy(packet: RtpPacket, arrival_time_ms: int) -> None:
        seen.append(packet)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = spy
    return receiver, seen


@contextlib.asynccontextmanager
async def watching() -> AsyncIterator[tuple[Viewer, Any]]:
    """A host publishing VP8, one viewer playing it, and the relay's sender to that viewer."""
    async with running_server() as server:
        host = await publish(server.http, PatternTrack())
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        session = server.service._peers.sessions[viewer.location.rsplit("/", 1)[1]]
        try:
            yield viewer, session.pc.getSenders()[0]
        finally:
            await viewer.close()
            await host.close()


async def until(condition: Any, within: float = 5) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls what the viewer received
            await asyncio.sleep(0.01)


async def test_packets_sent_are_well_formed_rtp() -> None:
    async with watching() as (viewer, sender):
        _, seen = spy_rtp(viewer)
        await viewer.wait_frames(len(viewer.frames) + 30)
        assert isinstance(sender._run_rtp.__self__, FastRtpSender)
        media = [p for p in seen if p.ssrc == sender._ssrc]
        assert len(media) >= 30
        mid = viewer.pc.getTransceivers()[0].mid
        assert mid is not None
        now = (ntp_now() >> 14) & 0xFFFFFF  # abs-send-time: 6.18 fixed-point seconds
        for packet in media:
            assert packet.version == 2 and packet.payload_type == media[0].payload_type
            assert packet.extensions.mid == mid
            assert packet.extensions.abs_send_time is not None
            assert (now - packet.extensions.abs_send_time) & 0xFFFFFF < 3 << 18  # < 3 s ago
        numbers = [p.sequence_number for p in media]
        assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(len(numbers))]
        for packet, following in itertools.pairwise(media):
            # the marker ends a frame: the next packet starts the next timestamp
            assert bool(packet.marker) == (following.timestamp != packet.timestamp)


async def test_a_nack_is_answered_with_the_packet_again_over_rtx() -> None:
    async with watching() as (viewer, sender):
        receiver, seen = spy_rtp(viewer)
        await until(lambda: sum(p.ssrc == sender._ssrc for p in seen) >= 10)
        wanted = next(p for p in seen if p.ssrc == sender._ssrc)
        await receiver._send_rtcp_nack(sender._ssrc, [wanted.sequence_number])
        await until(lambda: any(p.ssrc == sender._rtx_ssrc for p in seen))
        rtx = next(p for p in seen if p.ssrc == sender._rtx_ssrc)
        assert rtx.payload == struct.pack("!H", wanted.sequence_number) + wanted.payload
        assert rtx.timestamp == wanted.timestamp and rtx.marker == wanted.marker
        assert rtx.extensions.mid == wanted.extensions.mid


async def test_sender_reports_and_stats_count_what_was_sent() -> None:
    async with watching() as (viewer, sender):
        receiver = viewer.pc.getTransceivers()[0].receiver

        async def reported() -> Any:
            stats = await receiver.getStats()
            return next((s for s in stats.values() if s.type == "remote-outbound-rtp"), None)

        async with asyncio.timeout(10):
            while (report := await reported()) is None or report.packetsSent < 30:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert report.ssrc == sender._ssrc
        assert report.bytesSent > 0
        # the report's clock is the sender's wall clock (NTP), within a few seconds of now
        assert abs(report.remoteTimestamp.timestamp() - time.time()) < 5
        stats = await sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        transport = next(s for s in stats.values() if s.type == "transport")
        assert outbound.packetsSent >= report.packetsSent
        assert outbound.bytesSent >= report.bytesSent
        assert transport.packetsSent >= outbound.packetsSent
        assert transport.bytesSent > outbound.bytesSent  # headers and SRTP tags on top


async def test_a_nack_for_a_packet_no_longer_kept_is_counted_and_restarts_the_viewer() -> None:
    async with running_server() as server:
        host = await publish(server.http, PatternTrack())
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        try:
            session = server.service._peers.sessions[viewer.location.rsplit("/", 1)[1]]
            sender = session.pc.getSenders()[0]
            receiver, seen = spy_rtp(viewer)
            await until(lambda: sum(p.ssrc == sender._ssrc for p in seen) >= 10)
            first = next(p for p in seen if p.ssrc == sender._ssrc).sequence_number
            before = server.service.stats()
            fast = sender._run_rtp.__self__
            assert isinstance(fast, FastRtpSender) and fast.pacer is not None
            sent: list[int] = []
            send = fast.pacer._send

            def spy_send(packets: list[tuple[int, bytes, bytes]], waited: bool) -> None:
                for seq, head, _ in packets:
                    if seq >= 0:  # (not a retransmission)
                        sent.append(struct.unpack_from("!BBHLL", head)[3])
                send(packets, waited)

            fast.pacer._send = spy_send
            await until(lambda: len(sent) >= 3)
            # a packet sent long ago (never, here): the relay cannot send it again
            await receiver._send_rtcp_nack(sender._ssrc, [(first - 5000) & 0xFFFF])
            await until(lambda: server.service.stats()["nacks_unserved"] > 0)
            assert server.service.stats()["viewer_reprimes"] == before["viewer_reprimes"] + 1
            assert session.viewer is not None and session.viewer.video.reprimes == 1
            # started again at the cached keyframe, its RTP timestamps still rise (a player
            # drops frames older than what it has shown)
            await viewer.wait_frames(len(viewer.frames) + 10)
            assert len(sent) > 10 and all(
                0 <= (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(sent)
            )
        finally:
            await viewer.close()
            await host.close()


async def test_the_viewers_remb_reaches_its_pacer() -> None:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    async with watching() as (viewer, sender):
        fast = sender._run_rtp.__self__
        assert isinstance(fast, FastRtpSender) and fast.pacer is not None
        receiver = viewer.pc.getTransceivers()[0].receiver
        await viewer.wait_frames(len(viewer.frames) + 5)
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(123_456, [sender._ssrc])
        )
        control = fast.pacer.control
        heard: list[float] = []
        told = control.remb

        def remb_spy(bps: float) -> None:
            heard.append(bps)
            told(bps)

        control.remb = remb_spy  # type: ignore[method-assign]
        await receiver._send_rtcp(remb)
        await until(lambda: 123_456 in heard)
