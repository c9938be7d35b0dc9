"""Every private aiortc/aioice hook the relay relies on, and nothing else.

aiortc is pinned (``aiortc==1.16.0``) and ``tests/signaling/test_aiortc_hooks.py`` fails
when one of these names or signatures changes. The hooks:

- ``aiortc.rtcrtpreceiver.get_decoder``: the receiver's decoder thread looks the decoder up
  through this module global. It is replaced once by a dispatcher that hands the encoded
  frames of *marked* receivers over as ``av.Packet[Any]`` s and leaves every other receiver
  (test clients, a decoding baseline) on aiortc's own decoders. The dispatcher recognises a
  marked receiver by its ``_RTCRtpReceiver__decoder_thread``.
- ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``: asks the host for a keyframe.
- ``RTCRtpSender._send_keyframe()``: called when a viewer sends PLI or FIR; overridden per
  sender instance so that the request reaches the relay instead of a (missing) encoder.
- ``aioice.ice.get_host_addresses(use_ipv4, use_ipv6)``: the module global aioice gathers
  host candidates from. Replaced by a wrapper that returns the addresses set in a context
  variable (``ice_host_addresses``), else aioice's own answer.

- ``RTCPeerConnection.__certificates`` and ``RTCCertificate._create_ssl_context``: a
  relay peer connection gets a certificate (``accept_rsa_peers``) whose DTLS context offers
  the ECDHE-RSA suites beside aiortc's ECDHE-ECDSA ones. When the relay answers as the DTLS
  client (aiortc's ``a=setup:active``), a peer holding an RSA certificate (GStreamer 1.22's
  webrtcbin) could pick none of aiortc's suites ("no shared cipher"); as the DTLS server,
  the relay's own ECDSA certificate decides, whatever the peer's.

The sending side packs through the public ``Encoder.pack(packet)``, which ``RTCRtpSender``
calls when its track yields an ``av.Packet[Any]`` instead of a frame. ``send_fast(sender)``
then replaces that sender's ``_run_rtp`` and ``_retransmit`` (instance attributes) with
``FastRtpSender``'s: the same RTP packets as aiortc's, built and sent without the
per-packet work aiortc does (a ``datetime`` clock read, a ``RtpPacket`` object, header
extensions serialized again, three awaited calls down to the socket). Per packet it is one
header ``struct.pack``, one SRTP protect and one ``sendto``. It reads and keeps up the
sender's name-mangled state that RTCP sender reports use (``_RTCRtpSender__ntp_timestamp``,
``__rtp_timestamp``, ``__packet_count``, ``__octet_count``) and the events ``stop()``
waits on (``__rtp_started``, ``__rtp_exited``); it sends through
``RTCDtlsTransport._tx_srtp`` (pylibsrtp's ``Session._srtp``/``_cdata``/``_buffer``) and
the ICE connection's nominated pair (``aioice.Connection._nominated``).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import contextvars
import logging
import struct
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
from aiortc.codecs import get_decoder as aiortc_get_decoder
from aiortc.codecs import get_encoder as aiortc_get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    RtcpPsfbPacket,
    RtpPacket,
    unpack_remb_fci,
    wrap_rtx,
)
from aiortc.utils import random32
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp import Error as SrtpError
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

from .pacing import (
    CATCH_UP_BEHIND,
    LOSS_HIGH,
    Pacer,
    RateControl,
    SenderStats,
    ViewerTimeline,
)

logger = logging.getLogger(__name__)

_aioice_get_host_addresses: Callable[..., list[str]] = aioice.ice.get_host_addresses

_host_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "signaling_ice_host_addresses", default=None
)
_shared_packing: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "signaling_shared_packing", default=False
)
_passthrough_receivers: weakref.WeakSet[Any] = weakref.WeakSet()
_passthrough_lock = threading.Lock()


class PassthroughDecoder:
    """An aiortc ``Decoder`` that decodes nothing: one encoded frame in, one packet out."""

    def __init__(self, codec: Any) -> None:
        self.time_base = Fraction(1, int(codec.clockRate))

    def decode(self, encoded_frame: Any) -> list[av.Packet[Any]]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        return [packet]


def _get_decoder(codec: Any) -> Any:
    current = threading.current_thread()
    with _passthrough_lock:
        receivers = list(_passthrough_receivers)
    for receiver in receivers:
        if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is current:
            return PassthroughDecoder(codec)
    return aiortc_get_decoder(codec)


class SharedH264Packer:
    """An aiortc ``Encoder`` for relayed H.264: ``pack`` splits and packetizes a frame once,
    and every sender handed the same ``av.Packet`` reuses the payloads (read-only)."""

    CACHE_SIZE = 512
    _cache: OrderedDict[int, tuple[Any, list[bytes], int]] = OrderedDict()

    def __init__(self) -> None:
        self._packer = H264Encoder()
        self.target_bitrate = 0  # set by the sender on REMB; nothing to adapt here

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("relay senders only pack encoded packets")

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        cache = SharedH264Packer._cache
        entry = cache.get(id(packet))
        if entry is not None and entry[0] is packet:
            return entry[1], entry[2]
        payloads, timestamp = self._packer.pack(packet)
        cache[id(packet)] = (packet, payloads, timestamp)
        while len(cache) > self.CACHE_SIZE:
            cache.popitem(last=False)
        return payloads, timestamp


def _get_encoder(codec: Any) -> Any:
    if _shared_packing.get() and codec.mimeType.lower() == "video/h264":
        return SharedH264Packer()
    return aiortc_get_encoder(codec)


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    configured = _host_addresses.get()
    if configured is None:
        return _aioice_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [address for address in configured if (use_ipv6 if ":" in address else use_ipv4)]


def install() -> None:
    """Put the two module-global hooks in place (idempotent)."""
    aiortc.rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = _get_host_addresses
    aiortc.rtcrtpsender.get_encoder = _get_encoder  # type: ignore[attr-defined]


# aiortc's suites first (its certificate is ECDSA), then the same with RSA key exchange
# signatures, for a DTLS server that holds an RSA certificate.
RELAY_DTLS_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
    b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"
)


class _RelayCertificate(RTCCertificate):
    """aiortc's certificate, with a DTLS context that also offers the ECDHE-RSA suites."""

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> Any:
        ctx = super()._create_ssl_context(srtp_profiles)
        ctx.set_cipher_list(RELAY_DTLS_CIPHERS)
        return ctx


