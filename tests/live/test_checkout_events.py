"""checkout's events reach the show stream with the right class, key and audience."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from checkout.events import BackInStock, DealStarted, OrderUpdate, StockChanged
from live.checkout_events import LiveEventSink
from live.event_log import EventLog
from live.protocol import Delivery


async def test_events_go_to_the_stream(redis_client: Any) -> None:
    sink = LiveEventSink(redis_client)
    ends = datetime(2026, 1, 1, tzinfo=UTC)
    await sink.publish(StockChanged("shw_1", "var_1", 3, False))
    await sink.publish(OrderUpdate("shw_1", "usr_b", "confirmed", order_id="ord_1"))
    await sink.publish(DealStarted("shw_1", "var_1", 500, "EUR", 10, 1, ends))
    await sink.publish(BackInStock("shw_1", "var_1", 2, ["usr_a", "usr_c"]))
    entries = await EventLog(redis_client, "shw_1").after("0-0")
    seen = [(json.loads(e.event)["type"], e.delivery, e.key, e.to) for e in entries]
    assert seen == [
        ("stock", Delivery.STATE, "stock:var_1", ""),
        ("order", Delivery.PERSONAL, "", "usr_b"),
        ("deal_started", Delivery.STATE, "deal:var_1", ""),
        ("back_in_stock", Delivery.PERSONAL, "", "usr_a"),
        ("back_in_stock", Delivery.PERSONAL, "", "usr_c"),
    ]
    stock = json.loads(entries[0].event)
    assert stock["available"] == 3 and stock["sold_out"] is False
    assert json.loads(entries[2].event)["ends_at"] == "2026-01-01T00:00:00+00:00"


async def test_each_stock_update_goes_out_at_once(redis_client: Any) -> None:
    # the checkout coalesces stock updates already; the sink adds no second delay
    sink = LiveEventSink(redis_client)
    for available in (7, 6):
        await sink.publish(StockChanged("shw_2", "var_2", available, False))
    entries = await EventLog(redis_client, "shw_2").after("0-0")
    assert [json.loads(e.event)["available"] for e in entries] == [7, 6]
