"""Payment failures release the hold and say why; the test provider's methods."""

from __future__ import annotations

import pytest

from checkout.errors import CheckoutError
from checkout.events import OrderUpdate
from checkout.payments import TestPaymentProvider
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


async def test_test_provider() -> None:
    provider = TestPaymentProvider(timeout_s=0.1)
    ok = await provider.charge(
        amount_minor=100, currency="EUR", payment_method="pm_card_ok", idempotency_key="k"
    )
    assert ok.ok and ok.ref is not None and provider.charges == {ok.ref: 100}
    declined = await provider.charge(
        amount_minor=100, currency="EUR", payment_method="4000000000000002", idempotency_key="k"
    )
    assert declined == type(declined)(ok=False, reason="payment_declined")
