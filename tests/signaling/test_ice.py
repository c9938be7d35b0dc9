"""ICE servers and TURN credentials: what clients get in Link headers, what the relay uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest

from benches.synthetic import PatternTrack
from signaling.ice import IcePolicy, IceServer
from tests.signaling.support import publish, running_server

# Loopback only: the relay's own peers contact these while gathering (nothing listens).
STUN = "stun:127.0.0.1:3478"
TURN = "turn:127.0.0.1:3479?transport=udp"


def test_static_credentials_go_to_turn_urls_only() -> None:
    policy = IcePolicy((STUN, TURN), turn_username="relay", turn_credential='pa"ss')
    stun, turn = policy.servers("session-1")
    assert stun == IceServer(STUN) and stun.link() == f'<{STUN}>; rel="ice-server"'
    assert turn.link() == (
        f'<{TURN}>; rel="ice-server"; username="relay"; credential="pa\\"ss"; '
        'credential-type="password"'
    )


def test_shared_secret_gives_each_session_its_own_short_lived_pair() -> None:
    policy = IcePolicy((TURN,), turn_secret="a-shared-secret-of-coturn", turn_ttl_s=600)
    (one,) = policy.servers("session-1", now=1_000_000)
    (two,) = policy.servers("session-2", now=1_000_000)
    assert one.username == "1000600:session-1" and two.username == "1000600:session-2"
    expected = hmac.new(b"a-shared-secret-of-coturn", b"1000600:session-1", hashlib.sha1)
    assert one.credential == base64.b64encode(expected.digest()).decode()
    assert one.credential != two.credential


def test_bad_credential_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="needs a TURN credential"):
        IcePolicy((TURN,), turn_username="relay")
    with pytest.raises(ValueError, match="not both"):
        IcePolicy((TURN,), turn_username="u", turn_credential="p", turn_secret="s" * 16)


async def test_whip_answer_carries_credentials_and_options_does_not() -> None:
    config = {"ice_servers": [STUN, TURN], "turn_secret": "a-shared-secret-of-coturn"}
    async with running_server(**config) as server:
        options = await server.http.options("/whip/show1")  # unauthenticated: STUN only
        assert options.headers.get_list("link") == [f'<{STUN}>; rel="ice-server"']
        host = await publish(server.http, PatternTrack())
        stun, turn = host.response.headers.get_list("link")
        assert stun == f'<{STUN}>; rel="ice-server"'
        session_id = host.location.rsplit("/", 1)[1]
        assert f':{session_id}"; credential="' in turn and 'credential-type="password"' in turn
        expiry = int(turn.split('username="')[1].split(":")[0])
        assert time.time() + 86_000 < expiry <= time.time() + 86_400 + 1
        # the relay's own peer connection has the TURN server with credentials too
        (session,) = server.service._peers.sessions.values()
        servers = session.pc._RTCPeerConnection__configuration.iceServers  # (no public getter)
        assert [s.urls for s in servers] == [STUN, TURN]
        assert servers[1].username.endswith(":relay") and servers[1].credential
        await host.close()


def test_the_app_hands_the_settings_to_the_relay(tmp_path: Path) -> None:
    from config import load_settings
    from web.app import create_app
    from web.parts import parts

    settings = load_settings(
        data_dir=tmp_path,
        secret_key="test-secret-key-0123456789-abcdefghij",
        ice_servers=[TURN],
        turn_username="relay",
        turn_credential="pw",
        reconnect_grace_s=7.5,
    )
    video = parts(create_app(settings)).video
    assert video.reconnect_grace_s == 7.5
    (turn,) = video._ice.servers("s")
    assert (turn.url, turn.username, turn.credential) == (TURN, "relay", "pw")
