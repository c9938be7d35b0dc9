"""Every code the web layer itself refuses with (request shape, tokens, roles), and its
HTTP status. README "HTTP error codes" documents each one. The domains' own refusals keep
their codes (checkout/error_codes.py, signaling/error_codes.py)."""

from __future__ import annotations

CODES: dict[str, int] = {
    "bad_request": 400,
    "client_disconnected": 400,
    "malformed_json": 400,
    "json_too_deep": 400,
    "invalid_input": 422,
    "idempotency_key_missing": 422,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "not_found": 404,
    "stream_key_not_found": 404,
    "stream_key_limit": 409,
    "method_not_allowed": 405,
    "auth_missing": 401,
    "auth_invalid": 401,
    "auth_expired": 401,
    "forbidden_role": 403,
    "forbidden_show": 403,
    "renewal_limit": 403,
    "admin_disabled": 403,
    "too_many_sockets": 429,
    "request_timeout": 408,
    "header_too_large": 431,
    "internal_error": 500,
}
