"""Every bad request gets one JSON error shape and leaves no peer connection behind."""

from __future__ import annotations

import httpx
import pytest

from core.errors import error_body
from signaling import SignalingError

from .support import NOTHING_LEFT, Server, end, offer_whip, owned, play, publish, running_server

VALID_OFFER_HEADERS = {"Content-Type": "application/sdp", "Authorization": "Bearer host:show1"}

AUDIO_ONLY_OFFER = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=audio 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 127.0.0.1
a=mid:0
a=sendonly
a=rtpmap:96 opus/48000/2
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 {fp}
a=setup:actpass
""".format(fp=":".join(["AB"] * 32))

TWO_AUDIO_OFFER = AUDIO_ONLY_OFFER + AUDIO_ONLY_OFFER[AUDIO_ONLY_OFFER.index("m=audio") :]

VIDEO_WITHOUT_CANDIDATES = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=video 9 UDP/TLS/RTP/SAVPF 97
c=IN IP4 127.0.0.1
a=mid:0
a=sendonly
a=rtpmap:97 VP8/90000
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 {fp}
a=setup:actpass
""".format(fp=":".join(["AB"] * 32))

NO_ICE_OFFER = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
m=video 9 UDP/TLS/RTP/SAVPF 97
c=IN IP4 127.0.0.1
a=mid:0
a=sendonly
a=rtpmap:97 VP8/90000
"""


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    assert response.headers["access-control-allow-origin"] == "*"


def assert_no_peers(server: Server) -> None:
    stats = server.service.stats()
    assert stats["peer_connections"] == 0
    assert stats["publishers"] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("v=0\r\n", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ("v=0\r\n", {"Content-Type": ""}, 415, "unsupported_media_type"),
        ("hello", {}, 400, "malformed_sdp"),
        ("v=0\r\n" + "a=x\r\n" * 20_000, {}, 413, "body_too_large"),
        ("v=0\r\nthis is not sdp\r\n", {}, 400, "malformed_sdp"),
        (NO_ICE_OFFER, {}, 400, "no_ice_candidates"),
        (AUDIO_ONLY_OFFER, {}, 400, "no_video"),
        (TWO_AUDIO_OFFER, {}, 400, "unsupported_offer"),
        (VIDEO_WITHOUT_CANDIDATES, {}, 400, "no_ice_candidates"),
        ("v=0\r\n", {"Authorization": ""}, 401, "unauthorized"),
        ("v=0\r\n", {"Authorization": "Bearer forged"}, 401, "unauthorized"),
        ("v=0\r\n", {"Authorization": "Basic host:show1"}, 401, "unauthorized"),
        ("v=0\r\n", {"Authorization": "Bearer viewer:show1"}, 403, "forbidden"),
        ("v=0\r\n", {"Authorization": "Bearer host:show2"}, 403, "forbidden"),
    ],
)
async def test_bad_whip_requests(
    body: str, headers: dict[str, str], status: int, code: str
) -> None:
    async with running_server() as server:
        sent = {k: v for k, v in {**VALID_OFFER_HEADERS, **headers}.items() if v}
        response = await server.http.post("/whip/show1", content=body, headers=sent)
        assert_error(response, status, code)
        assert_no_peers(server)


async def test_whip_when_the_show_is_not_live() -> None:
    async with running_server() as server:
        server.gate.live.clear()
        response = await offer_whip(server.http, "host:show1")
        assert_error(response, 409, "show_not_live")
        assert_no_peers(server)


async def test_bad_whep_requests() -> None:
    async with running_server() as server:
        plain = {"Content-Type": "text/plain", "Authorization": "Bearer viewer:show1"}
        assert_error(
            await server.http.post("/whep/show1", content="x", headers=plain),
            415,
            "unsupported_media_type",
        )
        sdp = {"Content-Type": "application/sdp"}
        assert_error(
            await server.http.post("/whep/show1", content="v=0", headers=sdp), 401, "unauthorized"
        )
        bad = {**sdp, "Authorization": "Bearer viewer:show1"}
        assert_error(
            await server.http.post("/whep/show1", content="nope", headers=bad), 400, "malformed_sdp"
        )
        recvonly = VIDEO_WITHOUT_CANDIDATES.replace("a=sendonly", "a=recvonly")
        assert_error(
            await server.http.post("/whep/show1", content=recvonly, headers=bad),
            400,
            "no_ice_candidates",
        )
        other = {**sdp, "Authorization": "Bearer viewer:show2"}
        assert_error(
            await server.http.post("/whep/show1", content="v=0", headers=other), 403, "forbidden"
        )
        assert owned(server.service.stats()) == NOTHING_LEFT


@pytest.mark.parametrize("prefix", ["whip", "whep"])
async def test_unknown_sessions_are_404(prefix: str) -> None:
    async with running_server() as server:
        for method in ("DELETE", "PATCH"):
            response = await server.http.request(method, f"/{prefix}/show1/nope")
            assert_error(response, 404, "session_not_found")


async def test_patch_is_405_and_options_has_cors_and_ice_servers() -> None:
    # A loopback STUN address: the relay's own peer contacts it while gathering (a host name
    # would be looked up in DNS, off this machine).
    async with running_server(ice_servers=["stun:127.0.0.1:3478"]) as server:
        options = await server.http.options("/whip/show1")
        assert options.status_code == 204
        assert options.headers["access-control-allow-origin"] == "*"
        allow = options.headers["access-control-allow-headers"]
        assert {h.strip() for h in allow.split(",")} == {
            "Authorization",
            "Content-Type",
            "If-Match",
        }
        exposed = options.headers["access-control-expose-headers"]
        assert {h.strip() for h in exposed.split(",")} == {"Location", "Link", "ETag"}
        assert options.headers["link"] == '<stun:127.0.0.1:3478>; rel="ice-server"'

        from benches.synthetic import PatternTrack

        host = await publish(server.http, PatternTrack())
        assert host.response.headers["link"] == '<stun:127.0.0.1:3478>; rel="ice-server"'
        assert host.response.headers["etag"]
        patch = await server.http.patch(
            host.location,
            content="a=end-of-candidates\r\n",
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert_error(patch, 405, "method_not_allowed")
        viewer = await play(server.http)
        assert viewer.location.startswith("/whep/show1/")
        assert_error(await end(server.http, host, token=None), 403, "forbidden")
        assert_error(await end(server.http, host, token="host:show1:other"), 403, "forbidden")
        assert_error(await end(server.http, viewer, token=None), 403, "forbidden")
        assert (await end(server.http, viewer)).status_code == 200
        assert (await end(server.http, viewer)).status_code == 404
        assert (await end(server.http, host)).status_code == 200
        assert_no_peers(server)
        await viewer.close()
        await host.close()


def test_error_fields_in_the_documented_order() -> None:
    error = SignalingError(
        "unauthorized", "No token.", http_status=401, fields={"authorization": "missing"}
    )
    assert (error.code, error.http_status, error.message) == ("unauthorized", 401, "No token.")
    assert error_body(error.code, error.message, error.fields) == {
        "error": {
            "code": "unauthorized",
            "message": "No token.",
            "fields": {"authorization": "missing"},
        }
    }
    assert SignalingError("show_not_live", "Not live.").http_status == 409
