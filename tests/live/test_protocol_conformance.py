"""Every request type of the protocol has a handler, every handler a request type, and each
handler takes exactly its type's fields: a required field as a parameter without default,
an optional one with a default, each annotated with the field's kind."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from live.handlers import HANDLERS, everyone, host, moderator, viewer
from live.protocol import ANY, ID, INT, REQUESTS, VIEWER, B, Request, S
from live.session import Context, Handler

KINDS: dict[str, Any] = {S: str, ID: str, INT: int, B: bool, "list": list[str]}
FIELD_PARAMETER = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def mismatches(requests: Mapping[str, Request], handlers: Mapping[str, Handler]) -> list[str]:
    """What differs between the request table and the handler table, one line each."""
    found = [f"{kind}: no handler" for kind in requests if kind not in handlers]
    found += [f"{kind}: no request type" for kind in handlers if kind not in requests]
    for kind in requests.keys() & handlers.keys():
        parameters = list(inspect.signature(handlers[kind], eval_str=True).parameters.values())
        if not parameters or parameters[0].annotation is not Context:
            found.append(f"{kind}: the first parameter is not the Context")
            continue
        fields = requests[kind].fields
        taken = {p.name: p for p in parameters[1:]}
        for name, parameter in taken.items():
            if parameter.kind not in FIELD_PARAMETER:
                found.append(f"{kind}: {name} is not a keyword parameter")
            elif name not in fields:
                found.append(f"{kind}: parameter {name} is no field")
        for name, (kind_name, required) in fields.items():
            param = taken.get(name)
            if param is None:
                found.append(f"{kind}: field {name} is no parameter")
                continue
            has_default = param.default is not inspect.Parameter.empty
            if required and has_default:
                found.append(f"{kind}: {name} is required but has a default")
            if not required and not has_default:
                found.append(f"{kind}: {name} is optional but has no default")
            if param.annotation != KINDS[kind_name]:
                found.append(f"{kind}: {name} is {kind_name}, annotated {param.annotation}")
    return sorted(found)


def test_every_request_has_its_handler_and_fields() -> None:
    assert mismatches(REQUESTS, HANDLERS) == []


def test_each_request_is_handled_in_one_module() -> None:
    tables = [everyone.HANDLERS, viewer.HANDLERS, host.HANDLERS, moderator.HANDLERS]
    assert sum(len(table) for table in tables) == len(HANDLERS)


async def _chat(ctx: Context, text: str = "") -> None:
    """Its required field has a default."""


async def _tap(ctx: Context, product_id: int, n: int, extra: str = "") -> None:
    """An int for a str, an optional field without default, a parameter with no field."""


async def _vote(ctx: Context, **fields: Any) -> None:
    """Takes anything: no field is a parameter."""


async def _stray(ctx: Context) -> None:
    """A handler with no request type."""


async def _no_context(text: str) -> None:
    """Its first parameter is a field."""


def test_the_check_sees_every_kind_of_mismatch() -> None:
    requests = {
        "ping": Request(ANY),
        "chat": Request(ANY, {"text": (S, True)}),
        "say": Request(ANY, {"text": (S, True)}),
        "tap": Request(VIEWER, {"product_id": (S, True), "n": (INT, False)}),
        "vote": Request(VIEWER, {"option": (INT, True)}),
    }
    handlers: dict[str, Handler] = {
        "chat": _chat,
        "say": _no_context,
        "tap": _tap,
        "vote": _vote,
        "stray": _stray,
    }
    assert mismatches(requests, handlers) == [
        "chat: text is required but has a default",
        "ping: no handler",
        "say: the first parameter is not the Context",
        "stray: no request type",
        "tap: n is optional but has no default",
        "tap: parameter extra is no field",
        "tap: product_id is str, annotated <class 'int'>",
        "vote: field option is no parameter",
        "vote: fields is not a keyword parameter",
    ]
