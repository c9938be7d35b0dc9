"""The webhooks domain's coded errors (codes and statuses: ``webhooks/error_codes.py``)."""

from __future__ import annotations

from core.errors import CodedError
from webhooks.error_codes import CODES


class WebhookError(CodedError):
    """A refused webhook request: a bad URL or event type, an unknown endpoint or delivery."""

    codes = CODES
    default_status = 422
