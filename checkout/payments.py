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

    async def refund(self, ref: str) -> None: ...


class TestPaymentProvider:
    """Answers at once from the method; the timeout card hangs until cancelled."""

    __test__ = False  # not a pytest class

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.charges: dict[str, int] = {}
        self.refunds: list[str] = []

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

    async def refund(self, ref: str) -> None:
        self.refunds.append(ref)
