"""Delivery to a real receiver on 127.0.0.1 that fails, times out and answers: every
message arrives at least once, signed as Standard Webhooks sign, on the schedule, failed
after the maximum age, replayable, never sent twice at once by two workers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from core.db import utcnow
from tests.webhooks.conftest import Clock, add_endpoint, all_deliveries, deliverer
from tests.webhooks.receiver import HANG, Received, receiving, spec_verify
from webhooks import endpoints
from webhooks.delivery import STANDARD_SCHEDULE_S, Deliverer, DeliveryConfig
from webhooks.models import DeliveryState, WebhookDelivery, WebhookMessage
from webhooks.outbox import enqueue, enqueue_many


async def _enqueue(
    sessions: async_sessionmaker[AsyncSession], n: int, kind: str = "show.started"
) -> list[str]:
    async with sessions.begin() as session:
        return await enqueue_many(session, [(kind, {"n": i}) for i in range(n)])


async def _drain(
    d: Deliverer, sessions: async_sessionmaker[AsyncSession], timeout_s: float
) -> None:
    """Passes until nothing is pending (bounded)."""
    async with asyncio.timeout(timeout_s):
        while any(x.state is DeliveryState.PENDING for x in await all_deliveries(sessions)):
            await d.deliver_due()
            await asyncio.sleep(0.05)


async def test_every_message_arrives_at_least_once_and_verifies(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seen: Counter[str] = Counter()
    order: dict[str, int] = {}

    def answer(r: Received) -> int:
        # the first try of every third message fails (500), of the next one hangs past the
        # timeout; every other try is answered 200
        msg = r.headers["webhook-id"]
        seen[msg] += 1
        kind = order.setdefault(msg, len(order)) % 3
        if seen[msg] == 1 and kind == 0:
            return 500
        if seen[msg] == 1 and kind == 1:
            return HANG
        return 200

    async with receiving(answer) as receiver:
        endpoint = await add_endpoint(sessions, receiver.url)
        ids = await _enqueue(sessions, 12)
        d = deliverer(sessions)
        try:
            await _drain(d, sessions, timeout_s=20)
        finally:
            await d.close()
    assert sorted(set(receiver.ids(200))) == sorted(ids)  # every one, answered 200
    assert len(receiver.requests) == 12 + 8  # 4 failed and 4 timed out, once each
    rows = await all_deliveries(sessions)
    assert {r.state for r in rows} == {DeliveryState.DELIVERED}
    assert sorted(r.attempts for r in rows) == [1] * 4 + [2] * 8
    errors = {r.last_error for r in rows}
    assert errors == {None}
    hook = Webhook(endpoint.secret)
    for request in receiver.requests:
        assert spec_verify(endpoint.secret, request.headers, request.body)
        event = hook.verify(request.body, request.headers)  # the library's check
        assert event["type"] == "show.started" and set(event) == {"type", "timestamp", "data"}
        assert request.headers["content-type"] == "application/json"
        assert request.path == "/hooks"
    tampered = receiver.requests[0]
    assert not spec_verify(endpoint.secret, tampered.headers, tampered.body + b" ")


async def test_the_schedule_then_failed_after_the_maximum_age(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 500) as receiver:
        await add_endpoint(sessions, receiver.url)
        async with sessions.begin() as session:
            await enqueue(session, "order.paid", {"order_id": "ord_1"})
        start = utcnow()
        clock = Clock(start)
        config = DeliveryConfig(allow_private=True, timeout_s=1, jitter=0)  # the real schedule
        d = deliverer(sessions, config, clock)
        try:
            waits: list[float] = []
            for _ in range(40):  # bounded: 12 attempts in 3 days
                clock.now += timedelta(milliseconds=1)
                assert await d.deliver_due() == 1
                (row,) = await all_deliveries(sessions)
                assert row.last_status == 500 and row.last_error == "HTTP 500"
                if row.state is DeliveryState.FAILED:
                    break
                assert row.next_attempt_at is not None
                waits.append((row.next_attempt_at - clock.now).total_seconds())
                clock.now = row.next_attempt_at - timedelta(seconds=0.5)
                assert await d.deliver_due() == 0  # not due yet
                clock.now = row.next_attempt_at
        finally:
            await d.close()
    assert row.state is DeliveryState.FAILED and row.next_attempt_at is None
    assert waits[:6] == pytest.approx(list(STANDARD_SCHEDULE_S[1:]), abs=0.01)
    assert waits[6:] == pytest.approx([36000.0] * (len(waits) - 6), abs=0.01)
    assert row.attempts == len(receiver.requests) == 12  # the 13th would be past 3 days
    assert (clock.now - start).total_seconds() <= 3 * 24 * 3600


async def test_jitter_spreads_the_waits(sessions: async_sessionmaker[AsyncSession]) -> None:
    d = deliverer(sessions, DeliveryConfig(jitter=0.1))
    try:
        waits = [d.delay_s(2) for _ in range(200)]
    finally:
        await d.close()
    assert all(270 <= w <= 330 for w in waits) and len(set(waits)) > 100


async def test_a_timeout_is_an_error_recorded_and_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: HANG) as receiver:
        await add_endpoint(sessions, receiver.url)
        await _enqueue(sessions, 1)
        d = deliverer(sessions, timeout_s=0.3)
        try:
            assert await d.deliver_due() == 1
        finally:
            await d.close()
    (row,) = await all_deliveries(sessions)
    assert row.state is DeliveryState.PENDING and row.attempts == 1
    assert row.last_status is None and row.last_error == "timed out after 0.3 s"
    assert len(receiver.requests) == 1


async def test_replay_sends_again_whatever_the_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        await add_endpoint(sessions, receiver.url)
        (message_id,) = await _enqueue(sessions, 1)
        d = deliverer(sessions)
        try:
            await _drain(d, sessions, timeout_s=10)
            (row,) = await all_deliveries(sessions)
            assert row.state is DeliveryState.DELIVERED
            outcome = await d.replay(row.id)
        finally:
            await d.close()
    assert outcome.ok and outcome.status == 200
    assert receiver.ids() == [message_id, message_id]  # the same webhook-id: dedupe on it
    (row,) = await all_deliveries(sessions)
    assert row.state is DeliveryState.DELIVERED and row.attempts == 2


async def test_two_workers_never_send_one_delivery_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        await add_endpoint(sessions, receiver.url)
        ids = await _enqueue(sessions, 60)
        one, two = deliverer(sessions, batch=20), deliverer(sessions, batch=20)
        try:
            claimed = 0
            async with asyncio.timeout(20):
                while claimed < 60:
                    a, b = await asyncio.gather(one.deliver_due(), two.deliver_due())
                    claimed += a + b
        finally:
            await one.close()
            await two.close()
    assert claimed == 60
    assert sorted(receiver.ids()) == sorted(ids)  # each once: no delivery went twice
    assert one.attempts > 0 and two.attempts > 0
    rows = await all_deliveries(sessions)
    assert {r.state for r in rows} == {DeliveryState.DELIVERED}
    assert {r.attempts for r in rows} == {1}


async def test_a_dead_workers_claim_runs_out_and_the_delivery_goes_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        await add_endpoint(sessions, receiver.url)
        (message_id,) = await _enqueue(sessions, 1)
        clock = Clock(utcnow())
        dead, alive = deliverer(sessions, clock=clock), deliverer(sessions, clock=clock)
        try:
            (claim,) = await dead.claim_due()
            await dead.send(claim)  # sent, and the worker dies before recording it
            assert await alive.deliver_due() == 0  # claimed: nobody else sends it now
            clock.now += timedelta(seconds=dead.config.lease_s + 1)
            assert await alive.deliver_due() == 1  # the claim ran out: sent again
            await dead.attempt(claim)  # a late outcome of a lost claim changes nothing
        finally:
            await dead.close()
            await alive.close()
    assert receiver.ids() == [message_id] * 3
    (row,) = await all_deliveries(sessions)
    assert row.state is DeliveryState.DELIVERED and row.attempts == 2


async def test_enqueue_rolls_back_with_its_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        await add_endpoint(sessions, receiver.url)
        with pytest.raises(RuntimeError):
            async with sessions.begin() as session:
                await enqueue(session, "order.paid", {"order_id": "ord_x"})
                raise RuntimeError("the change failed")
        d = deliverer(sessions)
        try:
            assert await d.deliver_due() == 0
        finally:
            await d.close()
    async with sessions() as session:
        assert await session.scalar(select(func.count(WebhookMessage.id))) == 0
        assert await session.scalar(select(func.count(WebhookDelivery.id))) == 0
    assert receiver.requests == []


async def test_endpoints_get_only_what_they_subscribed_to(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        base = receiver.url
        paid = await add_endpoint(sessions, base + "/paid", ["order.paid"])
        shows = await add_endpoint(sessions, base + "/shows", ["show.started", "show.ended"])
        everything = await add_endpoint(sessions, base + "/all")
        await add_endpoint(sessions, base + "/off", enabled=False)
        async with sessions.begin() as session:
            started = await enqueue(session, "show.started", {"show_id": "shw_1"})
            sold = await enqueue(session, "product.sold_out", {"variant_id": "var_1"})
            unwanted = await enqueue_many(session, [("deal.ended", {})], None)
        d = deliverer(sessions)
        try:
            await _drain(d, sessions, timeout_s=10)
        finally:
            await d.close()
    got = sorted((r.path, r.headers["webhook-id"]) for r in receiver.requests)
    assert got == sorted(
        [
            ("/hooks/shows", started),
            ("/hooks/all", started),
            ("/hooks/all", sold),
            ("/hooks/all", unwanted[0]),
        ]
    )
    by_endpoint = Counter(r.endpoint_id for r in await all_deliveries(sessions))
    assert by_endpoint == {shows.id: 1, everything.id: 3}
    assert paid.id not in by_endpoint
    body = json.loads(receiver.requests[0].body)
    assert body["data"] in ({"show_id": "shw_1"}, {"variant_id": "var_1"}, {})


async def test_nothing_is_written_when_no_endpoint_wants_the_type(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_endpoint(sessions, "http://127.0.0.1:9/x", ["order.paid"])
    async with sessions.begin() as session:
        message_id = await enqueue(session, "show.ended", {"show_id": "shw_1"})
    assert message_id.startswith("msg_")
    async with sessions() as session:
        assert await session.scalar(select(func.count(WebhookMessage.id))) == 0


async def test_an_unknown_type_is_a_bug_of_the_caller(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        with pytest.raises(ValueError, match="unknown webhook event type"):
            await enqueue(session, "order.lost", {})


async def test_a_private_address_is_refused_at_each_attempt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        # registered while private addresses were allowed; the workers now refuse them
        await add_endpoint(sessions, f"http://localhost:{receiver.port}/hooks")
        await _enqueue(sessions, 1)
        d = deliverer(sessions, allow_private=False)
        try:
            assert await d.deliver_due() == 1
        finally:
            await d.close()
    assert receiver.requests == []
    (row,) = await all_deliveries(sessions)
    assert row.state is DeliveryState.PENDING and row.last_status is None
    assert row.last_error is not None and row.last_error.startswith("refused: not a public")


async def test_a_disabled_endpoints_pending_deliveries_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiving(lambda r: 200) as receiver:
        endpoint = await add_endpoint(sessions, receiver.url)
        await _enqueue(sessions, 2)
        async with sessions.begin() as session:
            await endpoints.update(session, endpoint.id, enabled=False)
        d = deliverer(sessions)
        try:
            assert await d.deliver_due() == 0
            async with sessions.begin() as session:
                await endpoints.update(session, endpoint.id, enabled=True)
            assert await d.deliver_due() == 2
        finally:
            await d.close()
    assert len(receiver.requests) == 2


async def test_410_gone_disables_the_endpoint(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with receiving(lambda r: 410) as receiver:
        endpoint = await add_endpoint(sessions, receiver.url)
        await _enqueue(sessions, 1)
        d = deliverer(sessions)
        try:
            assert await d.deliver_due() == 1
            async with sessions.begin() as session:
                await enqueue(session, "show.ended", {"show_id": "shw_1"})  # nobody wants it now
        finally:
            await d.close()
    async with sessions() as session:
        found = await endpoints.get(session, endpoint.id)
        assert found.enabled is False
    (row,) = await all_deliveries(sessions)
    assert row.state is DeliveryState.PENDING and row.last_status == 410
    assert len(receiver.requests) == 1
