"""A show's life: scheduled -> live -> ended. The allowed transitions live here only."""

from __future__ import annotations

import enum

from core.transitions import IllegalTransition, Transitions

__all__ = ["SHOW_TRANSITIONS", "IllegalTransition", "ShowStatus", "transition"]


class ShowStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


SHOW_TRANSITIONS = Transitions(
    "show",
    {
        ShowStatus.SCHEDULED: frozenset({ShowStatus.LIVE, ShowStatus.ENDED}),
        ShowStatus.LIVE: frozenset({ShowStatus.ENDED}),
        ShowStatus.ENDED: frozenset(),
    },
)


def transition(current: ShowStatus, target: ShowStatus) -> ShowStatus:
    """Return ``target`` if ``current`` may move to it, else raise IllegalTransition."""
    return SHOW_TRANSITIONS.check(current, target)
