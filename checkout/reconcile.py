"""Applies a payment provider's events to orders, each event once.

The event's id goes into ``provider_events`` in the same transaction as what it changes
(insert-or-ignore on the primary key), so a redelivered event, or two deliveries racing
in two processes, change nothing the second time.

- ``charge.refunded``, refunded whole: the order whose ``payment_ref`` is the payment
  becomes ``refunded`` (unless it is already).
- ``charge.refunded``, in part: nothing but the record (logged).
- ``payment_intent.succeeded``, ``payment_intent.payment_failed``: the record and a log
  line (the payment attempts act on them).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.models import Order, OrderStatus
from checkout.payment_models import ProviderEvent
from checkout.provider_events import PaymentEvent, PaymentEventKind

log = logging.getLogger("liveshop.checkout.reconcile")


class Reconciler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def payment_event(self, event: PaymentEvent) -> bool:
        """Apply ``event``: True when it was new, False for a duplicate (nothing changed)."""
        async with self.sessions.begin() as session:
            if not await _record(session, event):
                log.info("duplicate payment event", extra=_fields(event))
                return False
            if event.kind is PaymentEventKind.REFUNDED and event.refunded:
                result = await session.execute(
                    update(Order)
                    .where(Order.payment_ref == event.ref, Order.status != OrderStatus.REFUNDED)
                    .values(status=OrderStatus.REFUNDED)
                )
                changed = int(result.rowcount)  # type: ignore[attr-defined]
                log.info("payment refunded", extra={**_fields(event), "orders_changed": changed})
            else:
                log.info("payment event", extra=_fields(event))
        return True


async def _record(session: AsyncSession, event: PaymentEvent) -> bool:
    """Insert the event's id unless it is there: True when this transaction inserted it."""
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(ProviderEvent)
        .values(id=event.event_id, type=event.kind.value, ref=event.ref)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ProviderEvent.id)
    )
    return (await session.scalar(stmt)) is not None


def _fields(event: PaymentEvent) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "event_type": event.kind.value,
        "payment_ref": event.ref,
        "attempt_id": event.attempt_id,
        "reason": event.reason,
    }
