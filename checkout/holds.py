"""A hold's life: held -> paying -> committed | released. The allowed moves live here only."""

from __future__ import annotations

import enum


class HoldState(enum.StrEnum):
    HELD = "held"
    PAYING = "paying"
    COMMITTED = "committed"
    RELEASED = "released"


TRANSITIONS: dict[HoldState, frozenset[HoldState]] = {
    HoldState.HELD: frozenset({HoldState.PAYING, HoldState.RELEASED}),
    HoldState.PAYING: frozenset({HoldState.HELD, HoldState.COMMITTED, HoldState.RELEASED}),
    HoldState.COMMITTED: frozenset(),
    HoldState.RELEASED: frozenset(),
}


class IllegalHoldTransition(Exception):
    def __init__(self, current: HoldState, target: HoldState) -> None:
        super().__init__(f"a hold that is {current} cannot become {target}")


def transition(current: HoldState, target: HoldState) -> HoldState:
    """Return ``target`` if a hold may move from ``current`` to it, else raise."""
    if target not in TRANSITIONS[current]:
        raise IllegalHoldTransition(current, target)
    return target
