"""The signaling error vocabulary and its single JSON shape."""

from __future__ import annotations

from starlette.responses import JSONResponse

# code -> HTTP status; every SignalingError uses one of these codes.
ERROR_STATUS: dict[str, int] = {
    "bad_request": 400,
    "malformed_sdp": 400,
    "no_video": 400,
    "unsupported_codec": 400,
    "unsupported_offer": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "session_not_found": 404,
    "method_not_allowed": 405,
    "publisher_conflict": 409,
    "show_not_live": 409,
    "precondition_failed": 412,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "not_implemented": 501,
    "service_closed": 503,
    "video_unavailable": 503,
}


class SignalingError(Exception):
    """A coded error: ``code``, ``http_status`` (from ``code`` unless given), ``message``,
    ``fields`` (which input was wrong), in that order."""

    def __init__(
        self,
        code: str,
        http_status: int | None = None,
        message: str = "",
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else ERROR_STATUS[code]
        self.fields = dict(fields or {})

    def to_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


def error_response(error: SignalingError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status, headers=headers)
