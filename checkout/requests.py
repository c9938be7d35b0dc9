"""What a checkout request must carry (quantity, idempotency key, payment method), checked
before anything is reserved, and the coded error a failed request answers."""

from __future__ import annotations

import re

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
            "quantity must be an integer",
            code="invalid_quantity",
            fields={"quantity": "an integer"},
        )
    low = 0 if allow_zero else 1
    if quantity < low:
        raise InvalidInput(
            f"quantity must be at least {low}",
            code="invalid_quantity",
            fields={"quantity": f">= {low}"},
        )
    if quantity > MAX_QUANTITY:
        raise InvalidInput(
            f"at most {MAX_QUANTITY} units at once",
            code="quantity_above_limit",
            fields={"quantity": f"<= {MAX_QUANTITY}"},
        )
    return quantity


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput(
            "an idempotency key is required",
            code="idempotency_key_missing",
            fields={"idempotency_key": "required"},
        )
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "the idempotency key must be 1-100 of A-Z a-z 0-9 . _ -",
            code="idempotency_key_invalid",
            fields={"idempotency_key": "1-100 of A-Z a-z 0-9 . _ -"},
        )
    return key


def check_method(method: object) -> str:
    if not isinstance(method, str) or not method or len(method) > 100:
        raise InvalidInput(
            "a payment method is required",
            code="payment_method_invalid",
            fields={"payment_method": "required"},
        )
    return method


def failure(reason: str) -> CheckoutError:
    """The coded error a failed request answers, also when it is replayed."""
    if reason.startswith("payment_"):
        return PaymentFailed(f"the payment failed: {reason}", code=reason)
    if reason in ("out_of_stock", "sold_out"):
        return OutOfStock("not enough units", code=reason)
    if reason == IdempotencyError.code:
        return IdempotencyError("this idempotency key was used for a different request")
    return CheckoutError(f"the request failed: {reason}", code=reason, http_status=409)
