"""A show's life: scheduled -> live -> ended. The allowed transitions live here only."""

from __future__ import annotations

import enum


class ShowStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


TRANSITIONS: dict[ShowStatus, frozenset[ShowStatus]] = {
    ShowStatus.SCHEDULED: frozenset({ShowStatus.LIVE, ShowStatus.ENDED}),
    ShowStatus.LIVE: frozenset({ShowStatus.ENDED}),
    ShowStatus.ENDED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, current: ShowStatus, target: ShowStatus) -> None:
        super().__init__(f"a show that is {current} cannot become {target}")
        self.current = current
        self.target = target


def transition(current: ShowStatus, target: ShowStatus) -> ShowStatus:
    """Return ``target`` if ``current`` may move to it, else raise IllegalTransition."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target
