"""Every code the live channel refuses a request with. README "Websocket error codes"
documents each one (``tests/test_error_codes.py`` fails when one is missing there).

The websocket has no HTTP status; the statuses here say what each refusal would be over
HTTP and keep one shape for every coded error. Refusals that come from checkout (a buy,
a cart line, a deal) carry checkout's codes.
"""

from __future__ import annotations

CODES: dict[str, int] = {
    # the message itself
    "message_too_large": 413,
    "malformed_json": 400,
    "json_too_deep": 400,
    "malformed_message": 400,
    "unknown_type": 400,
    "invalid_input": 422,
    # who sends it
    "auth_required": 401,
    "forbidden_role": 403,
    "banned": 403,
    "muted": 403,
    "slow_mode": 429,
    "rate_limited": 429,
    "blocked_words": 422,
    # what it names
    "show_not_found": 404,
    "product_not_found": 404,
    "question_not_found": 404,
    "not_found": 404,
    "not_pinned": 404,
    "too_many_pinned": 409,
    "already_voted": 409,
    "question_closed": 409,
    "poll_open": 409,
    "poll_closed": 409,
    "illegal_transition": 409,
    "show_ended": 409,
    "internal_error": 500,
}
