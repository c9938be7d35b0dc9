"""Hypothesis strategies for hostile JSON: wrong types, huge and boundary numbers, odd
unicode, very long strings, deep nesting, missing and unknown fields, and text that is not
JSON at all. Shared by the HTTP and websocket fuzz tests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from checkout.validation import MAX_PRICE_MINOR, MAX_UNITS

BOUNDARY_INTS = [0, -1, 1, 10, 11, 59, 60, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1]
BOUNDARY_INTS += [MAX_UNITS, MAX_UNITS + 1, MAX_PRICE_MINOR, MAX_PRICE_MINOR + 1, 10**40]
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "\u202e",
    "\ud7ff\ue000\U0010ffff",
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    "NaN",
    "Infinity",
    "1e309",
    "EUR",
    "pm_card_ok",
    "2030-01-01T00:00:00Z",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00",
    "x" * 65,
    "x" * 201,
    "é" * 1000,
    "x" * 5000,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BOUNDARY_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(ODD_STRINGS),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


NOT_JSON = [
    b"",
    b"{",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b"\xff\xfe\x00",
    b'{"a": "\xc3\x28"}',
    b"[" * 3000 + b"]" * 3000,
    b'{"a":' + b"[" * 1500 + b"]" * 1500 + b"}",
    b"{" * 40,
    b'{"a": 1}{"b": 2}',
    b'{"a": 1' + b"0" * 5000 + b"}",  # more digits than int() takes (4300)
    b"null",
    b"[]",
    b'"text"',
    b"1e999999",
]


def same_kind(value: Any) -> st.SearchStrategy[Any]:
    """Values of the JSON type of ``value`` (what gets past a type check): boundary and
    huge numbers, odd and long strings, or ``value`` itself."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.just(value), st.sampled_from(BOUNDARY_INTS), st.integers())
    if isinstance(value, str):
        return st.one_of(st.just(value), st.sampled_from(ODD_STRINGS), st.text(max_size=40))
    if isinstance(value, dict):
        return mutated(value)
    if isinstance(value, list) and value:
        return st.lists(same_kind(value[0]), max_size=3)
    return values


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A valid body with up to three fields changed: mostly to a value of the same type,
    else to any value, dropped, or an unknown field added."""
    body = dict(valid)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["same", "same", "same", "retype", "drop", "add"]))
        names = sorted(body)
        if action in ("same", "retype") and names:
            name = draw(st.sampled_from(names))
            body[name] = draw(same_kind(body[name]) if action == "same" else values)
        elif action == "drop" and names:
            body.pop(draw(st.sampled_from(names)))
        else:
            body[draw(st.sampled_from(["extra", "type", "__proto__", "id"]))] = draw(values)
    return body


def json_bodies(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bodies for a route whose valid body is ``valid``: mostly near-valid ones."""
    return st.one_of(
        mutated(valid).map(lambda body: json.dumps(body).encode()),
        mutated(valid).map(lambda body: json.dumps(body).encode()),
        values.map(lambda value: json.dumps(value).encode()),
        st.sampled_from(NOT_JSON),
    )
