"""The payment port, and the built-in test provider.

A charge has two steps so that a crash is safe: the provider creates the payment without
taking money, the caller writes the provider's id to its SQL attempt row (``record_ref``),
and only then is the payment confirmed. A payment whose id is not in SQL was never
confirmed; one whose id is there can be asked about (``lookup``) or stopped (``cancel``) by
any process. The provider's own idempotency keys are never relied on (localstripe ignores
them): liveshop's attempt rows make every retry safe (``checkout/attempts.py``).

The test provider keeps its ledger in SQL tables of its own (``test_provider_payments``,
``test_provider_refunds``), as a real provider keeps its own books: every worker process
sees the same payments, and a benchmark reads what was charged from there. Test payment
methods (card numbers or tokens):

| method | outcome |
|---|---|
| ``pm_card_ok``, ``4242424242424242`` | succeeds |
| ``pm_card_declined``, ``4000000000000002`` | declined (``payment_declined``) |
| ``pm_card_timeout``, ``4000000000000119`` | no answer in time, cancelled (``payment_timeout``) |
| ``pm_card_3ds``, ``4000002500003155`` | needs authentication (``payment_requires_action``) |

Anything else is refused as ``payment_method_invalid``. A payment that needs
authentication is completed by ``TestPaymentProvider.authenticate`` (the test's stand-in for
the buyer passing 3-D Secure on the page), or failed by ``fail_authentication``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.errors import CheckoutError
from checkout.models import TestPayment, TestRefund
from core.db import insert_ignoring, new_id
from core.group_commit import GroupCommit, bulk_or_alone, run_or_alone

OK = frozenset({"pm_card_ok", "4242424242424242"})
DECLINED = frozenset({"pm_card_declined", "4000000000000002"})
TIMEOUT = frozenset({"pm_card_timeout", "4000000000000119"})
AUTHENTICATE = frozenset({"pm_card_3ds", "4000002500003155"})


class PaymentState(enum.StrEnum):
    SUCCEEDED = "succeeded"  # money taken
    FAILED = "failed"  # refused (``reason`` says why); nothing taken
    REQUIRES_ACTION = "requires_action"  # the buyer must authenticate on the page
    PENDING = "pending"  # the provider is still working on it
    NONE = "none"  # no charge for this attempt (never confirmed, or cancelled)


@dataclass(frozen=True)
class PaymentRequest:
    attempt_id: str  # liveshop's id of the attempt: the provider's metadata
    buyer_id: str
    amount_minor: int
    currency: str  # ISO 4217, upper case
    payment_method: str
    idempotency_key: str = ""  # the buyer's key (metadata: to find double charges)
    ref: str | None = None  # the id ``mint_ref`` gave, already in the attempt's row


@dataclass(frozen=True)
class Charge:
    """What the provider says of a payment."""

    state: PaymentState
    ref: str | None = None  # the provider's id (Stripe: the PaymentIntent's)
    reason: str | None = None  # FAILED: a coded reason (payment_declined, ...)
    client_secret: str | None = None  # REQUIRES_ACTION: the page completes it

    @property
    def ok(self) -> bool:
        return self.state is PaymentState.SUCCEEDED


RecordRef = Callable[[str], Awaitable[bool]]
"""Writes the provider's id to the attempt row; False: the attempt was taken over, stop."""


class PaymentError(CheckoutError):
    """The provider refused or could not be reached for a refund or a look-up."""

    default_status = 502


class PaymentProvider(Protocol):
    name: str
    """"test" or "stripe": stored on each attempt row."""
    timeout_s: float
    """How long ``charge`` may take: a provider that has no answer by then answers
    ``PENDING`` (its HTTP timeout), and the caller cancels it. The payment hold must
    outlast it."""

    def mint_ref(self) -> str | None:
        """The id the next payment will have, when the provider lets liveshop choose it
        (the test provider): it is then written with the attempt's row, one SQL write less
        before paying. None: the provider names its payments (Stripe)."""
        ...

    async def charge(self, request: PaymentRequest, record_ref: RecordRef) -> Charge:
        """Create the payment unconfirmed, ``record_ref`` its id, and only if that returns
        True confirm it; otherwise cancel what was created and answer ``NONE``. With a
        minted id (``request.ref``) the payment takes that id."""
        ...

    async def lookup(self, attempt_id: str, ref: str | None) -> Charge:
        """What the provider did with an attempt (perhaps a dead process's)."""
        ...

    async def cancel(self, attempt_id: str, ref: str | None) -> Charge:
        """Make sure the attempt never charges: ``NONE`` once cancelled, ``SUCCEEDED`` if it
        had already charged (then it stays charged)."""
        ...

    async def refund(self, ref: str, *, amount_minor: int, idempotency_key: str) -> None:
        """Give money back (whole or part); the same ``idempotency_key`` refunds once."""
        ...


@dataclass(frozen=True)
class _Entry:
    """A ledger row as ``_charge_of`` reads it."""

    id: str
    state: str
    reason: str | None


async def _ledger_many(session: AsyncSession, rows: list[dict[str, object]]) -> list[_Entry]:
    """One multi-row INSERT of new payments (an attempt's row cancelled first stays), then
    one read of what each attempt's row is."""
    await insert_ignoring(session, TestPayment, rows, ["attempt_id"])
    found = await session.execute(
        select(TestPayment.attempt_id, TestPayment.id, TestPayment.state, TestPayment.reason).where(
            TestPayment.attempt_id.in_([r["attempt_id"] for r in rows])
        )
    )
    by_attempt = {a: _Entry(i, s, r) for a, i, s, r in found.all()}
    return [by_attempt[str(r["attempt_id"])] for r in rows]


