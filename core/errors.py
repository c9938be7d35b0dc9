"""The one coded-error vocabulary: a base every domain's errors derive from, and the two
shapes it takes on the wire.

Each domain owns a table of its codes (``checkout/error_codes.py``, ``live/error_codes.py``,
``signaling/error_codes.py``, ``web/error_codes.py``): code -> HTTP status. Its error class
names that table, so a code gives its status unless a raise says otherwise.

HTTP:      {"error": {"code": str, "message": str, "fields": {name: reason}}}
Websocket: {"type": "error", "ref": <client id or null>, "code": str, "message": str,
            "fields": {name: reason}}

``tests/web/test_error_shape.py`` pins both; ``tests/test_error_codes.py`` fails when a code
is raised but missing from its table or from the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.responses import JSONResponse

INTERNAL_ERROR = "internal_error"
"""The code of a failure nobody foresaw (HTTP 500, or an error reply on the websocket)."""


class CodedError(Exception):
    """A refusal: ``code`` (stable, machine-readable), ``message`` (for people),
    ``http_status`` (from the domain's table unless given) and ``fields`` (which input
    was wrong, and why). ``extra`` carries facts a caller may act on (units left)."""

    codes: ClassVar[Mapping[str, int]] = {}
    """The domain's code table: code -> HTTP status."""
    default_status: ClassVar[int] = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        fields: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = (
            http_status if http_status is not None else self.codes.get(code, self.default_status)
        )
        self.fields: dict[str, str] = dict(fields or {})
        self.extra: dict[str, object] = dict(extra or {})


def error_body(
    code: str,
    message: str,
    fields: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The HTTP error body (web and signaling alike); ``extra`` only when there is some."""
    body: dict[str, Any] = {"code": code, "message": message, "fields": dict(fields or {})}
    if extra:
        body["extra"] = dict(extra)
    return {"error": body}


def error_response(error: CodedError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A coded error as an HTTP response: its status and the one body."""
    return JSONResponse(
        error_body(error.code, error.message, error.fields, error.extra),
        status_code=error.http_status,
        headers=dict(headers) if headers else None,
    )


def ws_error(
    code: str,
    message: str,
    ref: str | None = None,
    fields: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The websocket error message (a refused request keeps its ``ref``); ``extra`` only
    when there is some (a payment's ``client_secret``, the units left)."""
    message_: dict[str, Any] = {
        "type": "error",
        "ref": ref,
        "code": code,
        "message": message,
        "fields": dict(fields or {}),
    }
    if extra:
        message_["extra"] = dict(extra)
    return message_
