"""Payment attempts: what a dead worker left is settled by another, never charged twice;
authentication (3-D Secure) is waited for; a stale Redis connection is retried once."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from checkout.attempts import Attempts, HeldLine
from checkout.errors import CheckoutError
from checkout.holds import HoldState
from checkout.inventory import Reserved, idem_key
from checkout.models import AttemptState, Order, PaymentAttempt
from checkout.order_writer import OrderDraft
from checkout.orders import LineSpec
from checkout.payments import PaymentRequest
from tests.checkout.conftest import Shop, wait_until

OK = "pm_card_ok"


async def _dead_attempt(
    shop: Shop, key: str, *, charge: str | None, owner: str = "dead-host:1:abc"
) -> tuple[Attempts, str]:
    """What a worker that died mid-buy leaves: a paying hold, a pending key, an attempt
    owned by a worker with no heartbeat, and (``charge``) the provider's payment."""
    v = shop.v("SNK-42")
    dead = Attempts(shop.sessions, owner)
    hold_id = f"b:u1:{key}"
    res = await shop.service.inventory.reserve(
        v, hold_id, buyer_id="u1", show_id=shop.show_id, quantity=2, ttl_ms=300_000,
        state=HoldState.PAYING, idempotency=(key, f"{shop.show_id}|{v}|2"),
    )  # fmt: skip
    assert isinstance(res, Reserved)
    held = [HeldLine(LineSpec(v, 2, 12900), hold_id, res.epoch, idem_key(v, "u1", key))]
    attempt_id = await dead.open(
        buyer_id="u1", key=key, show_id=shop.show_id, amount_minor=25800, currency="EUR",
        provider="test", held=held,
    )  # fmt: skip
    assert attempt_id is not None
    if charge is not None:

        async def record(ref: str) -> bool:
            return await dead.move(
                attempt_id, frozenset({AttemptState.OPEN}), AttemptState.CHARGING, provider_ref=ref
            )

        request = PaymentRequest(attempt_id, "u1", 25800, "EUR", charge, key)
        await shop.payments.charge(request, record)
    return dead, attempt_id


async def _attempt(shop: Shop, attempt_id: str) -> PaymentAttempt:
    async with shop.sessions() as session:
        row = await session.get(PaymentAttempt, attempt_id)
        assert row is not None
        return row


async def test_a_dead_workers_unpaid_key_is_failed_and_its_units_freed(shop: Shop) -> None:
    v = shop.v("SNK-42")
    _, attempt_id = await _dead_attempt(shop, "k1", charge=None)
    assert (await shop.counts(v))["held"] == 2
    await shop.service.settle_once()
    row = await _attempt(shop, attempt_id)
    assert (row.state, row.reason) == (AttemptState.FAILED, "payment_interrupted")
    assert await shop.counts(v) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}
    assert await shop.redis.hget(idem_key(v, "u1", "k1"), "state") == "failed"
    # the retry is answered at once, with the final failure, and charges nothing
    with pytest.raises(CheckoutError) as exc:
        await asyncio.wait_for(shop.service.buy_now(shop.show_id, "u1", v, 2, "k1", OK), 2)
    assert exc.value.code == "payment_interrupted" and exc.value.http_status == 402
    assert [p.state for p in await shop.payments.payments()] == ["cancelled"]
    assert await shop.order_count() == 0


async def test_a_dead_workers_charge_becomes_its_order(shop: Shop) -> None:
    v = shop.v("SNK-42")
    _, attempt_id = await _dead_attempt(shop, "k2", charge=OK)
    await shop.service.settle_once()
    await shop.service.settled()
    row = await _attempt(shop, attempt_id)
    assert row.state is AttemptState.ORDERED and row.order_id
    async with shop.sessions() as session:
        orders = (await session.scalars(select(Order))).all()
    [payment] = await shop.payments.payments()
    assert [(o.id, o.payment_ref) for o in orders] == [(row.order_id, payment.id)]
    assert payment.refunded_minor == 0
    assert await shop.counts(v) == {"avail": 3, "held": 0, "sold": 2, "listed": 5}
    again = await shop.service.buy_now(shop.show_id, "u1", v, 2, "k2", OK)
    assert again.order_id == row.order_id and again.replayed
    assert len(await shop.payments.payments()) == 1  # never a second charge
    await shop.assert_invariant(v)


async def test_an_order_written_before_the_worker_died_is_finished(shop: Shop) -> None:
    v = shop.v("SNK-42")
    _, attempt_id = await _dead_attempt(shop, "k3", charge=OK)
    [payment] = await shop.payments.payments()
    draft = OrderDraft(shop.show_id, "u1", "k3", "EUR", (LineSpec(v, 2, 12900),), payment.id)
    order = await shop.service.writer.write(draft)  # ... and then the worker died
    assert await shop.redis.hget(idem_key(v, "u1", "k3"), "state") == "pending"
    await shop.service.settle_once()
    assert (await _attempt(shop, attempt_id)).state is AttemptState.ORDERED
    assert await shop.redis.hget(idem_key(v, "u1", "k3"), "state") == "done"
    assert await shop.counts(v) == {"avail": 3, "held": 0, "sold": 2, "listed": 5}
    again = await shop.service.buy_now(shop.show_id, "u1", v, 2, "k3", OK)
    assert again.order_id == order.order_id
    assert len(await shop.payments.payments()) == 1
    await shop.assert_invariant(v)


