"""A refused tap can release holds on its way (the reserve script first gives back every hold
whose time is up): those releases are announced like any other, or a buyer's cart runs out
silently and the page keeps showing "sold out" for units that are back."""

from __future__ import annotations

import asyncio

from checkout.errors import OutOfStock
from checkout.events import BackInStock, OrderUpdate, StockChanged
from checkout.holds import HoldState
from checkout.stock_events import STOCK_EVENT_INTERVAL_S
from tests.checkout.conftest import Shop


async def _stop_the_sweeper() -> None:
    """The release must happen inside the refused reserve, not in the background sweep."""
    (sweeper,) = [t for t in asyncio.all_tasks() if t.get_name() == "checkout-sweeper"]
    sweeper.cancel()
    await asyncio.gather(sweeper, return_exceptions=True)


async def test_a_refused_tap_announces_the_holds_it_released(shop: Shop) -> None:
    await _stop_the_sweeper()
    v = shop.v("SNK-42")  # 5 units
    cart = f"c:{shop.show_id}:early"
    await shop.service.inventory.reserve(
        v, cart, buyer_id="early", show_id=shop.show_id, quantity=5, ttl_ms=200,
        state=HoldState.HELD,
    )  # fmt: skip
    await shop.service.notify_me(shop.show_id, "waiting", v)
    await asyncio.sleep(0.4)  # the cart line's time is up; nothing has released it yet
    shop.sink.events.clear()
    try:
        await shop.service.buy_now(shop.show_id, "late", v, 6, "k1", "pm_card_ok")
    except OutOfStock as exc:
        assert exc.code == "out_of_stock"  # 5 are back, 6 were asked
    else:
        raise AssertionError("6 of 5 units were sold")
    assert await shop.counts(v) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}
    await asyncio.sleep(STOCK_EVENT_INTERVAL_S * 3)
    expired = [e for e in shop.sink.events if isinstance(e, OrderUpdate)]
    assert [(e.buyer_id, e.status) for e in expired] == [("early", "cart_expired")]
    stock = [e for e in shop.sink.events if isinstance(e, StockChanged)]
    assert [(e.variant_id, e.available) for e in stock] == [(v, 5)]
    back = [e for e in shop.sink.events if isinstance(e, BackInStock)]
    assert [(e.variant_id, e.available, e.viewer_ids) for e in back] == [(v, 5, ["waiting"])]
