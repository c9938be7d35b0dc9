"""What checkout writes to the webhooks' outbox, in the transaction of the change: an
order's ``order.paid`` and a variant's ``product.sold_out`` in the order writer's (one
insert per batch), a show's status, deals, and the lifecycle's order events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from checkout import catalog, webhook_events
from checkout.models import Order
from checkout.order_writer import OrderDraft, OrderWriter
from checkout.orders import LineSpec
from checkout.results import OrderResult
from checkout.show_state import ShowStatus
from tests.checkout.conftest import Shop, wait_until
from tests.webhooks.conftest import add_endpoint
from webhooks.models import WebhookDelivery, WebhookMessage

OK = "pm_card_ok"


async def _messages(shop: Shop, kind: str | None = None) -> list[WebhookMessage]:
    async with shop.sessions() as session:
        query = select(WebhookMessage).order_by(WebhookMessage.created_at, WebhookMessage.id)
        if kind is not None:
            query = query.where(WebhookMessage.type == kind)
        return list((await session.scalars(query)).all())


@pytest.fixture
async def hooked(shop: Shop) -> Shop:
    """The shop with one endpoint for every event type (nothing is sent: no deliverer)."""
    await add_endpoint(shop.sessions, "http://127.0.0.1:9/hooks")
    return shop


async def test_a_buy_writes_order_paid_with_its_order(hooked: Shop) -> None:
    shop = hooked
    v = shop.v("SNK-43")
    order = await shop.service.buy_now(shop.show_id, "usr_b", v, 2, "k1", OK)
    (message,) = await _messages(shop)
    assert message.type == "order.paid"
    assert message.payload == {
        "order_id": order.order_id,
        "show_id": shop.show_id,
        "buyer_id": "usr_b",
        "status": order.status,
        "lines": [
            {
                "variant_id": v,
                "product_id": message.payload["lines"][0]["product_id"],
                "sku": "SNK-43",
                "quantity": 2,
                "unit_price": {"amount": 12900, "currency": "EUR"},
            }
        ],
        "total": {"amount": 25800, "currency": "EUR"},
        "created_at": order.created_at.isoformat(),
    }
    assert message.payload["lines"][0]["product_id"].startswith("prd_")
    async with shop.sessions() as session:
        deliveries = (await session.scalars(select(WebhookDelivery))).all()
    assert [d.message_id for d in deliveries] == [message.id]
    # a replay of the key makes no second order, and no second event
    await shop.service.buy_now(shop.show_id, "usr_b", v, 2, "k1", OK)
    assert len(await _messages(shop)) == 1


async def test_the_last_unit_sends_product_sold_out_once(hooked: Shop) -> None:
    shop = hooked
    v = shop.v("SNK-42")  # 5 units
    await shop.service.buy_now(shop.show_id, "usr_a", v, 3, "k1", OK)
    assert await _messages(shop, "product.sold_out") == []
    await shop.service.buy_now(shop.show_id, "usr_b", v, 2, "k2", OK)
    (sold_out,) = await _messages(shop, "product.sold_out")
    assert sold_out.payload == {
        "show_id": shop.show_id,
        "product_id": sold_out.payload["product_id"],
        "variant_id": v,
        "sku": "SNK-42",
    }
    assert len(await _messages(shop, "order.paid")) == 2


def _draft(shop: Shop, buyer: str, *lines: LineSpec) -> OrderDraft:
    return OrderDraft(shop.show_id, buyer, f"key-{buyer}", "EUR", lines, None)


async def test_a_batch_writes_its_events_in_one_insert(hooked: Shop) -> None:
    shop = hooked
    v = shop.v("SNK-43")  # 100 units: 20 orders of 5 sell it out
    writer = OrderWriter(shop.sessions)
    await writer.start()
    statements: list[str] = []
    assert writer.engine is not None

    def seen(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT INTO webhook_" in statement:
            statements.append(statement.split("(")[0].strip())

    event.listen(writer.engine.sync_engine, "before_cursor_execute", seen)
    try:
        drafts = [_draft(shop, f"b{i}", LineSpec(v, 5, 12900)) for i in range(20)]
        outcomes = await asyncio.gather(*(writer.write(d) for d in drafts))
    finally:
        await writer.close()
    assert all(isinstance(o, OrderResult) for o in outcomes)
    paid = await _messages(shop, "order.paid")
    assert sorted(m.payload["order_id"] for m in paid) == sorted(o.order_id for o in outcomes)
    assert [m.payload["variant_id"] for m in await _messages(shop, "product.sold_out")] == [v]
    # per batch: one insert of messages, one of deliveries (never one per order)
    assert writer.batches < len(drafts)
    assert statements.count("INSERT INTO webhook_messages") == writer.batches
    assert statements.count("INSERT INTO webhook_deliveries") == writer.batches


async def test_a_refused_order_writes_no_event(hooked: Shop) -> None:
    shop = hooked
    writer = OrderWriter(shop.sessions)
    try:
        short = _draft(shop, "short", LineSpec(shop.v("SNK-42"), 6, 12900))  # 5 units
        with pytest.raises(Exception, match="not enough units"):
            await writer.write(short)
    finally:
        await writer.close()
    assert await _messages(shop) == []


async def test_without_endpoints_an_order_writes_nothing(shop: Shop) -> None:
    await shop.service.buy_now(shop.show_id, "usr_b", shop.v("MUG"), 1, "k1", OK)
    assert await _messages(shop) == []
    assert await shop.order_count() == 1


async def test_show_status_events_commit_with_the_change(hooked: Shop) -> None:
    shop = hooked
    with pytest.raises(RuntimeError):
        async with shop.sessions.begin() as session:
            await catalog.change_status(session, shop.other_show_id, ShowStatus.LIVE)
            raise RuntimeError("rolled back")
    assert await _messages(shop) == []
    async with shop.sessions.begin() as session:
        await catalog.change_status(session, shop.other_show_id, ShowStatus.LIVE)
    async with shop.sessions.begin() as session:
        await catalog.change_status(session, shop.other_show_id, ShowStatus.ENDED)
    started, ended = await _messages(shop)
    assert (started.type, ended.type) == ("show.started", "show.ended")
    assert ended.payload["show_id"] == shop.other_show_id
    assert ended.payload["title"] == "Other" and ended.payload["status"] == "ended"
    assert ended.payload["started_at"] == started.payload["started_at"] is not None
    assert ended.payload["ended_at"] is not None and started.payload["ended_at"] is None


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_deal_events(hooked: Shop) -> None:
    shop = hooked
    v, mug = shop.v("SNK-43"), shop.v("MUG")
    ends = _in(60)
    await shop.service.start_deal(
        shop.show_id, v, price_minor=9900, units=10, ends_at=ends, per_buyer_limit=2
    )
    await shop.service.stop_deal(shop.show_id, v)
    await shop.service.start_deal(
        shop.show_id, mug, price_minor=500, units=3, ends_at=_in(0.5), per_buyer_limit=1
    )
    await wait_until(lambda: _messages(shop, "deal.ended"), lambda found: len(found) == 2, 5)
    started = await _messages(shop, "deal.started")
    assert started[0].payload == {
        "show_id": shop.show_id,
        "variant_id": v,
        "deal_price": {"amount": 9900, "currency": "EUR"},
        "regular_price": {"amount": 12900, "currency": "EUR"},
        "units": 10,
        "per_buyer_limit": 2,
        "ends_at": started[0].payload["ends_at"],
    }
    assert abs(datetime.fromisoformat(started[0].payload["ends_at"]) - ends) < timedelta(
        milliseconds=2
    )
    ended = [m.payload for m in await _messages(shop, "deal.ended")]
    assert ended == [
        {"show_id": shop.show_id, "variant_id": v, "reason": "stopped"},
        {"show_id": shop.show_id, "variant_id": mug, "reason": "expired"},
    ]


async def test_the_lifecycle_events_carry_the_order(hooked: Shop) -> None:
    shop = hooked
    order = await shop.service.buy_now(shop.show_id, "usr_b", shop.v("MUG"), 2, "k1", OK)
    async with shop.sessions.begin() as session:
        row = await session.get(Order, order.order_id)
        assert row is not None
        message_id = await webhook_events.order_changed(
            session, "order.refunded", row, refunded_minor=3000, reason="damaged"
        )
    (refunded,) = await _messages(shop, "order.refunded")
    (paid,) = await _messages(shop, "order.paid")
    assert refunded.id == message_id
    assert refunded.payload == {
        **paid.payload,
        "refunded": {"amount": 3000, "currency": "EUR"},
        "reason": "damaged",
    }


async def test_the_staffs_moves_write_their_order_events(hooked: Shop) -> None:
    shop = hooked
    service = shop.service
    first = await service.buy_now(shop.show_id, "usr_b", shop.v("MUG"), 2, "k1", OK)
    second = await service.buy_now(shop.show_id, "usr_c", shop.v("MUG"), 1, "k2", OK)
    await service.refund_order(first.order_id, "admin", 1000, "late", None)
    await service.fulfil_order(first.order_id, "admin")
    await service.cancel_order(second.order_id, "admin", "out of paint")
    kinds = [(m.type, m.payload["order_id"]) for m in await _messages(shop)]
    assert kinds == [
        ("order.paid", first.order_id),
        ("order.paid", second.order_id),
        ("order.refunded", first.order_id),
        ("order.fulfilled", first.order_id),
        ("order.cancelled", second.order_id),
    ]
    (refunded,) = await _messages(shop, "order.refunded")
    assert refunded.payload["refunded"] == {"amount": 1000, "currency": "EUR"}
    assert refunded.payload["reason"] == "late"
    (cancelled,) = await _messages(shop, "order.cancelled")
    assert cancelled.payload["status"] == "cancelled"
    assert cancelled.payload["refunded"] == {"amount": 1500, "currency": "EUR"}
