"""Every code the webhooks domain refuses with, and its HTTP status. README "Webhook error
codes" documents each one."""

from __future__ import annotations

CODES: dict[str, int] = {
    "webhook_url_invalid": 422,
    "webhook_url_private": 422,
    "unknown_event_type": 422,
    "webhook_endpoint_not_found": 404,
    "webhook_delivery_not_found": 404,
}
