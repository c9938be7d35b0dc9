"""checkout's coded errors (codes and statuses: ``checkout/error_codes.py``).

The classes are categories a caller can catch (``OutOfStock``, ``PaymentFailed``,
``Unavailable``...); the code says exactly what happened and gives the HTTP status.
"""

from __future__ import annotations

from checkout.error_codes import CODES
from core.errors import CodedError


class CheckoutError(CodedError):
    codes = CODES
    default_status = 409


class NotFound(CheckoutError):
    default_status = 404


class Conflict(CheckoutError):
    default_status = 409


class InvalidInput(CheckoutError):
    default_status = 422


class OutOfStock(CheckoutError):
    """Not enough units; ``fields`` names every short variant with the units left."""


class IdempotencyError(CheckoutError):
    """The key was used for a different request."""


class PaymentFailed(CheckoutError):
    default_status = 402


class Unavailable(CheckoutError):
    """Retryable: the inventory is being rebuilt or Redis is unreachable."""

    default_status = 503
