"""Every code the WHIP/WHEP endpoints refuse with, and its HTTP status. README
"Video error codes" (signaling/README.md) documents each one."""

from __future__ import annotations

CODES: dict[str, int] = {
    "malformed_sdp": 400,
    "no_video": 400,
    "unsupported_codec": 400,
    "unsupported_offer": 400,
    "no_ice_candidates": 400,
    "unauthorized": 401,
    "key_revoked": 401,
    "forbidden": 403,
    "banned": 403,
    "session_not_found": 404,
    "hls_not_available": 404,
    "method_not_allowed": 405,
    "publisher_conflict": 409,
    "show_not_live": 409,
    "show_ended": 409,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "service_closed": 503,
    "video_unavailable": 503,
}
