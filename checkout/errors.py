"""checkout's coded errors. The web layer turns any of them into the one JSON error shape."""

from __future__ import annotations


class CheckoutError(Exception):
    """A refusal with a stable machine-readable ``code`` and, where it helps, per-field reasons."""

    code = "checkout_error"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        fields: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.fields = fields or {}
        self.extra = extra or {}


class NotFound(CheckoutError):
    code = "not_found"
    http_status = 404


class Conflict(CheckoutError):
    code = "conflict"
    http_status = 409


class InvalidInput(CheckoutError):
    code = "invalid_input"
    http_status = 422


class OutOfStock(CheckoutError):
    """Not enough units; ``fields`` names every short variant with the units left."""

    code = "out_of_stock"
    http_status = 409


class IdempotencyError(CheckoutError):
    code = "idempotency_key_reused"
    http_status = 409


class PaymentFailed(CheckoutError):
    code = "payment_declined"
    http_status = 402


class Unavailable(CheckoutError):
    """Retryable: the inventory is being rebuilt or Redis is unreachable."""

    code = "inventory_unavailable"
    http_status = 503
