"""An order's life after the buy, and a refund's: the allowed moves live here only.

Orders: ``paid -> fulfilled | cancelled | refunded`` and ``fulfilled -> refunded``.

- ``paid``: the payment succeeded and the order stands in SQL (the buy's answer).
- ``fulfilled``: the seller shipped it. It can no longer be cancelled; it can still be
  refunded, wholly or in part (a returned parcel, a damaged item). The units of a
  fulfilled order do not go back on sale when it is refunded: they left the warehouse,
  and a returned unit is restocked by the seller (``PUT /api/variants/{id}/stock``) once
  it is back and sellable.
- ``cancelled``: the seller called a paid order off before shipping it: whatever was not
  refunded yet is refunded and every unit goes back on sale.
- ``refunded``: the whole amount went back to the buyer.

A partial refund is no move: the order stays ``paid`` or ``fulfilled`` with
``refunded_minor`` raised; the refund that reaches the total moves it to ``refunded``.
``cancelled`` and ``refunded`` are final.

Refunds: ``pending -> succeeded | failed``. A refund is written ``pending`` before the
provider is asked (``checkout/order_actions.py`` says why).
"""

from __future__ import annotations

from checkout.models import OrderStatus, RefundState
from core.transitions import IllegalTransition, Transitions

__all__ = [
    "ORDER_TRANSITIONS",
    "REFUNDABLE",
    "REFUND_TRANSITIONS",
    "IllegalTransition",
    "OrderStatus",
    "RefundState",
]


ORDER_TRANSITIONS = Transitions(
    "order",
    {
        OrderStatus.PAID: frozenset(
            {OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
        ),
        OrderStatus.FULFILLED: frozenset({OrderStatus.REFUNDED}),
        OrderStatus.CANCELLED: frozenset(),
        OrderStatus.REFUNDED: frozenset(),
    },
)

REFUNDABLE = frozenset(s for s in OrderStatus if ORDER_TRANSITIONS.allows(s, OrderStatus.REFUNDED))
"""The states in which money may still go back (a partial refund keeps the state)."""


REFUND_TRANSITIONS = Transitions(
    "refund",
    {
        RefundState.PENDING: frozenset({RefundState.SUCCEEDED, RefundState.FAILED}),
        RefundState.SUCCEEDED: frozenset(),
        RefundState.FAILED: frozenset(),
    },
)
