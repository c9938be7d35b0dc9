"""The payment port and the built-in test provider.

Test payment methods (card numbers or tokens):

| method | outcome |
|---|---|
| ``pm_card_ok``, ``4242424242424242`` | succeeds |
| ``pm_card_declined``, ``4000000000000002`` | declined (``payment_declined``) |
| ``pm_card_timeout``, ``4000000000000119`` | hangs: the timeout fires (``payment_timeout``) |

Anything else is refused as ``payment_method_invalid``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Protocol

OK = frozenset({"pm_card_ok", "4242424242424242"})
DECLINED = frozenset({"pm_card_declined", "4000000000000002"})
TIMEOUT = frozenset({"pm_card_timeout", "4000000000000119"})


class PaymentError(Exception):
    """The provider refused (``code`` says why, e.g. ``refund_exceeds_payment``)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class RecordedRefund:
    ref: str
    amount_minor: int
    idempotency_key: str | None


@dataclass(frozen=True)
class Charge:
    """The provider's answer: ``ok`` with a reference, or a coded ``reason``."""

    ok: bool
    ref: str | None = None
    reason: str | None = None


class PaymentProvider(Protocol):
    timeout_s: float
    """How long the service waits for ``charge``; the payment hold must outlast it."""

    async def charge(
        self, *, amount_minor: int, currency: str, payment_method: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(
        self, ref: str, *, amount_minor: int | None = None, idempotency_key: str | None = None
    ) -> None:
        """Give back ``amount_minor`` (None: all that is left); PaymentError when refused.
        Refunding a wholly refunded payment again is no error and gives nothing back."""
        ...


class TestPaymentProvider:
    """Answers at once from the method; the timeout card hangs until cancelled."""

    __test__ = False  # not a pytest class

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.charges: dict[str, int] = {}
        self.refunds: list[RecordedRefund] = []

    async def charge(
        self, *, amount_minor: int, currency: str, payment_method: str, idempotency_key: str
    ) -> Charge:
        if payment_method in OK:
            ref = f"pay_{secrets.token_urlsafe(9)}"
            self.charges[ref] = amount_minor
            return Charge(ok=True, ref=ref)
        if payment_method in DECLINED:
            return Charge(ok=False, reason="payment_declined")
        if payment_method in TIMEOUT:
            await asyncio.sleep(3600)
        return Charge(ok=False, reason="payment_method_invalid")

    async def refund(
        self, ref: str, *, amount_minor: int | None = None, idempotency_key: str | None = None
    ) -> None:
        """Records the refund (amount and key). Like a real provider it never gives back
        more than was charged, a wholly refunded payment refunds again as a no-op, and a key
        it has seen is answered without a second refund."""
        charged = self.charges.get(ref)
        if charged is None:
            raise PaymentError("refund_unknown_payment", f"no payment {ref!r}")
        if idempotency_key is not None and any(
            r.idempotency_key == idempotency_key for r in self.refunds
        ):
            return
        left = charged - sum(r.amount_minor for r in self.refunds if r.ref == ref)
        if left == 0:
            return
        amount = left if amount_minor is None else amount_minor
        if not 0 < amount <= left:
            raise PaymentError("refund_exceeds_payment", f"{left} left to refund, not {amount}")
        self.refunds.append(RecordedRefund(ref, amount, idempotency_key))
