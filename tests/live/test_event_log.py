"""Stream ids a client sends: parsed strictly, so an id the parser accepts is one Redis
accepts too (checked against the real server), and everything else is refused."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from live.event_log import MAX_ID_PART, parse_id, valid_id

HOSTILE = [
    "",
    " ",
    "\uff11\uff17\uff16\uff14-0",  # full-width digits: int() takes them, Redis does not
    "1_764_000_000_000-0",  # int() takes underscores
    "1764000000000-0 ",  # a trailing space
    " 1764000000000-0",
    "1764000000000-0\n",  # (a regex's $ would let a trailing newline through)
    "1764000000000-",
    "-1764000000000",
    "-1",
    "+5",
    "1-2-3",
    "1--2",
    "0x10-0",
    "1e3-0",
    "abc",
    "$",
    "+",
    "-",
    "*",
    "1764000000000-0\x00",
    "\u0663-0",  # an Arabic-Indic digit three
    "123456789012345678901-0",  # 21 digits
    f"{MAX_ID_PART + 1}-0",
    f"0-{MAX_ID_PART + 1}",
    "9" * 20,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_ids_are_refused(text: str) -> None:
    assert parse_id(text) is None
    assert not valid_id(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0", "0-0"),
        ("0-0", "0-0"),
        ("1764000000000-3", "1764000000000-3"),
        ("1764000000000", "1764000000000-0"),
        ("0001-02", "1-2"),
        (f"{MAX_ID_PART}-{MAX_ID_PART}", f"{MAX_ID_PART}-{MAX_ID_PART}"),
    ],
)
def test_ids_are_canonical(text: str, canonical: str) -> None:
    assert parse_id(text) == canonical
    assert valid_id(text)


async def test_every_id_the_parser_takes_redis_takes(redis_client: aioredis.Redis) -> None:
    taken = [
        "0",
        "0-0",
        "1764000000000-3",
        "0001-02",
        f"{MAX_ID_PART}-{MAX_ID_PART - 1}",
        f"{MAX_ID_PART - 1}-{MAX_ID_PART}",
    ]
    await redis_client.xadd("ids", {"e": "{}"}, id="5-0")
    for text in [*taken, *HOSTILE]:
        stream_id = parse_id(text)
        if stream_id is None:
            continue
        await redis_client.xrange("ids", stream_id, stream_id, count=1)
        await redis_client.xrange("ids", f"({stream_id}", "+", count=1)
    assert MAX_ID_PART == 2**64 - 1  # Redis's ids are two unsigned 64-bit numbers
