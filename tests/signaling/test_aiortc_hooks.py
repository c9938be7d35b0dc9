"""Fails when a private aiortc/aioice hook the relay relies on changes.

See ``signaling/aiortc_hooks.py`` for what each hook is used for.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import inspect
import socket
import threading
from importlib.metadata import version
from typing import Any

import aioice.ice
import aiortc.clock
import aiortc.rtcdtlstransport
import aiortc.rtcicetransport
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import OpenSSL.SSL
import pylibsrtp
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from signaling import aiortc_hooks

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_aiortc_is_the_pinned_version() -> None:
    assert version("aiortc") == "1.16.0"


def test_receiver_decoder_thread_looks_up_get_decoder_in_its_module() -> None:
    source = inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "decoder = get_decoder(codec)" in source
    assert "decoder.decode(encoded_frame)" in source
    assert params(aiortc.rtcrtpreceiver.decoder_worker) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    receive = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.receive)
    assert "self.__decoder_thread = threading.Thread(" in receive
    assert "target=decoder_worker" in receive
    init = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.__init__)
    assert "self.__decoder_thread: Optional[threading.Thread] = None" in init


def test_receiver_pli_hook() -> None:
    assert params(aiortc.rtcrtpreceiver.RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert inspect.iscoroutinefunction(aiortc.rtcrtpreceiver.RTCRtpReceiver._send_rtcp_pli)


def test_sender_keyframe_request_hook() -> None:
    sender = aiortc.rtcrtpsender.RTCRtpSender
    assert params(sender._send_keyframe) == ["self"]
    rtcp = inspect.getsource(sender._handle_rtcp_packet)
    assert "self._send_keyframe()" in rtcp
    assert "RTCP_PSFB_PLI" in rtcp and "RTCP_PSFB_FIR" in rtcp


def test_sender_packs_packets_instead_of_encoding() -> None:
    source = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame)
    assert "self.__encoder = get_encoder(codec)" in source
    assert "isinstance(data, Frame)" in source
    assert "self.__encoder.pack(data)" in source
    assert params(Encoder.pack) == ["self", "packet"]
    packet = av.Packet(b"\x10\x02\x00\x9d\x01\x2a")
    packet.pts = 3000
    packet.time_base = aiortc_hooks.PassthroughDecoder(VP8).time_base
    payloads, timestamp = get_encoder(VP8).pack(packet)
    assert timestamp == 3000 and payloads


def test_aioice_gathers_host_addresses_from_its_module_global() -> None:
    assert params(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "addresses = get_host_addresses(" in source


def test_passthrough_decoder_yields_packets() -> None:
    decoder = aiortc_hooks.PassthroughDecoder(VP8)
    (packet,) = decoder.decode(JitterFrame(data=b"abc", timestamp=6000))
    assert bytes(packet) == b"abc"
    assert packet.pts == 6000
    assert packet.time_base == decoder.time_base


def test_dispatcher_only_changes_marked_receivers() -> None:
    aiortc_hooks.install()

    class Marked:
        _RTCRtpReceiver__decoder_thread: threading.Thread | None = None

    marked = Marked()
    aiortc_hooks.receive_encoded(marked)
    found: list[object] = []

    def in_thread() -> None:
        found.append(aiortc.rtcrtpreceiver.get_decoder(VP8))  # type: ignore[attr-defined]

    thread = threading.Thread(target=in_thread)
    marked._RTCRtpReceiver__decoder_thread = thread
    thread.start()
    thread.join()
    other = threading.Thread(target=in_thread)
    other.start()
    other.join()
    assert isinstance(found[0], aiortc_hooks.PassthroughDecoder)
    assert not isinstance(found[1], aiortc_hooks.PassthroughDecoder)


async def test_ice_host_addresses_restrict_gathering() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video")
    try:
        with aiortc_hooks.ice_host_addresses(["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createOffer())
        candidates = [
            line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")
        ]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
        assert aioice.ice.get_host_addresses(
            True, False
        ) == aiortc_hooks._aioice_get_host_addresses(use_ipv4=True, use_ipv6=False)
    finally:
        await asyncio.shield(pc.close())


def test_senders_start_in_tasks_made_by_the_description_calls() -> None:
    # shared_packing() reaches the senders through the context these tasks copy.
    pc = aiortc.rtcpeerconnection.RTCPeerConnection
    for method in (pc.setLocalDescription, pc.setRemoteDescription):
        assert "asyncio.ensure_future(self.__connect())" in inspect.getsource(method)
    assert "self.__rtp_task = asyncio.ensure_future(self._run_rtp(" in inspect.getsource(
        aiortc.rtcrtpsender.RTCRtpSender.send
    )


def test_shared_packer_packs_once_for_every_sender() -> None:
    data = b"\x00\x00\x00\x01\x65" + bytes(3000)
    packet = av.Packet(data)
    packet.pts = 3000
    packet.time_base = aiortc_hooks.PassthroughDecoder(VP8).time_base
    first = aiortc_hooks.SharedH264Packer().pack(packet)
    second = aiortc_hooks.SharedH264Packer().pack(packet)
    assert first[0] is second[0]
    assert first[0] == get_encoder(H264).pack(packet)[0]


def test_datagram_transport_internals_used_to_drain_reads() -> None:
    transport: Any = aiortc_hooks._SELECTOR_DATAGRAM_TRANSPORT
    source = inspect.getsource(transport._read_ready)
    assert "self._sock.recvfrom(self.max_size)" in source
    assert "self._protocol.datagram_received(data, addr)" in source
    assert "self._add_reader" in inspect.getsource(transport.__init__)
    assert "self._connection = Connection(" in inspect.getsource(
        aiortc.rtcicetransport.RTCIceGatherer.__init__
    )
    assert "self._protocols" in inspect.getsource(aioice.ice.Connection.__init__)


async def test_drain_reads_changes_every_socket_and_reads_all_that_waits() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video")
    got: list[Any] = []
    try:
        with aiortc_hooks.ice_host_addresses(["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createOffer())
        assert aiortc_hooks.drain_reads(pc) == 1
        connection = pc.getTransceivers()[0].receiver.transport.transport._connection
        (protocol,) = connection._protocols
        protocol.datagram_received = lambda data, addr: got.append(data)  # type: ignore[method-assign]
        address = protocol.transport.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(10):
                sender.sendto(bytes([0x80, i]), address)
        async with asyncio.timeout(2):
            while len(got) < 10:  # noqa: ASYNC110 - polls what the reader delivered
                await asyncio.sleep(0.01)
        assert got == [bytes([0x80, i]) for i in range(10)]
    finally:
        await asyncio.shield(pc.close())


def test_fast_sender_does_what_aiortc_run_rtp_does() -> None:
    # FastRtpSender.run_rtp is aiortc's _run_rtp with the per-packet work cut: these are the
    # steps and the name-mangled state it copies.
    sender = aiortc.rtcrtpsender.RTCRtpSender
    run = inspect.getsource(sender._run_rtp)
    for line in (
        "self.__rtp_started.set()",
        "sequence_number = random_sequence_number()",
        "timestamp_origin = random32()",
        "if not self.__track:",
        "enc_frame = await self._next_encoded_frame(codec)",
        "timestamp = uint32_add(timestamp_origin, enc_frame.timestamp)",
        "payload_type=codec.payloadType,",
        "packet.ssrc = self._ssrc",
        "packet.marker = (i == len(enc_frame.payloads) - 1) and 1 or 0",
        "clock.current_ntp_time() >> 14",
        "packet.extensions.mid = self.__mid",
        "packet.extensions.audio_level = (False, -enc_frame.audio_level)",
        "self.__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE] = (",
        "packet_bytes = packet.serialize(self.__rtp_header_extensions_map)",
        "await self.transport._send_rtp(packet_bytes)",
        "self.__ntp_timestamp = clock.current_ntp_time()",
        "self.__rtp_timestamp = packet.timestamp",
        "self.__octet_count += len(payload)",
        "self.__packet_count += 1",
        "except (asyncio.CancelledError, ConnectionError, MediaStreamError):",
        "self.__track = None",
        "self.__encoder = None",
        "self.__rtp_exited.set()",
    ):
        assert line in run, line
    assert "self.__rtp_task = asyncio.ensure_future(self._run_rtp(" in inspect.getsource(
        sender.send
    )
    assert "await self._retransmit(seq)" in inspect.getsource(sender._handle_rtcp_packet)
    retransmit = inspect.getsource(sender._retransmit)
    assert "packet = self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in retransmit
    assert "payload_type=self.__rtx_payload_type," in retransmit
    assert "sequence_number=self.__rtx_sequence_number," in retransmit
    assert "ssrc=self._rtx_ssrc," in retransmit
    rtcp = inspect.getsource(sender._run_rtcp)
    for name in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"):
        assert f"{name}=self.__{name}" in rtcp
    stop = inspect.getsource(sender.stop)
    assert "self.__rtp_started.wait()" in stop and "self.__rtp_exited.wait()" in stop


def test_fast_sender_sends_as_the_dtls_and_ice_transports_do() -> None:
    dtls = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp)
    for line in (
        "if self._state != State.CONNECTED:",
        "data = self._tx_srtp.protect(data)",
        "await self.transport._send(data)",
        "self.__tx_bytes += len(data)",
        "self.__tx_packets += 1",
    ):
        assert line in dtls, line
    assert "self._send = self._connection.send" in inspect.getsource(
        aiortc.rtcicetransport.RTCIceTransport.__init__
    )
    assert "await self.sendto(data, 1)" in inspect.getsource(aioice.ice.Connection.send)
    sendto = inspect.getsource(aioice.ice.Connection.sendto)
    assert "active_pair = self._nominated.get(component)" in sendto
    assert "await active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data
    )
    process = inspect.getsource(pylibsrtp.Session._Session__process)  # type: ignore[attr-defined]
    assert "self._buffer[0 : len(data)] = data" in process
    assert "_srtp_assert(func(self._srtp[0], self._cdata, len_p))" in process
    assert "return self._buffer[0 : len_p[0]]" in process
    assert "return self.__process(packet, lib.srtp_protect, SRTP_MAX_TRAILER_LEN)" in (
        inspect.getsource(pylibsrtp.Session.protect)
    )


def test_ntp_clock_matches_aiortc() -> None:
    ours = aiortc_hooks.ntp_now()
    theirs = aiortc.clock.current_ntp_time()
    assert abs(theirs - ours) < (1 << 32) // 100  # within 10 ms


async def test_a_relay_peer_connection_offers_rsa_and_ecdsa_dtls_suites() -> None:
    # RTCPeerConnection keeps its certificates in __certificates, hands them to every DTLS
    # transport it makes, and each transport builds its context with _create_ssl_context.
    assert params(aiortc.rtcdtlstransport.RTCCertificate._create_ssl_context) == [
        "self",
        "srtp_profiles",
    ]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        aiortc_hooks.accept_rsa_peers(pc)
        (certificate,) = pc._RTCPeerConnection__certificates  # type: ignore[attr-defined]
        ctx = certificate._create_ssl_context([aiortc.rtcdtlstransport.SRTP_AES128_CM_SHA1_80])
        suites = OpenSSL.SSL.Connection(ctx).get_cipher_list()
        assert "ECDHE-ECDSA-AES128-GCM-SHA256" in suites  # aiortc's own
        assert "ECDHE-RSA-AES128-GCM-SHA256" in suites  # for a peer with an RSA certificate
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        (transceiver,) = pc.getTransceivers()
        dtls: Any = transceiver.receiver.transport
        assert dtls._RTCDtlsTransport__local_certificate is certificate
    finally:
        await pc.close()
