"""An order's life after the buy, on real Redis and both databases: every move and every
refused one, whole, partial and too large refunds, a cancel's units back on sale, repeats
that refund once, and a provider that fails (refuses, loses its answer, or its caller's
process dies) between the refund and its record."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from checkout.events import StockChanged
from checkout.models import OrderHistory, OrderRefund, RefundState
from checkout.order_actions import REFUND_CLAIM_S
from checkout.order_states import ORDER_TRANSITIONS, OrderStatus
from checkout.payments import PaymentError, TestPaymentProvider
from core.db import utcnow
from core.errors import CodedError
from tests.checkout.conftest import Shop, wait_until

PRICE = 12900  # SNK-42, 5 in stock


class FaultyProvider(TestPaymentProvider):
    """The built-in provider with faults armed one refund at a time: refuse it, lose the
    answer after refunding, or refund then hang (its caller's process dies meanwhile)."""

    __test__ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refuse: str | None = None
        self.lose_answer = False
        self.hang = False
        self.refunded = asyncio.Event()
        self.calls = 0

    async def refund(self, ref: str, *, amount_minor: int, idempotency_key: str) -> None:
        self.calls += 1
        if self.refuse is not None:
            code, self.refuse = self.refuse, None
            raise PaymentError(code, "the provider refused the refund")
        await super().refund(ref, amount_minor=amount_minor, idempotency_key=idempotency_key)
        self.refunded.set()
        if self.lose_answer:
            self.lose_answer = False
            raise ConnectionError("the answer was lost")
        if self.hang:
            self.hang = False
            await asyncio.sleep(3600)


@pytest.fixture
def provider_class() -> type[TestPaymentProvider]:
    return FaultyProvider


def _faulty(shop: Shop) -> FaultyProvider:
    assert isinstance(shop.payments, FaultyProvider)
    return shop.payments


async def _buy(shop: Shop, quantity: int = 1, key: str = "k1", buyer: str = "u1") -> str:
    result = await shop.service.buy_now(
        shop.show_id, buyer, shop.v("SNK-42"), quantity, key, "pm_card_ok"
    )
    await shop.service.settled()
    return result.order_id


async def _refunded(shop: Shop) -> list[int]:
    return [r.amount_minor for r in await shop.payments.refunds()]


async def _refused(call: Awaitable[object]) -> CodedError:
    with pytest.raises(CodedError) as exc:
        await call
    return exc.value


def test_the_table_allows_exactly_the_documented_moves() -> None:
    moves = {(a, b) for a in OrderStatus for b in ORDER_TRANSITIONS[a]}
    assert moves == {
        (OrderStatus.PAID, OrderStatus.FULFILLED),
        (OrderStatus.PAID, OrderStatus.CANCELLED),
        (OrderStatus.PAID, OrderStatus.REFUNDED),
        (OrderStatus.FULFILLED, OrderStatus.REFUNDED),
    }


async def test_fulfil_then_refund_a_returned_parcel(shop: Shop) -> None:
    order_id = await _buy(shop, 2)
    stock = await shop.sql_stock(shop.v("SNK-42"))
    fulfilled = await shop.service.fulfil_order(order_id, "admin")
    assert fulfilled.status == "fulfilled" and fulfilled.fulfilled_at is not None
    again = await shop.service.fulfil_order(order_id, "admin")  # a repeat: as it is
    assert again.status == "fulfilled" and again.history is not None and len(again.history) == 1
    refused = await _refused(shop.service.cancel_order(order_id, "admin", None))
    assert (refused.code, refused.http_status) == ("illegal_transition", 409)
    assert "fulfilled" in refused.message
    refunded = await shop.service.refund_order(order_id, "usr_host", reason="returned")
    assert refunded.status == "refunded" and refunded.refunded_minor == 2 * PRICE
    assert await _refunded(shop) == [2 * PRICE]
    assert await shop.sql_stock(shop.v("SNK-42")) == stock  # shipped units stay sold
    assert refunded.history is not None
    assert [
        (s.action, s.from_status, s.to_status, s.actor, s.reason) for s in refunded.history
    ] == [
        ("fulfil", "paid", "fulfilled", "admin", None),
        ("refund", "fulfilled", "refunded", "usr_host", "returned"),
    ]
    for move in (
        shop.service.fulfil_order(order_id, "admin"),
        shop.service.cancel_order(order_id, "admin", None),
        shop.service.refund_order(order_id, "admin", 100),
    ):
        assert (await _refused(move)).code == "illegal_transition"
    assert await _refunded(shop) == [2 * PRICE]


async def test_partial_refunds_keep_the_order_until_the_total(shop: Shop) -> None:
    order_id = await _buy(shop, 2)
    first = await shop.service.refund_order(order_id, "admin", 1000, "scratched box")
    assert (first.status, first.refunded_minor) == ("paid", 1000)
    too_much = await _refused(shop.service.refund_order(order_id, "admin", 2 * PRICE))
    assert (too_much.code, too_much.http_status) == ("invalid_refund_amount", 422)
    assert too_much.fields == {"amount_minor": f"1-{2 * PRICE - 1000}"}
    for bad in (0, -5):
        assert (await _refused(shop.service.refund_order(order_id, "a", bad))).code == (
            "invalid_refund_amount"
        )
    rest = await shop.service.refund_order(order_id, "admin")  # all that is left
    assert (rest.status, rest.refunded_minor) == ("refunded", 2 * PRICE)
    again = await shop.service.refund_order(order_id, "admin")  # a repeat: as it is
    assert again.status == "refunded"
    assert await _refunded(shop) == [1000, 2 * PRICE - 1000]
    assert [r.idempotency_key for r in await shop.payments.refunds()] == [
        f"refund:{order_id}:1",
        f"refund:{order_id}:2",
    ]
    stats = await shop.service.stats(shop.show_id)
    assert stats == {"orders": 0, "revenue_minor": 0, "units_sold": 0}


async def test_a_request_key_refunds_once(shop: Shop) -> None:
    order_id = await _buy(shop, 2)
    for _ in range(2):
        detail = await shop.service.refund_order(order_id, "admin", 500, None, "rk-1")
        assert detail.refunded_minor == 500
    reused = await _refused(shop.service.refund_order(order_id, "admin", 700, None, "rk-1"))
    assert reused.code == "idempotency_key_reused"
    bad = await _refused(shop.service.refund_order(order_id, "admin", 700, None, "no spaces"))
    assert bad.code == "idempotency_key_invalid"
    assert await _refunded(shop) == [500]
    stats = await shop.service.stats(shop.show_id)
    assert stats == {"orders": 1, "revenue_minor": 2 * PRICE - 500, "units_sold": 2}


async def test_cancel_refunds_and_puts_the_units_back_on_sale(shop: Shop) -> None:
    variant = shop.v("SNK-42")
    mine = await _buy(shop, 3, "k1", "u1")
    await _buy(shop, 2, "k2", "u2")  # the last units
    sold_out = await _refused(
        shop.service.buy_now(shop.show_id, "u3", variant, 1, "k3", "pm_card_ok")
    )
    assert sold_out.code == "sold_out"
    await shop.service.refund_order(mine, "admin", 100)
    cancelled = await shop.service.cancel_order(mine, "usr_host", "out of size")
    assert (cancelled.status, cancelled.refunded_minor) == ("cancelled", 3 * PRICE)
    assert cancelled.cancelled_at is not None
    assert await _refunded(shop) == [100, 3 * PRICE - 100]
    assert await shop.sql_stock(variant) == 3
    assert (await shop.counts(variant))["avail"] == 3

    async def heard() -> list[StockChanged]:
        return [e for e in shop.sink.of("stock") if isinstance(e, StockChanged)]

    await wait_until(
        heard, lambda news: any(e.variant_id == variant and e.available == 3 for e in news), 3
    )
    again = await shop.service.cancel_order(mine, "admin", None)  # a repeat: as it is
    assert again.status == "cancelled" and again.history is not None
    assert [s.action for s in again.history] == ["refund", "cancel"]
    assert await _refunded(shop) == [100, 3 * PRICE - 100]
    for move in (
        shop.service.fulfil_order(mine, "admin"),
        shop.service.refund_order(mine, "admin"),
    ):
        assert (await _refused(move)).code == "illegal_transition"
    bought = await shop.service.buy_now(shop.show_id, "u3", variant, 3, "k4", "pm_card_ok")
    assert bought.status == "paid"
    await shop.service.settled()
    assert await shop.sql_stock(variant) == 0


async def test_an_unknown_order(shop: Shop) -> None:
    for call in (
        shop.service.order("ord_nope"),
        shop.service.order_show("ord_nope"),
        shop.service.fulfil_order("ord_nope", "admin"),
        shop.service.cancel_order("ord_nope", "admin", None),
        shop.service.refund_order("ord_nope", "admin"),
    ):
        refused = await _refused(call)
        assert (refused.code, refused.http_status) == ("order_not_found", 404)


async def test_a_refused_refund_changes_nothing_and_a_retry_refunds_once(shop: Shop) -> None:
    order_id = await _buy(shop, 1)
    _faulty(shop).refuse = "refund_declined"
    refused = await _refused(shop.service.refund_order(order_id, "admin"))
    assert (refused.code, refused.http_status) == ("refund_refused", 502)
    assert refused.fields == {"provider": "refund_declined"}
    detail = await shop.service.order(order_id)
    assert (detail.status, detail.refunded_minor) == ("paid", 0)
    assert detail.refunds is not None and [r.state for r in detail.refunds] == ["failed"]
    retried = await shop.service.refund_order(order_id, "admin")
    assert retried.status == "refunded"
    assert await _refunded(shop) == [PRICE]


@pytest.mark.parametrize("move", ["cancel", "refund", "partial"])
async def test_a_lost_answer_is_finished_by_the_retry_once(shop: Shop, move: str) -> None:
    """The provider refunded but its answer never came: the row stays pending, and the
    retry asks again with the same key and amount, which gives nothing back twice."""
    order_id = await _buy(shop, 2)
    amount = 700 if move == "partial" else 2 * PRICE
    provider = _faulty(shop)
    provider.lose_answer = True
    call = (
        shop.service.cancel_order(order_id, "admin", None)
        if move == "cancel"
        else shop.service.refund_order(order_id, "admin", 700 if move == "partial" else None)
    )
    lost = await _refused(call)
    assert (lost.code, lost.http_status) == ("refund_unavailable", 503)
    detail = await shop.service.order(order_id)
    assert (detail.status, detail.refunded_minor) == ("paid", 0)
    assert detail.refunds is not None and [r.state for r in detail.refunds] == ["pending"]
    assert await _refunded(shop) == [amount]  # the provider did refund
    if move == "cancel":
        retried = await shop.service.cancel_order(order_id, "admin", None)
    elif move == "refund":
        retried = await shop.service.refund_order(order_id, "admin")
    else:  # any move of the order finishes the pending refund first
        retried = await shop.service.fulfil_order(order_id, "admin")
    want = {"cancel": "cancelled", "refund": "refunded", "partial": "fulfilled"}[move]
    assert (retried.status, retried.refunded_minor) == (want, amount)
    assert await _refunded(shop) == [amount]
    assert provider.calls == 2
    assert retried.refunds is not None and [r.state for r in retried.refunds] == ["succeeded"]


async def test_a_refund_whose_process_died_is_taken_over_after_its_claim(shop: Shop) -> None:
    """The provider refunded, then the process died before recording it: the row stays
    pending and claimed; others are told refund_in_progress until the claim is old, then
    the next move finishes it, once."""
    order_id = await _buy(shop, 2)
    stock = await shop.sql_stock(shop.v("SNK-42"))
    provider = _faulty(shop)
    provider.hang = True
    dying = asyncio.create_task(shop.service.cancel_order(order_id, "admin", None))
    await asyncio.wait_for(provider.refunded.wait(), 2)
    dying.cancel()  # (the process dies: nothing after the provider's refund runs)
    with pytest.raises(asyncio.CancelledError):
        await dying
    busy = await _refused(shop.service.cancel_order(order_id, "admin", None))
    assert (busy.code, busy.http_status) == ("refund_in_progress", 409)
    busy = await _refused(shop.service.fulfil_order(order_id, "admin"))
    assert busy.code == "refund_in_progress"
    async with shop.sessions.begin() as session:
        await session.execute(
            update(OrderRefund)
            .where(OrderRefund.order_id == order_id)
            .values(claimed_at=utcnow() - timedelta(seconds=REFUND_CLAIM_S + 1))
        )
    done = await shop.service.cancel_order(order_id, "admin", None)
    assert (done.status, done.refunded_minor) == ("cancelled", 2 * PRICE)
    assert await _refunded(shop) == [2 * PRICE]
    assert await shop.sql_stock(shop.v("SNK-42")) == stock + 2
    async with shop.sessions() as session:
        states = (await session.scalars(select(OrderRefund.state))).all()
        steps = (await session.scalars(select(OrderHistory.action))).all()
    assert list(states) == [RefundState.SUCCEEDED] and list(steps) == ["cancel"]


async def test_a_shows_orders_by_status(shop: Shop) -> None:
    first = await _buy(shop, 1, "k1")
    second = await _buy(shop, 1, "k2")
    await shop.service.fulfil_order(second, "admin")
    every = await shop.service.show_orders(shop.show_id)
    assert [o.order_id for o in every] == [first, second]
    assert every[0].history is None and "history" not in every[0].to_json()
    paid = await shop.service.show_orders(shop.show_id, OrderStatus.PAID)
    assert [o.order_id for o in paid] == [first]
    refused = await _refused(shop.service.show_orders("shw_nope"))
    assert refused.code == "show_not_found"
