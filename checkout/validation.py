"""What a checkout request must carry (quantity, idempotency key, payment method), checked
before anything is reserved, and the coded error a failed request answers."""

from __future__ import annotations

import re

from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import CheckoutError, IdempotencyError, InvalidInput, OutOfStock, PaymentFailed

MAX_QUANTITY = 10
"""Most units of one variant in one tap or one cart line."""
MAX_PRICE_MINOR = 100_000_000
"""Highest price in minor units (Lua numbers in Redis stay exact integers below it)."""
MAX_UNITS = 10_000_000
"""Most units of one variant in stock, or in a deal."""
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def check_quantity(quantity: object, *, allow_zero: bool = False) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise InvalidInput(
            "invalid_quantity",
            "quantity must be an integer",
            fields={"quantity": "an integer"},
        )
    low = 0 if allow_zero else 1
    if quantity < low:
        raise InvalidInput(
            "invalid_quantity",
            f"quantity must be at least {low}",
            fields={"quantity": f">= {low}"},
        )
    if quantity > MAX_QUANTITY:
        raise InvalidInput(
            "quantity_above_limit",
            f"at most {MAX_QUANTITY} units at once",
            fields={"quantity": f"<= {MAX_QUANTITY}"},
        )
    return quantity


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput(
            "idempotency_key_missing",
            "an idempotency key is required",
            fields={"idempotency_key": "required"},
        )
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "idempotency_key_invalid",
            "the idempotency key must be 1-100 of A-Z a-z 0-9 . _ -",
            fields={"idempotency_key": "1-100 of A-Z a-z 0-9 . _ -"},
        )
    return key


def check_method(method: object) -> str:
    if not isinstance(method, str) or not method or len(method) > 100:
        raise InvalidInput(
            "payment_method_invalid",
            "a payment method is required",
            http_status=422,
            fields={"payment_method": "required"},
        )
    return method


def failure(reason: str) -> CheckoutError:
    """The coded error a failed request answers, also when it is replayed."""
    if reason.startswith("payment_"):
        return PaymentFailed(reason, f"the payment failed: {reason}")
    if reason in ("out_of_stock", "sold_out"):
        return OutOfStock(reason, "not enough units")
    if reason == IDEMPOTENCY_KEY_REUSED:
        return IdempotencyError(
            IDEMPOTENCY_KEY_REUSED, "this idempotency key was used for a different request"
        )
    return CheckoutError(reason, f"the request failed: {reason}", http_status=409)
