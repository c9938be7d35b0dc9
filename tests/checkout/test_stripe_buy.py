"""The buy path against a real Stripe-compatible server (localstripe): one tap charges the
saved card once, a dead worker's charge becomes its order, 3-D Secure goes back to the
page and completes by retry or by webhook. localstripe does not replay idempotency keys:
liveshop's attempt rows are what keep a retry from charging twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.attempts import Attempts, HeldLine
from checkout.errors import CheckoutError
from checkout.holds import HoldState
from checkout.inventory import Reserved, idem_key
from checkout.models import AttemptState, Order, PaymentAttempt
from checkout.orders import LineSpec
from checkout.payments import PaymentRequest
from checkout.provider_events import PaymentEvent, PaymentEventKind
from checkout.service import CheckoutService
from checkout.stripe_payments import StripeConfig, StripePaymentProvider
from core.db import make_engine, make_sessionmaker
from tests.checkout.conftest import CART_HOLD_S, PAYMENT_HOLD_S, RecordingSink, seed
from tests.stripe_support import (
    NEEDS_3DS,
    OK_CARD,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    authenticate_as_page,
    confirm_setup_as_page,
    stripe_client,
)


@dataclass
class StripeShop:
    service: CheckoutService
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    provider: StripePaymentProvider
    show_id: str
    variants: dict[str, str]
    base: str

    async def save(self, buyer: str, number: str) -> None:
        setup = await self.provider.setup_card(buyer)
        resp = await confirm_setup_as_page(self.base, setup.client_secret, number)
        assert resp.status_code == 200, resp.text
        await self.provider.save_card(buyer, resp.json()["payment_method"])

    async def charged_intents(self) -> dict[str, int]:
        """attempt id -> succeeded PaymentIntents at the provider (a double charge: 2), for
        this test's attempts (localstripe serves the whole session)."""
        async with self.sessions() as session:
            mine = set((await session.scalars(select(PaymentAttempt.id))).all())
        out: dict[str, int] = {}
        async with stripe_client(self.base) as client:
            page = await client.v1.payment_intents.list_async({"limit": 100})
        for intent in page.data:
            if intent.status == "succeeded":
                attempt = intent.metadata.to_dict().get("attempt_id", "")
                if attempt not in mine:
                    continue
                out[attempt] = out.get(attempt, 0) + 1
        return out

    async def orders(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count(Order.id))) or 0)


@pytest.fixture
async def shop(
    db_url: str, redis_client: aioredis.Redis, localstripe_url: str
) -> AsyncIterator[StripeShop]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    show_id, _, variants = await seed(sessions)
    config = StripeConfig(
        secret_key=SECRET_KEY, publishable_key=PUBLISHABLE_KEY, webhook_secret=WEBHOOK_SECRET,
        api_base=localstripe_url, js_url=f"{localstripe_url}/js.stripe.com/v3/", timeout_s=2.5,
    )  # fmt: skip
    provider = StripePaymentProvider(config, sessions)
    service = CheckoutService(
        sessions, redis_client, RecordingSink(), provider,
        cart_hold_s=CART_HOLD_S, payment_hold_s=max(PAYMENT_HOLD_S, 10),
    )  # fmt: skip
    await service.start()
    try:
        yield StripeShop(
            service, sessions, redis_client, provider, show_id, variants, localstripe_url
        )
    finally:
        await service.close()
        await provider.aclose()
        await engine.dispose()


async def test_one_tap_charges_the_saved_card_once(shop: StripeShop) -> None:
    v = shop.variants["SNK-43"]
    await shop.save("usr_a", OK_CARD)
    order = await shop.service.buy_now(shop.show_id, "usr_a", v, 2, "t1", "saved")
    await shop.service.settled()
    again = await shop.service.buy_now(shop.show_id, "usr_a", v, 2, "t1", "saved")
    assert again.order_id == order.order_id and again.replayed
    await shop.redis.flushdb()  # Redis forgets the key: SQL still answers it, no new charge
    third = await shop.service.buy_now(shop.show_id, "usr_a", v, 2, "t1", "saved")
    assert third.order_id == order.order_id
    charged = await shop.charged_intents()
    assert list(charged.values()) == [1] and await shop.orders() == 1
    async with shop.sessions() as session:
        row = await session.scalar(select(Order))
        assert row is not None and row.payment_ref and row.payment_ref.startswith("pi_")


