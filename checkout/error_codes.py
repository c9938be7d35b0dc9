"""Every code checkout refuses with, and its HTTP status. README "Checkout error codes"
documents each one (``tests/test_error_codes.py`` fails when one is missing there)."""

from __future__ import annotations

CODES: dict[str, int] = {
    # input
    "invalid_quantity": 422,
    "quantity_above_limit": 422,
    "idempotency_key_missing": 422,
    "idempotency_key_invalid": 422,
    "invalid_deal": 422,
    "invalid_stock": 422,
    "invalid_refund_amount": 422,
    "invalid_reason": 422,
    # what does not exist, or not here
    "show_not_found": 404,
    "product_not_found": 404,
    "variant_not_found": 404,
    "product_unpublished": 404,
    "user_not_found": 404,
    "deal_not_found": 404,
    "not_in_cart": 404,
    "order_not_found": 404,
    # states
    "show_not_live": 409,
    "show_ended": 409,
    "illegal_transition": 409,
    "duplicate_sku": 409,
    "role_mismatch": 409,
    "idempotency_key_reused": 409,
    "request_in_progress": 409,
    "sold_out": 409,
    "out_of_stock": 409,
    "deal_limit_reached": 409,
    "deal_sold_out": 409,
    "deal_running": 409,
    "deal_expired": 422,
    "cart_empty": 409,
    "cart_expired": 409,
    "checkout_in_progress": 409,
    "mixed_currency": 409,
    "not_sold_out": 409,
    "stock_below_held": 409,
    "refund_in_progress": 409,
    # payment
    "payment_declined": 402,
    "payment_timeout": 402,
    "payment_method_invalid": 402,
    "payment_requires_action": 402,
    "payment_interrupted": 402,
    "payment_expired": 402,
    "payment_method_missing": 402,
    "payment_provider_unsupported": 409,
    "payment_not_refundable": 409,
    "refund_exceeds_payment": 409,
    "webhook_signature_invalid": 400,
    "webhook_event_invalid": 400,
    "payment_provider_error": 502,
    "payment_provider_unavailable": 503,
    "refund_refused": 502,
    "refund_unavailable": 503,
    # retry later
    "inventory_unavailable": 503,
    "order_store_unavailable": 503,
    "internal_error": 500,
}

IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
