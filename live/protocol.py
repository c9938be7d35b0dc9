"""The live protocol: message types, delivery classes, close codes and input limits.

Every message is one JSON object with a ``type``. Client requests carry a ``ref`` (a client
id) and get exactly one reply: ``{"type": "ok", "ref": ...}`` or the coded error shape.
README.md documents every type under "## Live protocol" (``tests/live/test_protocol.py``
fails when one is missing).
"""

from __future__ import annotations

import enum
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from core.errors import CodedError
from core.json_depth import MAX_DEPTH, has_nul, too_deep
from core.roles import Role
from live.error_codes import CODES

# Close codes (4000-4999 are the application's own).
CLOSE_SLOW = 4008  # fell behind: resume with last_id
CLOSE_AUTH = 4401  # missing, forged or expired token
CLOSE_FORBIDDEN = 4403  # valid token that may not join this show, or banned
CLOSE_SHUTDOWN = 1012  # the server restarts: resume with last_id

MAX_MESSAGE_BYTES = 4096
MAX_TEXT_CHARS = 500
MAX_REF_CHARS = 64
MAX_ID_CHARS = 64  # any id a client names (product, variant, question, poll, user, message...)
MAX_STRING_CHARS = 4 * MAX_TEXT_CHARS  # any other string, before its own check (e.g. clean_text)


class Delivery(enum.StrEnum):
    """How a server message survives a slow socket."""

    STATE = "state"  # newer replaces older, keyed (card, stock, viewer count)
    FEED = "feed"  # batched per tick, oldest dropped first under overflow (chat, questions)
    PERSONAL = "personal"  # always delivered, or the socket is closed so the client resyncs

    @classmethod
    def _missing_(cls, value: object) -> Delivery | None:
        # Event-log entries written before FEED had its name say "stream".
        return cls.FEED if value == "stream" else None


class ProtocolError(CodedError):
    """A coded refusal of one request; the socket stays open (codes: live/error_codes.py)."""

    codes = CODES
    ref: str | None = None  # the request's ref, when it could be read


# Server -> client types (besides replies, which are "ok" and "error").
SERVER_TYPES: frozenset[str] = frozenset(
    {
        "ok",
        "error",
        "hello",
        "snapshot",
        "batch",
        "chat",
        "chat_deleted",
        "reactions",
        "viewers",
        "card_pinned",
        "card_unpinned",
        "stock",
        "deal_started",
        "deal_ended",
        "back_in_stock",
        "order",
        "question",
        "question_updated",
        "answer",
        "question_drafts",
        "poll_opened",
        "poll_tally",
        "poll_closed",
        "show_status",
        "stream",
        "video_health",
        "catalog_changed",
        "moderation",
    }
)

S, ID, INT, B = "str", "id", "int", "bool"


@dataclass(frozen=True)
class Request:
    """The fields a client request may carry: name -> (kind, required)."""

    roles: frozenset[Role]
    fields: dict[str, tuple[str, bool]] = field(default_factory=dict)
    reply: bool = True


ANY = frozenset(Role)
VIEWER = frozenset({Role.VIEWER})
HOST = frozenset({Role.HOST})
MOD = frozenset({Role.MODERATOR})
HOST_MOD = frozenset({Role.HOST, Role.MODERATOR})