async def test_a_dead_workers_stripe_charge_becomes_its_order(shop: StripeShop) -> None:
    v = shop.variants["SNK-42"]
    await shop.save("usr_b", OK_CARD)
    dead = Attempts(shop.sessions, "dead-host:9:fff")
    hold_id = "b:usr_b:t2"
    res = await shop.service.inventory.reserve(
        v, hold_id, buyer_id="usr_b", show_id=shop.show_id, quantity=1, ttl_ms=60_000,
        state=HoldState.PAYING, idempotency=("t2", f"{shop.show_id}|{v}|1"),
    )  # fmt: skip
    assert isinstance(res, Reserved)
    held = [HeldLine(LineSpec(v, 1, 12900), hold_id, res.epoch, idem_key(v, "usr_b", "t2"))]
    attempt_id = await dead.open(
        buyer_id="usr_b", key="t2", show_id=shop.show_id, amount_minor=12900, currency="EUR",
        provider="stripe", held=held,
    )  # fmt: skip
    assert attempt_id is not None

    async def record(ref: str) -> bool:
        return await dead.move(
            attempt_id, frozenset({AttemptState.OPEN}), AttemptState.CHARGING, provider_ref=ref
        )

    charge = await shop.provider.charge(
        PaymentRequest(attempt_id, "usr_b", 12900, "EUR", "saved", "t2"), record
    )
    assert charge.ok  # ... and the worker died before writing the order
    await shop.service.settle_once()
    await shop.service.settled()
    retry = await shop.service.buy_now(shop.show_id, "usr_b", v, 1, "t2", "saved")
    assert retry.replayed and await shop.orders() == 1
    assert await shop.charged_intents() == {attempt_id: 1}
    counts = await shop.service.inventory.counts(v)
    assert (counts["held"], counts["sold"]) == (0, 1)


async def test_3d_secure_goes_back_to_the_page_then_the_retry_orders(shop: StripeShop) -> None:
    v = shop.variants["SNK-43"]
    await shop.save("usr_c", NEEDS_3DS)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "usr_c", v, 1, "t3", "saved")
    assert exc.value.code == "payment_requires_action"
    secret = exc.value.extra["client_secret"]
    assert isinstance(secret, str) and "_secret_" in secret
    await authenticate_as_page(shop.base, secret, success=True)
    order = await shop.service.buy_now(shop.show_id, "usr_c", v, 1, "t3", "saved")
    assert order.total_minor == 12900 and await shop.orders() == 1
    assert list((await shop.charged_intents()).values()) == [1]


async def test_3d_secure_completed_then_the_webhook_orders(shop: StripeShop) -> None:
    v = shop.variants["SNK-43"]
    await shop.save("usr_d", NEEDS_3DS)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "usr_d", v, 1, "t4", "saved")
    ref = exc.value.extra["payment_ref"]
    secret = exc.value.extra["client_secret"]
    assert isinstance(ref, str) and isinstance(secret, str)
    await authenticate_as_page(shop.base, secret, success=True)
    event = PaymentEvent("evt_t4", PaymentEventKind.SUCCEEDED, ref)
    assert await shop.service.payment_event(event)
    assert not await shop.service.payment_event(event)  # the same event: once
    await shop.service.settled()
    assert await shop.orders() == 1
    async with shop.sessions() as session:
        attempt = await session.scalar(select(PaymentAttempt))
        assert attempt is not None and attempt.state is AttemptState.ORDERED
    order = await shop.service.buy_now(shop.show_id, "usr_d", v, 1, "t4", "saved")
    assert order.order_id == attempt.order_id


async def test_3d_secure_failed_gives_the_unit_back(shop: StripeShop) -> None:
    v = shop.variants["SNK-42"]
    await shop.save("usr_e", NEEDS_3DS)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.buy_now(shop.show_id, "usr_e", v, 1, "t5", "saved")
    secret = exc.value.extra["client_secret"]
    assert isinstance(secret, str)
    await authenticate_as_page(shop.base, secret, success=False)
    with pytest.raises(CheckoutError) as failed:
        await shop.service.buy_now(shop.show_id, "usr_e", v, 1, "t5", "saved")
    assert failed.value.code.startswith("payment_") and failed.value.http_status == 402
    assert (await shop.service.inventory.counts(v))["held"] == 0
    assert await shop.orders() == 0
    assert await shop.charged_intents() == {}  # nothing charged, at the provider
