"""signaling's coded errors (codes and statuses: ``signaling/error_codes.py``)."""

from __future__ import annotations

from core.errors import CodedError, error_response

from .error_codes import CODES

__all__ = ["SignalingError", "error_response"]


class SignalingError(CodedError):
    """A refused WHIP/WHEP request: ``code``, ``message``, its HTTP status, ``fields``."""

    codes = CODES