# Client -> server requests, with who may send them and their fields.
REQUESTS: dict[str, Request] = {
    "ping": Request(ANY),
    "chat": Request(ANY, {"text": (S, True)}),
    "react": Request(VIEWER, {"emoji": (S, True)}, reply=False),
    "tap": Request(VIEWER, {"product_id": (ID, True)}),
    "ask": Request(VIEWER, {"text": (S, True)}),
    "upvote": Request(VIEWER, {"question_id": (ID, True)}),
    "vote": Request(VIEWER, {"poll_id": (ID, True), "option": (INT, True)}),
    "add_to_cart": Request(VIEWER, {"variant_id": (ID, True), "quantity": (INT, True)}),
    "set_cart_quantity": Request(VIEWER, {"variant_id": (ID, True), "quantity": (INT, True)}),
    "remove_from_cart": Request(VIEWER, {"variant_id": (ID, True)}),
    "view_cart": Request(VIEWER),
    "checkout_cart": Request(VIEWER, {"idempotency_key": (S, True), "payment_method": (S, True)}),
    "buy_now": Request(
        VIEWER,
        {
            "variant_id": (ID, True),
            "quantity": (INT, True),
            "idempotency_key": (S, True),
            "payment_method": (S, True),
        },
    ),
    "notify_me": Request(VIEWER, {"variant_id": (ID, True)}),
    "pin": Request(HOST, {"product_id": (ID, True)}),
    "unpin": Request(HOST, {"product_id": (ID, True)}),
    "start_deal": Request(
        HOST,
        {
            "variant_id": (ID, True),
            "price_minor": (INT, True),
            "units": (INT, True),
            "duration_s": (INT, True),
            "per_buyer_limit": (INT, False),
        },
    ),
    "stop_deal": Request(HOST, {"variant_id": (ID, True)}),
    "open_poll": Request(HOST, {"question": (S, True), "options": ("list", True)}),
    "close_poll": Request(HOST, {"poll_id": (ID, True)}),
    "stats": Request(HOST_MOD),
    "queue": Request(HOST_MOD),
    "approve": Request(MOD, {"question_id": (ID, True)}),
    "answer": Request(HOST_MOD, {"question_id": (ID, True), "text": (S, True)}),
    "pin_question": Request(MOD, {"question_id": (ID, True)}),
    "dismiss": Request(MOD, {"question_id": (ID, True)}),
    "retract": Request(HOST_MOD, {"question_id": (ID, True)}),
    "delete_chat": Request(MOD, {"message_id": (ID, True)}),
    "mute": Request(MOD, {"user_id": (ID, True), "seconds": (INT, True)}),
    "ban": Request(MOD, {"user_id": (ID, True)}),
    "shadow_ban": Request(MOD, {"user_id": (ID, True)}),
    "unmute": Request(MOD, {"user_id": (ID, True)}),
    "unban": Request(MOD, {"user_id": (ID, True)}),
    "unshadow_ban": Request(MOD, {"user_id": (ID, True)}),
    "moderation_state": Request(MOD),
    "slow_mode": Request(MOD, {"user_id": (ID, True), "seconds": (INT, True)}),
    "blocked_words": Request(MOD, {"words": ("list", True)}),
    "canned_add": Request(MOD, {"text": (S, True)}),
    "canned_list": Request(MOD),
    "canned_send": Request(MOD, {"canned_id": (ID, True)}),
    "viewer_orders": Request(MOD, {"user_id": (ID, True)}),
}

CLIENT_TYPES: frozenset[str] = frozenset(REQUESTS)


def clean_text(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Plain text: control characters removed (newlines kept), trimmed, at most ``limit``."""
    kept = "".join(
        ch for ch in value if ch == "\n" or not unicodedata.category(ch).startswith("C")
    ).strip()
    if not kept:
        raise ProtocolError("invalid_input", "text is empty", fields={"text": "empty"})
    if len(kept) > limit:
        raise ProtocolError(
            "invalid_input", "text is too long", fields={"text": f"at most {limit}"}
        )
    return kept


def parse(raw: str) -> tuple[str | None, str, dict[str, Any]]:
    """Parse one client frame into (ref, type, fields) or raise ProtocolError.

    The ref is returned even for a refused message when it could be read, so the error
    reply names it.
    """
    if len(raw.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"messages are at most {MAX_MESSAGE_BYTES} bytes")
    if too_deep(raw):
        raise ProtocolError(
            "json_too_deep", f"JSON nests at most {MAX_DEPTH} arrays or objects deep"
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed_json", "the message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed_message", "a message is a JSON object")
    if "\\u0000" in raw and has_nul(data):  # (PostgreSQL's text cannot hold U+0000)
        raise ProtocolError("invalid_input", "text may not contain the NUL character (U+0000)")
    ref = data.get("ref")
    ref = ref if isinstance(ref, str) and len(ref) <= MAX_REF_CHARS else None
    try:
        kind, fields = _check(data, ref)
    except ProtocolError as exc:
        exc.ref = ref
        raise
    return ref, kind, fields


def _check(data: dict[str, Any], ref: str | None) -> tuple[str, dict[str, Any]]:
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("malformed_message", "type is required", fields={"type": "required"})
    spec = REQUESTS.get(kind)
    if spec is None:
        raise ProtocolError(
            "unknown_type", f"unknown message type {kind[:40]!r}", fields={"type": "unknown"}
        )
    if spec.reply and ref is None:
        raise ProtocolError(
            "invalid_input",
            "ref is required",
            fields={"ref": f"a string of at most {MAX_REF_CHARS}"},
        )
    fields: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, (kind_name, required) in spec.fields.items():
        if name not in data:
            if required:
                problems[name] = "required"
            continue
        value = data[name]
        if not _is(kind_name, value):
            problems[name] = EXPECTED.get(kind_name, f"expected {kind_name}")
        else:
            fields[name] = value
    extra = set(data) - set(spec.fields) - {"type", "ref"}
    for name in sorted(extra):
        problems[name] = "unknown field"
    if problems:
        raise ProtocolError("invalid_input", "some fields are not valid", fields=problems)
    return kind, fields


EXPECTED = {ID: f"a string of at most {MAX_ID_CHARS} characters"}


def _is(kind: str, value: object) -> bool:
    if kind == S:
        return isinstance(value, str) and len(value) <= MAX_STRING_CHARS
    if kind == ID:
        return isinstance(value, str) and len(value) <= MAX_ID_CHARS
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == B:
        return isinstance(value, bool)
    return isinstance(value, list) and all(
        isinstance(v, str) and len(v) <= MAX_STRING_CHARS for v in value
    )


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
