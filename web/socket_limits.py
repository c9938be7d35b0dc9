"""How many live sockets one identity or one address may hold at once, in this process.

A signed-in socket counts against its identity (the token's user id,
``LIVESHOP_MAX_SOCKETS_PER_USER``), an anonymous one against its client address
(``LIVESHOP_MAX_SOCKETS_PER_ADDRESS``; behind a reverse proxy uvicorn takes the address
from ``X-Forwarded-For`` when the proxy is in ``FORWARDED_ALLOW_IPS``). Past the limit the
socket is refused with ``too_many_sockets`` and closed with 4429. The counts are per
process: with N workers one identity may hold up to N times the limit.
"""

from __future__ import annotations

from collections import Counter

from web.errors import ApiError

CLOSE_TOO_MANY = 4429


class SocketLimits:
    def __init__(self, per_user: int, per_address: int) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.held: Counter[str] = Counter()

    def take(self, user_id: str | None, address: str | None) -> str:
        """Count one more socket (``release`` the key it returns when the socket ends);
        raise ``too_many_sockets`` past the limit."""
        if user_id:
            who, limit = f"user:{user_id}", self.per_user
        else:
            who, limit = f"address:{address or '?'}", self.per_address
        if self.held[who] >= limit:
            kind = "identity" if user_id else "address"
            raise ApiError(
                "too_many_sockets", f"at most {limit} live sockets at once for one {kind}"
            )
        self.held[who] += 1
        return who

    def release(self, who: str) -> None:
        self.held[who] -= 1
        if self.held[who] <= 0:
            del self.held[who]
