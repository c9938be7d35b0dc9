"""A hold's life: held -> paying -> committed | released. The allowed moves live here only.

The moves themselves happen inside the Lua scripts (``checkout/scripts.py``);
``tests/checkout/test_hold_transitions.py`` drives every script path and checks each move
it makes against this table.
"""

from __future__ import annotations

import enum

from core.transitions import IllegalTransition, Transitions

__all__ = ["HOLD_TRANSITIONS", "LIVE_STATES", "HoldState", "IllegalTransition", "transition"]


class HoldState(enum.StrEnum):
    HELD = "held"
    PAYING = "paying"
    COMMITTED = "committed"
    RELEASED = "released"


HOLD_TRANSITIONS = Transitions(
    "hold",
    {
        HoldState.HELD: frozenset({HoldState.PAYING, HoldState.RELEASED}),
        HoldState.PAYING: frozenset({HoldState.HELD, HoldState.COMMITTED, HoldState.RELEASED}),
        HoldState.COMMITTED: frozenset(),
        HoldState.RELEASED: frozenset(),
    },
)


LIVE_STATES = frozenset({HoldState.HELD, HoldState.PAYING})
"""The states of a hold that still holds units (MOVE goes between these only)."""


def transition(current: HoldState, target: HoldState) -> HoldState:
    """Return ``target`` if a hold may move from ``current`` to it, else raise."""
    return HOLD_TRANSITIONS.check(current, target)