def accept_rsa_peers(pc: Any) -> None:
    """Give ``pc`` (before any negotiation) a certificate whose DTLS context also offers the
    ECDHE-RSA suites, so that a peer with an RSA certificate can be its DTLS server."""
    pc._RTCPeerConnection__certificates = [_RelayCertificate.generateCertificate()]


def receive_encoded(receiver: Any) -> None:
    """Make ``receiver``'s track yield ``av.Packet[Any]`` s (call before its first frame)."""
    install()
    with _passthrough_lock:
        _passthrough_receivers.add(receiver)


@contextlib.contextmanager
def ice_host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """Within this block, ICE gathering offers only ``addresses`` (empty: aioice default)."""
    install()
    token = _host_addresses.set(tuple(addresses) or None)
    try:
        yield
    finally:
        _host_addresses.reset(token)


@contextlib.contextmanager
def shared_packing() -> Iterator[None]:
    """Senders started from within this block share H.264 packetization."""
    install()
    token = _shared_packing.set(True)
    try:
        yield
    finally:
        _shared_packing.reset(token)


DRAIN_LIMIT = 64
_SELECTOR_DATAGRAM_TRANSPORT: Any = getattr(  # noqa: B009 - private, untyped
    asyncio.selector_events, "_SelectorDatagramTransport"
)


