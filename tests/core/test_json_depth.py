"""The nesting pre-scan: exact on valid JSON, blind to brackets inside strings."""

from __future__ import annotations

import json
import time

import pytest

from core.json_depth import MAX_DEPTH, too_deep


def _nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("depth", [0, 1, MAX_DEPTH - 1, MAX_DEPTH])
def test_up_to_the_limit_passes(depth: int) -> None:
    assert not too_deep(_nested(depth))
    assert not too_deep('{"a":' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3000, 100_000])
def test_past_the_limit_is_too_deep(depth: int) -> None:
    assert too_deep(_nested(depth))
    assert too_deep('{"a":' * depth + "1" + "}" * depth)


def test_brackets_in_strings_do_not_count() -> None:
    shallow = json.dumps({"text": "[" * 500 + '"[{' * 100, "list": [["x"] * 40]})
    assert not too_deep(shallow)
    closing = json.dumps(["]}" * 100])  # brackets in a string close nothing
    assert too_deep("[" * 40 + closing + "]" * 40)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 3000, True),  # never closed: the parser still recurses 3000 deep
        ("[" * 40 + "x" + "]" * 40, True),  # a valid prefix that deep, then garbage
        ("]" * 3000 + "[", False),  # fails at once
        ('"' + "[" * 100, False),  # an unterminated string
        ("[" * 33 + '"\\' * 30_000, True),
    ],
)
def test_text_that_is_not_json(text: str, deep: bool) -> None:
    assert too_deep(text) is deep


def test_the_scan_stays_linear() -> None:
    hostile = "[" * 33 + '"\\' * 30_000  # 60 KB of quotes a failing match would rescan
    started = time.perf_counter()
    too_deep(hostile)
    assert time.perf_counter() - started < 0.5


def test_many_shallow_brackets_are_not_deep() -> None:
    assert not too_deep(json.dumps([[n] for n in range(1000)]))