def _charge_of(row: TestPayment | _Entry | None, ref: str | None) -> Charge:
    if row is None:
        return Charge(PaymentState.PENDING if ref else PaymentState.NONE, ref)
    state = PaymentState(row.state) if row.state != "cancelled" else PaymentState.NONE
    secret = f"{row.id}_secret" if state is PaymentState.REQUIRES_ACTION else None
    return Charge(state, row.id, row.reason, secret)


class TestPaymentProvider:
    """Answers at once from the method, the timeout card after ``timeout_s``; the ledger
    is SQL, so any process can look a payment up."""

    __test__ = False  # not a pytest class
    name = "test"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        timeout_s: float = 10.0,
        group: GroupCommit | None = None,
    ) -> None:
        self.sessions = sessions
        self.timeout_s = timeout_s
        self.group = group  # (writes share transactions when given, as the attempts do)

    def mint_ref(self) -> str:
        return new_id("tpi")

    async def charge(self, request: PaymentRequest, record_ref: RecordRef) -> Charge:
        ref = request.ref or new_id("tpi")
        if not await record_ref(ref):
            return Charge(PaymentState.NONE)  # nothing was created
        method = request.payment_method
        state: str = "failed"
        reason: str | None = "payment_method_invalid"
        if method in OK:
            state, reason = "succeeded", None
        elif method in DECLINED:
            reason = "payment_declined"
        elif method in TIMEOUT:
            state, reason = "pending", None
        elif method in AUTHENTICATE:
            state, reason = "requires_action", None
        row = {
            "id": ref,
            "attempt_id": request.attempt_id,
            "buyer_id": request.buyer_id,
            "idempotency_key": request.idempotency_key,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "state": state,
            "reason": reason,
        }
        saved = await bulk_or_alone(self.group, self.sessions, _ledger_many, row)
        if saved is not None and saved.state == "pending":
            # The timeout card: no answer within the timeout (a real provider's HTTP
            # timeout); the caller then cancels it and learns what became of it.
            await asyncio.sleep(self.timeout_s)
        return _charge_of(saved, ref)

    async def _row(self, session: AsyncSession, attempt_id: str) -> TestPayment | None:
        return await session.scalar(select(TestPayment).where(TestPayment.attempt_id == attempt_id))

    async def lookup(self, attempt_id: str, ref: str | None) -> Charge:
        async with self.sessions() as session:
            return _charge_of(await self._row(session, attempt_id), ref)

    async def cancel(self, attempt_id: str, ref: str | None) -> Charge:

        async def job(session: AsyncSession) -> Charge:
            # A payment not made yet can never be made now (the charge's insert loses).
            blank = {"id": ref or new_id("tpi"), "attempt_id": attempt_id, "buyer_id": "",
                     "idempotency_key": "", "amount_minor": 0, "currency": "",
                     "state": "cancelled", "reason": None}  # fmt: skip
            await insert_ignoring(session, TestPayment, [blank], ["attempt_id"])
            await session.execute(
                update(TestPayment)
                .where(
                    TestPayment.attempt_id == attempt_id,
                    TestPayment.state.in_(("pending", "requires_action")),
                )
                .values(state="cancelled")
            )
            return _charge_of(await self._row(session, attempt_id), ref)

        return await run_or_alone(self.group, self.sessions, job)

    async def refund(self, ref: str, *, amount_minor: int, idempotency_key: str) -> None:
        async with self.sessions.begin() as session:
            payment = await session.get(TestPayment, ref, with_for_update=True)
            if payment is None or payment.state != "succeeded":
                raise PaymentError("payment_not_refundable", f"no charge {ref} to refund")
            row = {
                "idempotency_key": idempotency_key,
                "payment_id": ref,
                "amount_minor": amount_minor,
            }
            if not await insert_ignoring(session, TestRefund, [row], ["idempotency_key"]):
                return  # this refund was made before
            if payment.refunded_minor + amount_minor > payment.amount_minor:
                raise PaymentError("refund_exceeds_payment", "the refund is more than was charged")
            payment.refunded_minor += amount_minor

    # -- the buyer's side of authentication, for tests and the demo ----------------------

    async def authenticate(self, ref: str, *, passed: bool = True) -> None:
        """The buyer completed (or failed) 3-D Secure on the page."""
        values = (
            {"state": "succeeded"} if passed else {"state": "failed", "reason": "payment_declined"}
        )
        async with self.sessions.begin() as session:
            await session.execute(
                update(TestPayment)
                .where(TestPayment.id == ref, TestPayment.state == "requires_action")
                .values(**values)
            )

    async def refunds(self) -> list[TestRefund]:
        """Every refund made, oldest first."""
        async with self.sessions() as session:
            query = select(TestRefund).order_by(TestRefund.created_at)
            return list((await session.scalars(query)).all())

    async def payments(self) -> list[TestPayment]:
        """The whole ledger (benchmarks and tests read what was charged here)."""
        async with self.sessions() as session:
            return list((await session.scalars(select(TestPayment))).all())
