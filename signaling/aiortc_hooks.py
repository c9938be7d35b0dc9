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

The sending side needs no hook: ``RTCRtpSender`` calls the public ``Encoder.pack(packet)``
when its track yields an ``av.Packet[Any]`` instead of a frame.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import contextvars
import threading
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
