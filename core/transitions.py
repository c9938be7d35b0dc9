"""State machines in one shape: the allowed moves in a table, a coded error on any other.

Shows, questions, peer sessions, holds and a show's video state each declare a
``Transitions`` table beside their enum; nothing else decides whether a move is allowed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

from core.errors import CodedError

S = TypeVar("S", bound=enum.Enum)

ILLEGAL_TRANSITION = "illegal_transition"


class IllegalTransition(CodedError):
    """A move the table does not allow (HTTP 409)."""

    codes = {ILLEGAL_TRANSITION: 409}

    def __init__(self, what: str, current: enum.Enum, target: enum.Enum) -> None:
        message = f"a {what} that is {current.value} cannot become {target.value}"
        super().__init__(ILLEGAL_TRANSITION, message, fields={"status": message})
        self.current = current
        self.target = target


class Transitions(Generic[S]):
    """The allowed moves of one kind of thing (``what`` names it in errors)."""

    def __init__(self, what: str, moves: Mapping[S, frozenset[S]]) -> None:
        self.what = what
        self.moves: dict[S, frozenset[S]] = dict(moves)

    def allows(self, current: S, target: S) -> bool:
        return target in self.moves[current]

    def check(self, current: S, target: S) -> S:
        """``target`` if ``current`` may move to it, else raise IllegalTransition."""
        if target not in self.moves[current]:
            raise IllegalTransition(self.what, current, target)
        return target

    def __getitem__(self, current: S) -> frozenset[S]:
        return self.moves[current]
