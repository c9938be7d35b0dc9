"""Payment failures release the hold and say why; the test provider's methods."""

from __future__ import annotations

import pytest

from checkout.errors import CheckoutError
from checkout.events import OrderUpdate
from checkout.payments import Charge, PaymentError, PaymentRequest, PaymentState
from tests.checkout.conftest import Shop


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("4000000000000002", "payment_declined"),
        ("pm_card_declined", "payment_declined"),
        ("4000000000000119", "payment_timeout"),
        ("pm_nonsense", "payment_method_invalid"),
    ],
)
async def test_failed_payment_releases_the_hold(shop: Shop, method: str, code: str) -> None:
    v = shop.v("SNK-42")
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 2, "k", method)
    assert exc.value.code == code and exc.value.http_status == 402
    assert await shop.snapshot() == before
    assert await shop.counts(v) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}
    failed = [e for e in shop.sink.events if isinstance(e, OrderUpdate)]
    assert [(e.status, e.reason) for e in failed] == [("failed", code)]
    # the same key answers the same failure; a new key may try again
    with pytest.raises(CheckoutError) as again:
        await shop.service.buy_now(shop.show_id, "u1", v, 2, "k", method)
    assert again.value.code == code
    ok = await shop.service.buy_now(shop.show_id, "u1", v, 2, "k2", "4242424242424242")
    assert ok.status == "paid"


async def test_test_provider(shop: Shop) -> None:
    provider = shop.payments
    recorded: list[str] = []

    async def record(ref: str) -> bool:
        recorded.append(ref)
        return True

    def request(attempt_id: str, method: str) -> PaymentRequest:
        return PaymentRequest(attempt_id, "u1", 100, "EUR", method, "k")

    ok = await provider.charge(request("pay_1", "pm_card_ok"), record)
    assert ok.ok and ok.ref == recorded[0]
    assert await provider.lookup("pay_1", ok.ref) == ok
    assert (await provider.cancel("pay_1", ok.ref)).ok  # too late to stop: it charged
    declined = await provider.charge(request("pay_2", "4000000000000002"), record)
    assert declined == Charge(PaymentState.FAILED, recorded[1], "payment_declined")

    # a payment whose id could not be recorded is never made
    async def refuse(ref: str) -> bool:
        return False

    none = await provider.charge(request("pay_3", "pm_card_ok"), refuse)
    assert none.state is PaymentState.NONE
    assert (await provider.lookup("pay_3", None)).state is PaymentState.NONE
    # cancelled first: the charge that comes after takes nothing
    assert (await provider.cancel("pay_4", None)).state is PaymentState.NONE
    late = await provider.charge(request("pay_4", "pm_card_ok"), record)
    assert late.state is PaymentState.NONE
    # refunds: once per key, never more than was charged
    assert ok.ref is not None
    await provider.refund(ok.ref, amount_minor=60, idempotency_key="r1")
    await provider.refund(ok.ref, amount_minor=60, idempotency_key="r1")
    with pytest.raises(PaymentError):
        await provider.refund(ok.ref, amount_minor=60, idempotency_key="r2")
    ledger = {p.attempt_id: p for p in await provider.payments()}
    assert ledger["pay_1"].refunded_minor == 60
    assert {k: p.state for k, p in ledger.items()} == {
        "pay_1": "succeeded", "pay_2": "failed", "pay_4": "cancelled",
    }  # fmt: skip