async def test_a_live_workers_attempt_is_left_alone(shop: Shop) -> None:
    live = Attempts(shop.sessions, "live-host:2:def")
    await live.beat()
    _, attempt_id = await _dead_attempt(shop, "k4", charge=None, owner=live.owner)
    await shop.service.settle_once()
    assert (await _attempt(shop, attempt_id)).state is AttemptState.OPEN


async def test_redis_forgetting_a_key_never_charges_it_twice(shop: Shop) -> None:
    v = shop.v("SNK-43")
    first = await shop.service.buy_now(shop.show_id, "u1", v, 1, "k5", OK)
    await shop.service.settled()
    await shop.redis.flushdb()  # Redis lost everything (no rebuild ran yet)
    again = await shop.service.buy_now(shop.show_id, "u1", v, 1, "k5", OK)
    assert again.order_id == first.order_id and again.replayed
    assert len(await shop.payments.payments()) == 1


async def test_authentication_is_waited_for_then_ordered(shop: Shop) -> None:
    v = shop.v("SNK-42")
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k6", "pm_card_3ds")
    assert exc.value.code == "payment_requires_action" and exc.value.http_status == 402
    secret, ref = exc.value.extra["client_secret"], exc.value.extra["payment_ref"]
    assert isinstance(secret, str) and isinstance(ref, str)
    assert (await shop.counts(v))["held"] == 1  # the unit waits for the buyer
    with pytest.raises(CheckoutError) as still:
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k6", "pm_card_3ds")
    assert still.value.code == "payment_requires_action"
    await shop.payments.authenticate(ref)  # the buyer passed 3-D Secure on the page
    order = await shop.service.buy_now(shop.show_id, "u1", v, 1, "k6", "pm_card_3ds")
    assert order.total_minor == 12900
    assert await shop.counts(v) == {"avail": 4, "held": 0, "sold": 1, "listed": 5}
    await shop.assert_invariant(v)


async def test_authentication_never_done_expires(shop: Shop) -> None:
    v = shop.v("SNK-42")
    with pytest.raises(CheckoutError):
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k7", "pm_card_3ds")
    await asyncio.sleep(1.2)  # the test's payment hold is 3 s: expired 5 s early = at 1 s
    await shop.service.settle_once()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k7", "pm_card_3ds")
    assert exc.value.code == "payment_expired"
    assert (await shop.counts(v))["held"] == 0
    assert [p.state for p in await shop.payments.payments()] == ["cancelled"]


async def test_a_stale_redis_connection_is_retried_on_a_fresh_one(shop: Shop) -> None:
    v = shop.v("SNK-43")
    await shop.service.buy_now(shop.show_id, "u1", v, 1, "k8", OK)  # the pool is warm
    kwargs = shop.redis.connection_pool.connection_kwargs
    admin = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**kwargs))
    try:
        me = await admin.client_id()
        killed = 0
        for client in await admin.client_list():  # (this test session's database only)
            if int(client["db"]) == int(kwargs.get("db", 0)) and int(client["id"]) != me:
                killed += await admin.client_kill_filter(_id=client["id"])
    finally:
        await admin.aclose()
    assert killed >= 1
    batcher = shop.service.inventory.batcher
    before = batcher.reconnects
    order = await shop.service.buy_now(shop.show_id, "u2", v, 1, "k9", OK)
    assert order.order_id
    await wait_until(lambda: asyncio.sleep(0, batcher.reconnects), lambda n: n > before, 2)


async def test_a_hold_whose_worker_died_before_its_attempt_is_freed(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from checkout import settle

    monkeypatch.setattr(settle, "UNRECORDED_AFTER_S", 0.2)
    v = shop.v("SNK-42")
    res = await shop.service.inventory.reserve(
        v, "b:u1:k10", buyer_id="u1", show_id=shop.show_id, quantity=1, ttl_ms=3000,
        state=HoldState.PAYING, idempotency=("k10", f"{shop.show_id}|{v}|1"),
    )  # fmt: skip
    assert isinstance(res, Reserved)  # ... and the worker died before writing its attempt
    await shop.service.settle_once()  # too young: its owner may be about to write it
    assert (await shop.counts(v))["held"] == 1
    await asyncio.sleep(0.3)
    await shop.service.settle_once()
    assert (await shop.counts(v))["held"] == 0
    assert await shop.redis.hget(idem_key(v, "u1", "k10"), "state") == "failed"
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "u1", v, 1, "k10", OK)
    assert exc.value.code == "payment_interrupted"
    assert await shop.payments.payments() == []
