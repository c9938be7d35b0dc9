"""Flash deals: price only while it runs, per-buyer limit across double taps and carts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from checkout.errors import CheckoutError
from checkout.events import DealEnded, DealStarted
from tests.checkout.conftest import Shop, wait_until

OK = "pm_card_ok"


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_deal_price_and_limit_across_taps_and_cart(shop: Shop) -> None:
    v = shop.v("SNK-43")
    deal = await shop.service.start_deal(
        shop.show_id, v, price_minor=9900, units=10, ends_at=_in(60), per_buyer_limit=2
    )
    assert deal.to_json()["price"] == {"amount": 9900, "currency": "EUR"}
    assert [type(e) for e in shop.sink.events] == [DealStarted]
    taps = await asyncio.gather(
        *(shop.service.buy_now(shop.show_id, "u", v, 1, f"k{i}", OK) for i in range(5)),
        return_exceptions=True,
    )
    orders = [t for t in taps if not isinstance(t, BaseException)]
    refused = [t for t in taps if isinstance(t, CheckoutError)]
    assert len(orders) == 2 and all(o.total_minor == 9900 for o in orders)
    assert [r.code for r in refused] == ["deal_limit_reached"] * 3
    with pytest.raises(CheckoutError) as exc:
        await shop.service.add_to_cart(shop.show_id, "u", v, 1)
    assert exc.value.code == "deal_limit_reached"
    view = await shop.service.add_to_cart(shop.show_id, "other", v, 2)
    assert view.lines[0].unit_price_minor == 9900
    (running,) = await shop.service.deals(shop.show_id)
    assert running.units_left == 6
    await shop.service.stop_deal(shop.show_id, v)
    assert await shop.service.deals(shop.show_id) == []
    view = await shop.service.view_cart(shop.show_id, "other")
    assert view.lines[0].unit_price_minor == 12900  # the deal price applies only while it runs
    order = await shop.service.checkout_cart(shop.show_id, "other", "c", OK)
    assert order.total_minor == 2 * 12900
    ended = [e for e in shop.sink.events if isinstance(e, DealEnded)]
    assert [(e.variant_id, e.reason) for e in ended] == [(v, "stopped")]


async def test_deal_expires_by_itself(shop: Shop) -> None:
    v = shop.v("MUG")
    await shop.service.start_deal(
        shop.show_id, v, price_minor=500, units=3, ends_at=_in(0.6), per_buyer_limit=1
    )
    await wait_until(
        lambda: asyncio.sleep(0, [e for e in shop.sink.events if isinstance(e, DealEnded)]),
        lambda ended: len(ended) == 1,
        3,
    )
    ended = [e for e in shop.sink.events if isinstance(e, DealEnded)]
    assert [(e.variant_id, e.reason) for e in ended] == [(v, "expired")]
    order = await shop.service.buy_now(shop.show_id, "u", v, 2, "k", OK)
    assert order.total_minor == 3000


async def test_deal_units_sold_out(shop: Shop) -> None:
    v = shop.v("SNK-43")
    await shop.service.start_deal(
        shop.show_id, v, price_minor=100, units=2, ends_at=_in(60), per_buyer_limit=5
    )
    await shop.service.buy_now(shop.show_id, "a", v, 2, "k", OK)
    ended = [e for e in shop.sink.events if isinstance(e, DealEnded)]
    assert [e.reason for e in ended] == ["sold_out"]
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "b", v, 1, "k", OK)
    assert exc.value.code == "deal_sold_out"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price_minor": -1}, "invalid_deal"),
        ({"units": 0}, "invalid_deal"),
        ({"per_buyer_limit": 0}, "invalid_deal"),
        ({"per_buyer_limit": 11}, "invalid_deal"),
        ({"price_minor": 10**30}, "invalid_deal"),
        ({"units": 10**12}, "invalid_deal"),
        ({"ends_at": datetime(2020, 1, 1)}, "invalid_deal"),
        ({"ends_at": datetime(2020, 1, 1, tzinfo=UTC)}, "deal_expired"),
        ({"units": 101}, "out_of_stock"),
    ],
)
async def test_bad_deals_change_nothing(shop: Shop, change: dict[str, object], code: str) -> None:
    args: dict[str, object] = {
        "price_minor": 100,
        "units": 5,
        "ends_at": _in(60),
        "per_buyer_limit": 1,
    }
    args.update(change)
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.start_deal(shop.show_id, shop.v("SNK-43"), **args)  # type: ignore[arg-type]
    assert exc.value.code == code
    assert await shop.snapshot() == before
    assert await shop.service.deals(shop.show_id) == []
    assert shop.sink.events == []