def _draining_reader(transport: Any) -> Callable[[], None]:
    sock, protocol = transport._sock, transport._protocol

    def read_ready() -> None:
        for _ in range(DRAIN_LIMIT):
            if transport._conn_lost:
                return
            try:
                data, addr = sock.recvfrom(transport.max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            protocol.datagram_received(data, addr)

    return read_ready


def drain_reads(pc: Any) -> int:
    """Make each of ``pc``'s UDP sockets drain what is waiting on every loop turn.
    Returns how many sockets were changed."""
    changed = 0
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            transport: Any = protocol.transport
            if (
                not isinstance(transport, _SELECTOR_DATAGRAM_TRANSPORT)
                or transport._sock_fd in seen
            ):
                continue
            seen.add(transport._sock_fd)
            transport._loop._add_reader(transport._sock_fd, _draining_reader(transport))
            changed += 1
    return changed


async def request_keyframe(receiver: Any, media_ssrc: int) -> None:
    """Send an RTCP PLI for ``media_ssrc`` through ``receiver``."""
    await receiver._send_rtcp_pli(media_ssrc)


def on_keyframe_request(sender: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the remote end of ``sender`` sends PLI or FIR."""
    sender._send_keyframe = callback


# -- the fast RTP sender --------------------------------------------------------------------

_RTP_HEADER = struct.Struct("!BBHLL")
_NTP_UNIX_OFFSET_NS = 2_208_988_800 * 1_000_000_000


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (what ``aiortc.clock.current_ntp_time``
    returns, without building two ``datetime`` objects)."""
    return ((time.time_ns() + _NTP_UNIX_OFFSET_NS) << 32) // 1_000_000_000


class _SrtpSender:
    """Protects RTP with a DTLS transport's SRTP session and sends it on the nominated ICE
    pair: what ``RTCDtlsTransport._send_rtp`` does, without awaiting three coroutines."""

    def __init__(self, dtls: Any) -> None:
        self.dtls = dtls
        session = dtls._tx_srtp
        self._session = session  # keeps the SRTP context alive
        self._srtp = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._limit = len(session._buffer) - SRTP_MAX_TRAILER_LEN
        self._length = srtp_ffi.new("int *")
        self._connection = dtls.transport._connection

    def send(self, data: bytes) -> None:
        if self.dtls._state is not DtlsState.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        size = len(data)
        if size > self._limit:
            raise ValueError("packet is too long")
        self._length[0] = size
        self._buffer[0:size] = data
        status = srtp_lib.srtp_protect(self._srtp, self._cdata, self._length)
        if status != srtp_lib.srtp_err_status_ok:
            raise SrtpError(f"srtp_protect failed ({status})")
        pair = self._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        size = self._length[0]
        pair.protocol.transport.sendto(self._buffer[0:size], pair.remote_addr)
        dtls = self.dtls
        dtls._RTCDtlsTransport__tx_bytes += size
        dtls._RTCDtlsTransport__tx_packets += 1


# Sent packets kept for NACKs, by age (mediasoup keeps up to 2 s): a NACK comes an RTT
# after the send, a NACK for a lost retransmission an RTT or two later.
HISTORY_S = 2.0
# A packet asked for again within this share of the RTT of its last resend is not resent.
RESEND_RTT_SHARE = 1.0
RESEND_MIN_S = 0.01
DEFAULT_RTT_S = 0.05
# While a viewer loses over REPEAT_LOSS of its packets, each retransmission is sent twice,
# REPEAT_AFTER_S apart: a player that NACKs a packet once (aiortc does) would otherwise
# wait for its jitter buffer to give up on a retransmission that was lost too. Not past
# LOSS_HIGH: that loss is a queue overflowing, which a second copy of each resend feeds.
REPEAT_LOSS = 0.01
REPEAT_AFTER_S = 0.02


class FastRtpSender:
    """``_run_rtp`` and ``_retransmit`` for one ``RTCRtpSender`` (see the module doc).

    With ``pacing`` (video), packets go out through a ``signaling.pacing.Pacer`` at the
    rate the viewer's link takes; the history for NACKs is kept by age (``HISTORY_S``),
    NACKs are answered over RTX, a NACK that cannot be served (too old) counts and asks
    for a keyframe (``on_unservable``), and the abs-send-time of each packet is its real
    send time."""

    def __init__(
        self,
        sender: Any,
        stats: SenderStats | None = None,
        stream_bps: Callable[[], float] | None = None,
    ) -> None:
        self._sender = sender
        self.stats = stats or SenderStats()
        # sequence number -> (sent at, header, payload), oldest first
        self._history: dict[int, tuple[float, bytes, bytes]] = {}
        self._resent: dict[int, float] = {}
        self._expired: list[int] = []
        self._out: _SrtpSender | None = None
        self._abs_offset: int | None = None
        self.pacer: Pacer | None = None
        if stream_bps is not None:
            self.pacer = Pacer(self._send_now, RateControl(stream_bps), self.stats)
        self.on_unservable: Callable[[], None] | None = None

    def _srtp(self) -> _SrtpSender:
        dtls = self._sender.transport
        if dtls._state is not DtlsState.CONNECTED:  # (no SRTP session before, or after)
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        if self._out is None or self._out.dtls is not dtls:
            self._out = _SrtpSender(dtls)
        return self._out

    def _send_now(self, packets: list[tuple[int, bytes, bytes]], waited: bool) -> None:
        """Send ``packets`` (paced: now is their turn), keeping media packets for NACKs;
        a sequence number under 0 marks a retransmission (sent as it is, not kept). Packets
        that ``waited`` in the pacer get their abs-send-time written again."""
        now = time.monotonic()
        offset = self._abs_offset if waited else None
        stamp = ((ntp_now() >> 14) & 0xFFFFFF).to_bytes(3, "big") if waited else b""
        history = self._history
        resent = self._resent
        sent = octets = 0
        try:
            send = self._srtp().send
            for seq, head, payload in packets:
                if seq < 0:
                    send(head + payload)
                    continue
                if offset is not None:
                    head = head[:offset] + stamp + head[offset + 3 :]
                send(head + payload)
                history[seq] = (now, head, payload)
                if resent:
                    resent.pop(seq, None)
                sent += 1
                octets += len(payload)
        except ConnectionError:
            if self.pacer is not None:
                self.pacer.close()
        sender = self._sender
        sender._RTCRtpSender__packet_count += sent
        sender._RTCRtpSender__octet_count += octets
        # forget what is older than HISTORY_S (dicts keep insertion order: oldest first)
        for oldest, entry in history.items():
            if now - entry[0] <= HISTORY_S:
                break
            self._expired.append(oldest)
        if self._expired:
            for seq in self._expired:
                del history[seq]
                resent.pop(seq, None)
            self._expired.clear()

    def _find_abs_offset(self, extensions_map: Any, mid: Any, header_size: int) -> int | None:
        probe = HeaderExtensions(abs_send_time=0xA5C3E1, mid=mid)
        _, value = extensions_map.set(probe)
        at = value.find(b"\xa5\xc3\xe1")
        return None if at < 0 else header_size + 4 + at

    async def run_rtp(self, codec: Any) -> None:
        sender = self._sender
        sender._RTCRtpSender__rtp_started.set()
        extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
        mid = sender._RTCRtpSender__mid
        payload_type = codec.payloadType
        header = _RTP_HEADER.pack
        pacer = self.pacer
        if pacer is not None:
            self._abs_offset = self._find_abs_offset(extensions_map, mid, _RTP_HEADER.size)
        frame_step = max(1, int(codec.clockRate) // 30)
        sequence_number = aiortc.rtcrtpsender.random_sequence_number()
        timestamp_origin = random32()
        last_timestamp: int | None = None
        timeline = ViewerTimeline(int(codec.clockRate), frame_step, timestamp_origin)
        packets = octets = 0
        try:
            while True:
                if not sender.track:
                    await asyncio.sleep(0.02)
                    continue
                if pacer is not None:
                    await pacer.wait_room()
                frame = await sender._next_encoded_frame(codec)
                if frame is None:
                    continue
                if pacer is not None:  # (video: see ViewerTimeline)
                    behind = int(getattr(sender.track, "waiting", 0))
                    timestamp = timeline.next(frame.timestamp, time.monotonic(), behind)
                    pacer.control.catching_up = behind >= CATCH_UP_BEHIND
                else:
                    timestamp = (timestamp_origin + frame.timestamp) & 0xFFFFFFFF
                if (
                    pacer is None
                    and last_timestamp is not None
                    and not (0 < (timestamp - last_timestamp) & 0xFFFFFFFF < 0x80000000)
                ):
                    # The relay started this viewer again at an earlier keyframe: keep its
                    # timestamps rising, or the viewer would drop the frames as old.
                    timestamp_origin += last_timestamp + frame_step - timestamp
                    timestamp_origin &= 0xFFFFFFFF
                    timestamp = (timestamp_origin + frame.timestamp) & 0xFFFFFFFF
                last_timestamp = timestamp
                ntp = ntp_now()
                extensions = HeaderExtensions(abs_send_time=(ntp >> 14) & 0xFFFFFF, mid=mid)
                if frame.audio_level is not None:
                    extensions.audio_level = (False, -frame.audio_level)
                profile, value = extensions_map.set(extensions)
                first = 0x90 if value else 0x80
                tail = struct.pack("!HH", profile, len(value) >> 2) + value if value else b""
                ssrc = sender._ssrc
                last = len(frame.payloads) - 1
                if pacer is None:
                    out = self._srtp()
                    history = self._history
                    for i, payload in enumerate(frame.payloads):
                        marker = 0x80 if i == last else 0
                        head = header(
                            first, marker | payload_type, sequence_number, timestamp, ssrc
                        )
                        data = head + tail + payload
                        history[sequence_number % RTP_HISTORY_SIZE] = (0.0, data, b"")
                        out.send(data)
                        packets += 1
                        octets += len(payload)
                        sequence_number = (sequence_number + 1) & 0xFFFF
                else:
                    self._srtp()  # (raises once the transport is gone)
                    batch = []
                    size = 0
                    for i, payload in enumerate(frame.payloads):
                        marker = 0x80 if i == last else 0
                        head = header(
                            first, marker | payload_type, sequence_number, timestamp, ssrc
                        )
                        head += tail
                        batch.append((sequence_number, head, payload))
                        size += len(head) + len(payload)
                        sequence_number = (sequence_number + 1) & 0xFFFF
                    pacer.send_media(batch, size)  # (it counts packets and octets as it sends)
                # What aiortc's RTCP sender reports read (aiortc sets them per packet).
                sender._RTCRtpSender__ntp_timestamp = ntp
                sender._RTCRtpSender__rtp_timestamp = timestamp
                if pacer is None:
                    sender._RTCRtpSender__packet_count = packets
                    sender._RTCRtpSender__octet_count = octets
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # as aiortc: __rtp_exited must be set, or stop() would wait for ever
            logger.exception("relay RTP sender failed")
        if pacer is not None:
            pacer.close()
        track = sender.track
        if track is not None:
            track.stop()
            sender._RTCRtpSender__track = None
        sender._RTCRtpSender__encoder = None
        sender._RTCRtpSender__rtp_exited.set()

    def _rtt(self) -> float:
        rtt = getattr(self._sender, "_RTCRtpSender__rtt", None)
        return DEFAULT_RTT_S if rtt is None else float(rtt)

    async def retransmit(self, sequence_number: int) -> None:
        if self.pacer is None:
            entry = self._history.get(sequence_number % RTP_HISTORY_SIZE)
            if entry is None or _RTP_HEADER.unpack_from(entry[1])[2] != sequence_number:
                return
            self._srtp().send(self._rtx(entry[1], b""))
            return
        now = time.monotonic()
        entry = self._history.get(sequence_number)
        if entry is None or now - entry[0] > HISTORY_S:
            self.stats.nacks_unserved += 1
            if self.on_unservable is not None:
                self.on_unservable()
            return
        resent = self._resent.get(sequence_number)
        if resent is None:
            self.pacer.control.lost(1)
        elif now - resent < max(RESEND_MIN_S, RESEND_RTT_SHARE * self._rtt()):
            self.stats.nacks_skipped += 1
            return
        self._resent[sequence_number] = now
        self.stats.nacks_served += 1
        pacer = self.pacer
        pacer.send_rtx((-1, self._rtx(entry[1], entry[2]), b""))
        if REPEAT_LOSS < pacer.control.loss <= LOSS_HIGH:

            def again() -> None:
                pacer.send_rtx((-1, self._rtx(entry[1], entry[2]), b""))

            asyncio.get_running_loop().call_later(REPEAT_AFTER_S, again)

    def _rtx(self, head: bytes, payload: bytes) -> bytes:
        """The packet ``head + payload`` again, over RTX when it was negotiated."""
        sender = self._sender
        rtx_payload_type = sender._RTCRtpSender__rtx_payload_type
        if rtx_payload_type is None:
            return head + payload
        extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
        rtx = wrap_rtx(
            RtpPacket.parse(head + payload, extensions_map),
            payload_type=rtx_payload_type,
            sequence_number=sender._RTCRtpSender__rtx_sequence_number,
            ssrc=sender._rtx_ssrc,
        )
        sender._RTCRtpSender__rtx_sequence_number = (rtx.sequence_number + 1) & 0xFFFF
        data: bytes = rtx.serialize(extensions_map)
        return data

    def handle_feedback(self, packet: Any) -> None:
        """What the pacer learns from the viewer's RTCP: REMB estimates."""
        if self.pacer is None:
            return
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self._sender._ssrc in ssrcs:
                self.pacer.control.remb(bitrate)


def send_fast(
    sender: Any,
    stats: SenderStats | None = None,
    stream_bps: Callable[[], float] | None = None,
) -> FastRtpSender:
    """Make ``sender`` (not yet started) send with ``FastRtpSender``; paced when
    ``stream_bps`` (the host's bitrate now) is given."""
    fast = FastRtpSender(sender, stats, stream_bps)
    sender._run_rtp = fast.run_rtp
    sender._retransmit = fast.retransmit
    if stream_bps is not None:
        handle = sender._handle_rtcp_packet

        async def handle_rtcp_packet(packet: Any) -> None:
            fast.handle_feedback(packet)
            await handle(packet)

        sender._handle_rtcp_packet = handle_rtcp_packet
    return fast
