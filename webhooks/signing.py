"""Standard Webhooks signing (https://www.standardwebhooks.com): secrets, body, headers.

The HMAC is the ``standardwebhooks`` library's (the spec's authors' own, typed and without
dependencies): ``v1,`` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")).
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def body(event_type: str, created_at: datetime, data: Any) -> bytes:
    """The request body: ``{"type", "timestamp", "data"}``, compact JSON (the bytes signed
    are the bytes sent)."""
    event = {"type": event_type, "timestamp": created_at.astimezone(UTC).isoformat(), "data": data}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def headers(secret: str, message_id: str, now: datetime, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (the timestamp is the attempt's)."""
    at = now.astimezone(UTC)
    signature = Webhook(secret).sign(message_id, at, payload.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
