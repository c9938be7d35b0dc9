"""The Stripe provider against a real localstripe server, on both databases: card on file,
charges of every outcome, the two-step shape, lookup, cancel and refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benches.processes import free_port
from checkout.payments import Charge, PaymentError, PaymentRequest, PaymentState
from checkout.stripe_payments import SAVED, StripeConfig, StripePaymentProvider
from core.db import make_engine, make_sessionmaker
from tests.stripe_support import (
    DECLINED_ON_CHARGE,
    DECLINED_ON_SAVE,
    NEEDS_3DS,
    OK_CARD,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    authenticate_as_page,
    card,
    confirm_setup_as_page,
    stripe_client,
)


def _config(base: str) -> StripeConfig:
    return StripeConfig(
        secret_key=SECRET_KEY,
        publishable_key=PUBLISHABLE_KEY,
        webhook_secret=WEBHOOK_SECRET,
        api_base=base,
        js_url=f"{base}/js.stripe.com/v3/",
        timeout_s=5.0,
    )


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def provider(
    localstripe_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[StripePaymentProvider]:
    made = StripePaymentProvider(_config(localstripe_url), sessions)
    try:
        yield made
    finally:
        await made.aclose()


class Recorder:
    """The caller's ``record_ref``: keeps what it was given, answers ``answer``."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.refs: list[str] = []

    async def __call__(self, ref: str) -> bool:
        self.refs.append(ref)
        return self.answer


def _request(
    buyer: str, method: str = SAVED, amount: int = 1290, attempt: str = ""
) -> PaymentRequest:
    return PaymentRequest(
        attempt_id=attempt or f"pay_{buyer}", buyer_id=buyer, amount_minor=amount,
        currency="EUR", payment_method=method,
    )  # fmt: skip


async def _save(provider: StripePaymentProvider, base: str, buyer: str, number: str) -> str:
    setup = await provider.setup_card(buyer)
    resp = await confirm_setup_as_page(base, setup.client_secret, number)
    assert resp.status_code == 200, resp.text
    method: str = resp.json()["payment_method"]
    saved = await provider.save_card(buyer, method)
    assert saved.id == method
    return method


async def test_save_a_card_then_a_buy_charges_it(
    provider: StripePaymentProvider, localstripe_url: str
) -> None:
    setup = await provider.setup_card("usr_ann")
    assert setup.to_json() == {
        "provider": "stripe",
        "client_secret": setup.client_secret,
        "publishable_key": PUBLISHABLE_KEY,
        "js_url": f"{localstripe_url}/js.stripe.com/v3/",
    }
    assert setup.client_secret.startswith("seti_")
    method = await _save(provider, localstripe_url, "usr_ann", OK_CARD)
    cards = [c.to_json() for c in await provider.cards("usr_ann")]
    assert cards == [
        {"id": method, "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
         "default": True},
    ]  # fmt: skip
    row = await provider.customer_of("usr_ann")
    assert row is not None and row.default_payment_method == method
    again = await provider.setup_card("usr_ann")  # the same Customer, a new SetupIntent
    assert again.client_secret != setup.client_secret
    assert (await provider.customer_of("usr_ann")) is not None

    recorder = Recorder()
    charged = await provider.charge(_request("usr_ann", attempt="pay_ann1"), recorder)
    assert charged.state is PaymentState.SUCCEEDED and charged.ok
    assert charged.ref is not None and recorder.refs == [charged.ref]
    assert await provider.lookup("pay_ann1", charged.ref) == charged
    async with stripe_client(localstripe_url) as stripe:
        intent = await stripe.v1.payment_intents.retrieve_async(charged.ref)
    assert (intent.amount, intent.currency, intent.customer) == (1290, "eur", row.customer_id)
    assert intent.payment_method == method
    assert intent.metadata.to_dict() == {"attempt_id": "pay_ann1", "buyer_id": "usr_ann"}
    # an intent that charged cannot be cancelled: cancel says what it is
    assert await provider.cancel("pay_ann1", charged.ref) == charged
    # the saved card's id works as the payment method too
    by_id = await provider.charge(_request("usr_ann", method, attempt="pay_ann2"), Recorder())
    assert by_id.state is PaymentState.SUCCEEDED


