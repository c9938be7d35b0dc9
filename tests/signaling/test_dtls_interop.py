"""DTLS with the certificates real clients bring. GStreamer 1.22's webrtcbin holds an RSA
certificate and, as the DTLS server, can only choose an ECDHE-RSA suite; aiortc as the
DTLS client offers only ECDHE-ECDSA ones, so such a client failed with "no shared cipher"
after ICE had connected. The relay answers as the DTLS client (``a=setup:active``): its
context now offers both kinds."""

from __future__ import annotations

from typing import Any

from aiortc.rtcdtlstransport import RTCCertificate, generate_certificate
from cryptography.hazmat.primitives.asymmetric import rsa

from benches.synthetic import EncodedPatternTrack
from signaling import VideoState

from .support import play, publish, running_server


class RsaPeerCertificate(RTCCertificate):
    """A DTLS peer as GStreamer 1.22 is: an RSA certificate, and RSA suites only."""

    @classmethod
    def make(cls) -> RsaPeerCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key=key, cert=generate_certificate(key))  # type: ignore[arg-type]

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> Any:
        ctx = super()._create_ssl_context(srtp_profiles)
        ctx.set_cipher_list(b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA")
        return ctx


async def test_a_publisher_and_a_viewer_with_rsa_certificates_connect() -> None:
    async with running_server() as server:
        host = await publish(
            server.http, EncodedPatternTrack("vp8", gop=30), certificate=RsaPeerCertificate.make()
        )
        assert "a=setup:active" in host.response.text  # the relay is the DTLS client
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http, certificate=RsaPeerCertificate.make())
        await viewer.wait_frames(10)
        ecdsa = await play(server.http, token="viewer:show1:b")  # aiortc's own, as before
        await ecdsa.wait_frames(10)
        for client in (viewer, ecdsa, host):
            await client.close()


def rsa_client_certificate() -> RTCCertificate:
    """An RSA certificate with OpenSSL's usual suites: a DTLS *client* offers the suites it
    knows, whatever its certificate (only a server is bound to its key's kind)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RTCCertificate(key=key, cert=generate_certificate(key))  # type: ignore[arg-type]


async def test_the_relay_as_dtls_server_accepts_rsa_and_ecdsa_clients() -> None:
    # A client that offers a=setup:active makes the relay the DTLS server: its own (ECDSA)
    # certificate then decides the suite, and the client's may be RSA or ECDSA.
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        rsa_viewer = await play(server.http, certificate=rsa_client_certificate(), setup="active")
        assert "a=setup:passive" in rsa_viewer.response.text  # the relay is the DTLS server
        ecdsa_viewer = await play(server.http, token="viewer:show1:b", setup="active")
        assert "a=setup:passive" in ecdsa_viewer.response.text
        await ecdsa_viewer.wait_frames(10)
        await rsa_viewer.wait_frames(10)
        for client in (rsa_viewer, ecdsa_viewer, host):
            await client.close()
