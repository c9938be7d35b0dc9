"""One-tap buy: hold, pay, order, confirm; idempotency; bad input changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from checkout.errors import CheckoutError
from checkout.events import OrderUpdate
from tests.checkout.conftest import Shop

OK = "pm_card_ok"


async def test_buy_now_confirms_one_order(shop: Shop) -> None:
    v = shop.v("SNK-42")
    result = await shop.service.buy_now(shop.show_id, "u1", v, 2, "k1", OK)
    assert result.status == "paid"
    assert result.total_minor == 25800 and result.currency == "EUR"
    assert [(line.variant_id, line.quantity) for line in result.lines] == [(v, 2)]
    assert result.to_json()["total"] == {"amount": 25800, "currency": "EUR"}
    assert await shop.sql_stock(v) == 3
    assert await shop.counts(v) == {"avail": 3, "held": 0, "sold": 2, "listed": 5}
    assert await shop.order_count() == 1
    await shop.assert_invariant(v)
    confirmed = [e for e in shop.sink.of("order") if isinstance(e, OrderUpdate)]
    assert [(e.buyer_id, e.status, e.order_id) for e in confirmed] == [
        ("u1", "confirmed", result.order_id)
    ]


async def test_double_tap_gives_one_order(shop: Shop) -> None:
    v = shop.v("SNK-42")
    taps = await asyncio.gather(
        *(shop.service.buy_now(shop.show_id, "u1", v, 1, "tap-1", OK) for _ in range(5))
    )
    assert len({t.order_id for t in taps}) == 1
    assert sum(not t.replayed for t in taps) == 1
    again = await shop.service.buy_now(shop.show_id, "u1", v, 1, "tap-1", OK)
    assert again.order_id == taps[0].order_id and again.replayed
    assert await shop.order_count() == 1
    assert await shop.sql_stock(v) == 4
    assert await shop.counts(v) == {"avail": 4, "held": 0, "sold": 1, "listed": 5}


async def test_same_key_different_content_is_refused(shop: Shop) -> None:
    v = shop.v("SNK-42")
    await shop.service.buy_now(shop.show_id, "u1", v, 1, "k", OK)
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 2, "k", OK)
    assert exc.value.code == "idempotency_key_reused"
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", shop.v("MUG"), 1, "k", OK)
    assert exc.value.code == "idempotency_key_reused"
    assert await shop.snapshot() == before
    # the same key from another buyer is another request
    other = await shop.service.buy_now(shop.show_id, "u2", v, 1, "k", OK)
    assert other.buyer_id == "u2"


async def test_sold_out_refusal_and_sql_guard(shop: Shop) -> None:
    v = shop.v("SNK-44")
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k", OK)
    assert exc.value.code == "sold_out" and exc.value.http_status == 409
    assert await shop.snapshot() == before


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown variant", {"variant_id": "var_nope"}, "variant_not_found"),
    ("other show's variant", {"variant_id": "FAR"}, "variant_not_found"),
    ("unpublished", {"variant_id": "HIDDEN"}, "product_unpublished"),
    ("unknown show", {"show_id": "shw_nope"}, "show_not_found"),
    ("show not live", {"show_id": "OTHER"}, "show_not_live"),
    ("zero", {"quantity": 0}, "invalid_quantity"),
    ("negative", {"quantity": -1}, "invalid_quantity"),
    ("not an integer", {"quantity": 1.5}, "invalid_quantity"),
    ("bool", {"quantity": True}, "invalid_quantity"),
    ("above limit", {"quantity": 11}, "quantity_above_limit"),
    ("more than stock", {"quantity": 6}, "out_of_stock"),
    ("missing key", {"idempotency_key": ""}, "idempotency_key_missing"),
    ("bad key", {"idempotency_key": "a b"}, "idempotency_key_invalid"),
    ("missing method", {"payment_method": ""}, "payment_method_invalid"),
]


@pytest.mark.parametrize(("case", "change", "code"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_changes_nothing(
    shop: Shop, case: str, change: dict[str, Any], code: str
) -> None:
    args: dict[str, Any] = {
        "show_id": shop.show_id,
        "buyer_id": "u1",
        "variant_id": shop.v("SNK-42"),
        "quantity": 1,
        "idempotency_key": "k",
        "payment_method": OK,
    }
    args.update(change)
    if args["variant_id"] in shop.variants:
        args["variant_id"] = shop.v(args["variant_id"])
    if args["show_id"] == "OTHER":
        args["show_id"] = shop.other_show_id
        args["variant_id"] = shop.v("FAR")
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(**args)
    assert exc.value.code == code
    assert await shop.snapshot() == before
    assert await shop.redis.keys("inv:*idem*") == []