async def test_declines(provider: StripePaymentProvider, localstripe_url: str) -> None:
    # 4000000000000002 is declined where Stripe declines it: when it is attached
    setup = await provider.setup_card("usr_bob")
    refused = await confirm_setup_as_page(localstripe_url, setup.client_secret, DECLINED_ON_SAVE)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "card_declined"
    async with stripe_client(localstripe_url) as stripe:
        pm = await stripe.v1.payment_methods.create_async(
            {"type": "card", "card": card(DECLINED_ON_SAVE)}  # type: ignore[arg-type]
        )
    recorder = Recorder()
    declined = await provider.charge(_request("usr_bob", pm.id), recorder)
    assert declined == Charge(PaymentState.FAILED, reason="payment_declined")
    assert recorder.refs == []  # no PaymentIntent was made
    with pytest.raises(PaymentError) as info:
        await provider.save_card("usr_bob", pm.id)
    assert info.value.code == "payment_declined"
    assert await provider.cards("usr_bob") == []

    # 4000000000000341 saves, and then its charge is declined
    await _save(provider, localstripe_url, "usr_bob", DECLINED_ON_CHARGE)
    recorder = Recorder()
    failed = await provider.charge(_request("usr_bob", attempt="pay_bob1"), recorder)
    assert failed.state is PaymentState.FAILED and failed.reason == "payment_declined"
    assert failed.ref is not None and recorder.refs == [failed.ref]
    assert await provider.lookup("pay_bob1", failed.ref) == failed
    assert await provider.cancel("pay_bob1", failed.ref) == Charge(
        PaymentState.NONE, ref=failed.ref
    )
    assert await provider.lookup("pay_bob1", failed.ref) == Charge(
        PaymentState.NONE, ref=failed.ref
    )


async def test_a_card_that_needs_3d_secure_goes_back_to_the_page(
    provider: StripePaymentProvider, localstripe_url: str
) -> None:
    await _save(provider, localstripe_url, "usr_cy", NEEDS_3DS)
    action = await provider.charge(_request("usr_cy", attempt="pay_cy1"), Recorder())
    assert action.state is PaymentState.REQUIRES_ACTION and action.ref is not None
    assert action.client_secret is not None and action.client_secret.startswith(action.ref)
    assert await provider.lookup("pay_cy1", action.ref) == action
    await authenticate_as_page(localstripe_url, action.client_secret, success=True)
    assert await provider.lookup("pay_cy1", action.ref) == Charge(
        PaymentState.SUCCEEDED, ref=action.ref
    )

    # the buyer walks away: cancel makes sure it never charges
    other = await provider.charge(_request("usr_cy", attempt="pay_cy2"), Recorder())
    assert other.state is PaymentState.REQUIRES_ACTION and other.ref is not None
    assert await provider.cancel("pay_cy2", other.ref) == Charge(PaymentState.NONE, ref=other.ref)
    assert await provider.lookup("pay_cy2", other.ref) == Charge(PaymentState.NONE, ref=other.ref)


async def test_when_the_ref_is_not_recorded_nothing_is_charged(
    provider: StripePaymentProvider, localstripe_url: str
) -> None:
    await _save(provider, localstripe_url, "usr_dee", OK_CARD)
    recorder = Recorder(answer=False)
    none = await provider.charge(_request("usr_dee", attempt="pay_dee"), recorder)
    assert none.state is PaymentState.NONE and none.ref == recorder.refs[0]
    assert await provider.lookup("pay_dee", none.ref) == none
    async with stripe_client(localstripe_url) as stripe:
        intent = await stripe.v1.payment_intents.retrieve_async(recorder.refs[0])
    assert intent.status == "canceled" and intent.latest_charge is None
    # an attempt whose id never reached SQL was never confirmed
    assert await provider.lookup("pay_dee", None) == Charge(PaymentState.NONE)
    assert await provider.cancel("pay_dee", None) == Charge(PaymentState.NONE)
    assert await provider.lookup("pay_x", "pi_unknown") == Charge(
        PaymentState.NONE, ref="pi_unknown"
    )


