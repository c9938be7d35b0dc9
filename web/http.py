"""Request helpers: a size-capped JSON body (nested at most ``core.json_depth.MAX_DEPTH``)
validated into a model, with field-level errors."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from core.json_depth import MAX_DEPTH, has_nul, too_deep
from web.errors import ApiError
from web.parts import parts

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError("bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError("body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    # (a client that hangs up mid-body raises ClientDisconnect: web.errors.handle_disconnect)
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or "body"
        fields.setdefault(name, err["msg"])
    return fields


def parse_model(model: type[M], raw: Any) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(
            "invalid_input", "some fields are not valid", fields=field_errors(exc)
        ) from None


def _no_constant(name: str) -> object:
    """NaN and Infinity are not JSON: refuse them rather than store what cannot be sent."""
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # one, not one per request


async def json_body(request: Request, model: type[M]) -> M:
    """Parse the request's JSON body into ``model`` or raise a coded 4xx ApiError."""
    limit = parts(request.app).settings.max_body_bytes
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError("unsupported_media_type", "send application/json")
    raw = await read_body(request, limit)
    return parse_model(model, parse_json(raw))


def parse_json(raw: bytes) -> Any:
    """The body's JSON value, or a coded 400: not JSON, or nested past MAX_DEPTH."""
    try:
        text = raw.decode("utf-8-sig")  # (a BOM is ignored, RFC 8259 8.1)
    except UnicodeDecodeError:
        raise ApiError("malformed_json", "the body is not valid UTF-8") from None
    if too_deep(text):
        raise ApiError("json_too_deep", f"JSON nests at most {MAX_DEPTH} arrays or objects deep")
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):  # (JSONDecodeError is a ValueError)
        raise ApiError("malformed_json", "the body is not valid JSON") from None
    if "\\u0000" in text and has_nul(value):  # (the only way JSON can carry a NUL)
        raise ApiError(
            "invalid_input",
            "text may not contain the NUL character (U+0000)",
            fields={"body": "contains U+0000"},
        )
    return value
