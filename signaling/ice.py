"""The ICE servers (STUN/TURN) a session is given, with TURN credentials.

TURN servers want credentials. Two ways, as TURN servers offer them:

- static: one username and password for every ``turn:``/``turns:`` URL;
- a shared secret (the "TURN REST API" scheme of coturn's ``use-auth-secret``): each
  session gets its own short-lived pair, ``username = "<expiry unix time>:<session>"`` and
  ``credential = base64(HMAC-SHA1(secret, username))``, which the TURN server checks with
  the same secret. Nothing long-lived reaches a browser.

STUN URLs never carry credentials. The pairs go to clients in WHIP/WHEP ``Link`` headers
(RFC 9725 section 4.6) and to the relay's own peer connections.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class IceServer:
    url: str
    username: str | None = None
    credential: str | None = None

    def link(self) -> str:
        """The ``Link`` header value for this server (RFC 9725 section 4.6)."""
        value = f'<{self.url}>; rel="ice-server"'
        if self.username is not None and self.credential is not None:
            value += (
                f'; username="{_quoted(self.username)}"'
                f'; credential="{_quoted(self.credential)}"; credential-type="password"'
            )
        return value


@dataclass(frozen=True)
class IcePolicy:
    urls: tuple[str, ...] = ()
    turn_username: str | None = None
    turn_credential: str | None = None
    turn_secret: str | None = None
    turn_ttl_s: int = 24 * 3600

    def __post_init__(self) -> None:
        if (self.turn_username is None) != (self.turn_credential is None):
            raise ValueError("a TURN username needs a TURN credential, and the other way round")
        if self.turn_secret is not None and self.turn_username is not None:
            raise ValueError("give a TURN shared secret or a static TURN credential, not both")

    def servers(self, session: str, now: float | None = None) -> list[IceServer]:
        """The servers for one session (``session`` names it in shared-secret usernames)."""
        username, credential = self.turn_username, self.turn_credential
        if self.turn_secret is not None:
            expiry = int(now if now is not None else time.time()) + self.turn_ttl_s
            username = f"{expiry}:{session}"
            credential = turn_rest_credential(self.turn_secret, username)
        return [
            IceServer(url, username, credential) if is_turn(url) else IceServer(url)
            for url in self.urls
        ]


def is_turn(url: str) -> bool:
    return url.startswith(("turn:", "turns:"))


def turn_rest_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