async def test_payment_methods_that_cannot_pay(
    provider: StripePaymentProvider, localstripe_url: str
) -> None:
    missing = await provider.charge(_request("usr_eve"), Recorder())
    assert missing == Charge(PaymentState.FAILED, reason="payment_method_missing")
    for method in ("pm_card_ok", "4242424242424242", "pm_nothing_like_it"):
        refused = await provider.charge(_request("usr_eve", method), Recorder())
        assert refused == Charge(PaymentState.FAILED, reason="payment_method_invalid")
    others = await _save(provider, localstripe_url, "usr_fay", OK_CARD)
    stolen = await provider.charge(_request("usr_eve", others), Recorder())
    assert stolen == Charge(PaymentState.FAILED, reason="payment_method_invalid")
    with pytest.raises(PaymentError) as info:
        await provider.save_card("usr_eve", others)
    assert info.value.code == "payment_method_invalid"


async def test_refunds_whole_partial_and_again(
    provider: StripePaymentProvider, localstripe_url: str
) -> None:
    await _save(provider, localstripe_url, "usr_gus", OK_CARD)
    paid = await provider.charge(_request("usr_gus", amount=1000, attempt="pay_g1"), Recorder())
    assert paid.ok and paid.ref is not None

    async def refunded() -> int:
        assert paid.ref is not None
        async with stripe_client(localstripe_url) as stripe:
            intent = await stripe.v1.payment_intents.retrieve_async(
                paid.ref, {"expand": ["latest_charge"]}
            )
        charge = intent.latest_charge
        assert charge is not None and not isinstance(charge, str)
        return charge.amount_refunded

    await provider.refund(paid.ref, amount_minor=300, idempotency_key="rf-1")
    assert await refunded() == 300
    await provider.refund(paid.ref, amount_minor=300, idempotency_key="rf-1")  # a retry
    assert await refunded() == 300
    with pytest.raises(PaymentError) as info:
        await provider.refund(paid.ref, amount_minor=701, idempotency_key="rf-2")
    assert info.value.code == "refund_exceeds_payment"
    await provider.refund(paid.ref, amount_minor=700, idempotency_key="rf-2")
    assert await refunded() == 1000
    await provider.refund(paid.ref, amount_minor=1000, idempotency_key="rf-3")  # whole already
    assert await refunded() == 1000

    whole = await provider.charge(_request("usr_gus", amount=500, attempt="pay_g2"), Recorder())
    assert whole.ref is not None
    await provider.refund(whole.ref, amount_minor=500, idempotency_key="rf-4")
    await provider.refund(whole.ref, amount_minor=500, idempotency_key="rf-5")
    none = await provider.charge(_request("usr_gus", attempt="pay_g3"), Recorder(answer=False))
    assert none.ref is not None
    with pytest.raises(PaymentError) as info:
        await provider.refund(none.ref, amount_minor=100, idempotency_key="rf-6")
    assert info.value.code == "payment_not_refundable"


async def test_stripe_unreachable(sessions: async_sessionmaker[AsyncSession]) -> None:
    down = StripePaymentProvider(_config(f"http://127.0.0.1:{free_port()}"), sessions)
    try:
        recorder = Recorder()
        failed = await down.charge(_request("usr_hal", "pm_abc"), recorder)
        assert failed == Charge(PaymentState.FAILED, reason="payment_provider_unavailable")
        assert recorder.refs == []
        assert await down.lookup("pay_hal", "pi_abc") == Charge(PaymentState.PENDING, ref="pi_abc")
        assert await down.cancel("pay_hal", "pi_abc") == Charge(PaymentState.PENDING, ref="pi_abc")
        with pytest.raises(PaymentError) as info:
            await down.refund("pi_abc", amount_minor=100, idempotency_key="rf")
        assert info.value.code == "payment_provider_unavailable"
        with pytest.raises(PaymentError) as info:
            await down.setup_card("usr_hal")
        assert info.value.code == "payment_provider_unavailable"
    finally:
        await down.aclose()
