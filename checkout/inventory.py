"""The Redis gate: available units and holds per variant, each change one Lua script.

SQL is the truth; this module only keeps Redis in line with it. A variant's keys are
loaded lazily from SQL stock (``load``) when a script finds them missing, so a Redis that
lost its data is rebuilt on the next tap. ``inv:epoch`` names the current copy: when it
vanishes, Redis lost its data and every hold in it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from checkout import scripts
from checkout.batching import ScriptBatcher
from checkout.errors import CheckoutError, Conflict, IdempotencyError, OutOfStock, Unavailable
from checkout.holds import HOLD_TRANSITIONS, LIVE_STATES, HoldState
from core.aio import SingleFlight

EPOCH_KEY = "inv:epoch"
INDEX_KEY = "inv:index"
IDEM_TTL_MS = 24 * 3600 * 1000
SWEEP_BATCH = 500

StockReader = Callable[[str], Awaitable[int]]
SweptListener = Callable[["Swept"], Awaitable[None]]


def prefix(variant_id: str) -> str:
    return f"inv:{{{variant_id}}}:"


def stock_key(variant_id: str) -> str:
    return prefix(variant_id) + "stock"


def hold_key(variant_id: str, hold_id: str) -> str:
    return prefix(variant_id) + "h:" + hold_id


def idem_key(variant_id: str, buyer_id: str, key: str) -> str:
    return prefix(variant_id) + f"idem:{buyer_id}:{key}"


@dataclass(frozen=True)
class Released:
    """A hold the sweep (or a lazy release inside a reserve) gave back."""

    variant_id: str
    hold_id: str
    buyer_id: str
    show_id: str


@dataclass(frozen=True)
class Reserved:
    variant_id: str
    available: int
    quantity: int
    deal_units: int
    deal_price_minor: int | None
    expires_ms: int
    epoch: str
    back_in_stock: bool
    deal_units_gone: bool
    released: list[Released] = field(default_factory=list)


@dataclass(frozen=True)
class Replay:
    """The idempotency key was seen: its state and, when done, the order."""

    state: str  # pending | done | failed
    order_id: str
    reason: str


@dataclass(frozen=True)
class Moved:
    quantity: int
    deal_units: int
    deal_price_minor: int | None
    epoch: str


@dataclass(frozen=True)
class Swept:
    variant_id: str
    available: int
    back_in_stock: bool
    deal_expired_show: str | None
    released: list[Released]


def _released(variant_id: str, flat: Sequence[Any]) -> list[Released]:
    return [
        Released(variant_id, str(flat[i]), str(flat[i + 1]), str(flat[i + 2]))
        for i in range(0, len(flat) - 2, 3)
    ]


class Inventory:
    def __init__(self, redis: aioredis.Redis, stock_of: StockReader) -> None:
        self.redis = redis
        # Told of the holds a refused reserve released on its way (their time was up): the
        # refusal changes nothing, but those releases are announced like any other.
        self.on_swept: SweptListener | None = None
        self._stock_of = stock_of
        self._loads = SingleFlight()
        self.epoch: str | None = None
        self.batcher = ScriptBatcher(redis)
        self._scripts: dict[str, str] = {}  # name -> sha

    def register(self) -> None:
        for name in (
            "RESERVE", "MOVE", "COMMIT", "RELEASE", "SWEEP", "LOAD", "RESTOCK", "RESYNC",
            "DEAL_START", "DEAL_STOP", "NOTIFY_ADD", "NOTIFY_POP",
        ):  # fmt: skip
            self._scripts[name] = self.batcher.register(getattr(scripts, name))

    async def _call(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.batcher.call(self._scripts[name], keys, args)
        except RedisError as exc:
            raise Unavailable(
                "inventory_unavailable",
                "the inventory is unreachable, try again",
                extra={"retry": True},
            ) from exc

    async def _gated(self, name: str, variant_id: str, keys: list[str], args: list[Any]) -> Any:
        """Run a variant script; when its keys are missing, load them from SQL and retry."""
        result = await self._call(name, keys, args)
        if isinstance(result, list) and result and result[0] == "noload":
            await self.load(variant_id)
            result = await self._call(name, keys, args)
            if isinstance(result, list) and result and result[0] == "noload":
                raise Unavailable(
                    "inventory_unavailable", "the inventory is being rebuilt, try again"
                )
        return result

    # -- epoch and loading -------------------------------------------------------------

    async def current_epoch(self) -> str:
        """The epoch of Redis's copy; a new one when the key vanished (data lost)."""
        try:
            value = await self.redis.get(EPOCH_KEY)
            if value is None:
                await self.redis.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
                value = await self.redis.get(EPOCH_KEY)
        except RedisError as exc:
            raise Unavailable(
                "inventory_unavailable", "the inventory is unreachable, try again"
            ) from exc
        self.epoch = str(value)
        return self.epoch

    async def load(self, variant_id: str) -> bool:
        """Load a variant's units from SQL stock if Redis has none (all its holds are gone).

        One load per variant at a time: the taps that find the variant missing together
        (the first taps of a drop, or all taps after a data loss) wait on the same load.
        """
        return await self._loads.run(variant_id, lambda: self._load(variant_id))

    async def _load(self, variant_id: str) -> bool:
        epoch = await self.current_epoch()
        stock = await self._stock_of(variant_id)
        loaded = await self._call("LOAD", [stock_key(variant_id)], [stock, epoch])
        try:
            await self.redis.sadd(INDEX_KEY, variant_id)
        except RedisError as exc:
            raise Unavailable(
                "inventory_unavailable", "the inventory is unreachable, try again"
            ) from exc
        return bool(loaded)

    async def known_variants(self) -> list[str]:
        return sorted(str(v) for v in await self.redis.smembers(INDEX_KEY))

    # -- holds ---------------------------------------------------------------------------

    async def reserve(
        self,
        variant_id: str,
        hold_id: str,
        *,
        buyer_id: str,
        show_id: str,
        quantity: int,
        ttl_ms: int,
        state: HoldState,
        idempotency: tuple[str, str] | None = None,
    ) -> Reserved | Replay:
        """Set hold ``hold_id`` to ``quantity`` units (0 removes it), all or nothing.

        ``idempotency`` is (key, fingerprint): a key seen before answers a ``Replay``.
        """
        p = prefix(variant_id)
        ikey, fp = idempotency or ("", "")
        keys = [
            stock_key(variant_id),
            p + "exp",
            hold_key(variant_id, hold_id),
            p + "deal",
            p + "dealbuy",
            idem_key(variant_id, buyer_id, ikey) if ikey else p + "idem:-",
        ]
        args = [p, hold_id, buyer_id, show_id, quantity, ttl_ms, state.value, fp, IDEM_TTL_MS]
        r = await self._gated("RESERVE", variant_id, keys, args)
        tag = r[0]
        if tag == "ok":
            return Reserved(
                variant_id=variant_id,
                available=int(r[1]),
                quantity=int(r[2]),
                deal_units=int(r[3]),
                deal_price_minor=None if int(r[4]) < 0 else int(r[4]),
                expires_ms=int(r[5]),
                epoch=str(r[6]),
                back_in_stock=bool(int(r[7])),
                deal_units_gone=bool(int(r[8])),
                released=_released(variant_id, r[9:]),
            )
        if tag == "idem":
            return Replay(str(r[1]), str(r[2]), str(r[3]))
        if len(r) > 4 and self.on_swept is not None:  # (a refusal after the lazy sweep)
            released = _released(variant_id, r[4:])
            await self.on_swept(Swept(variant_id, int(r[2]), bool(int(r[3])), None, released))
        raise _refusal(variant_id, tag, r)

    async def move(
        self, variant_id: str, hold_id: str, source: HoldState, target: HoldState, ttl_ms: int
    ) -> Moved | None:
        """Move a live hold between states (held <-> paying); None when it is gone.

        The Lua writes whatever state it is given, so the move is checked here first: a
        move outside HOLD_TRANSITIONS, or to an end state (COMMIT and RELEASE end a hold),
        raises before Redis is called."""
        HOLD_TRANSITIONS.check(source, target)
        if target not in LIVE_STATES:
            raise ValueError(f"MOVE keeps a hold alive; {target} is an end state")
        p = prefix(variant_id)
        keys = [stock_key(variant_id), p + "exp", hold_key(variant_id, hold_id), p + "deal"]
        r = await self._call("MOVE", keys, [hold_id, source.value, target.value, ttl_ms])
        if r[0] == "gone":
            return None
        if r[0] == "state":
            raise Conflict("checkout_in_progress", "this cart is already being checked out")
        price = int(r[3])
        return Moved(int(r[1]), int(r[2]), None if price < 0 else price, str(r[4]))

    async def commit(
        self,
        variant_id: str,
        hold_id: str,
        *,
        quantity: int,
        epoch: str,
        order_id: str,
        idem: str = "",
    ) -> str:
        """The order is in SQL: the hold's units become sold. 'resync' asks for a resync."""
        p = prefix(variant_id)
        keys = [stock_key(variant_id), p + "exp", hold_key(variant_id, hold_id), idem or p + "-"]
        r = await self._call("COMMIT", keys, [hold_id, quantity, epoch, order_id])
        return str(r[0])

    async def release(
        self,
        variant_id: str,
        hold_id: str,
        *,
        idem: str = "",
        reason: str = "",
        only: HoldState | None = None,
    ) -> tuple[int, bool, int]:
        """Give a hold's units back: (available, back in stock, units released). With
        ``only``, a hold in another state is left alone (0 units released)."""
        p = prefix(variant_id)
        keys = [stock_key(variant_id), p + "exp", hold_key(variant_id, hold_id), idem or p + "-"]
        state = "failed" if idem and reason else ""
        args = [p, hold_id, state, reason, only.value if only else ""]
        r = await self._call("RELEASE", keys, args)
        return int(r[1]), bool(int(r[2])), int(r[3])

    async def sweep(self, variant_id: str) -> Swept | None:
        p = prefix(variant_id)
        keys = [stock_key(variant_id), p + "exp", p + "deal", p + "dealbuy"]
        r = await self._call("SWEEP", keys, [p, SWEEP_BATCH])
        if r and r[0] == "noload":
            return None
        return Swept(
            variant_id,
            int(r[0]),
            bool(int(r[1])),
            str(r[3]) if int(r[2]) else None,
            _released(variant_id, r[4:]),
        )

    async def paying_holds(self, variant_id: str, made_before_ms: int, ttl_ms: int) -> list[str]:
        """The ids of the variant's paying holds made before ``made_before_ms`` (server
        clock), given that a paying hold lives ``ttl_ms``: at most ``SWEEP_BATCH``."""
        p = prefix(variant_id)
        try:
            ids = await self.redis.zrangebyscore(
                p + "exp", "-inf", made_before_ms + ttl_ms, start=0, num=SWEEP_BATCH
            )
            if not ids:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for hold_id in ids:
                    pipe.hget(hold_key(variant_id, str(hold_id)), "state")
                states = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(
                "inventory_unavailable", "the inventory is unreachable, try again"
            ) from exc
        return [str(h) for h, s in zip(ids, states, strict=True) if s == HoldState.PAYING.value]

    async def server_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def restock(self, variant_id: str, stock: int) -> tuple[int, bool]:
        r = await self._gated("RESTOCK", variant_id, [stock_key(variant_id)], [stock])
        if r[0] == "below_held":
            raise Conflict(
                "stock_below_held",
                f"{r[1]} units are held in carts or payments; stock cannot go below that",
                fields={"stock": f">= {r[1]}"},
            )
        return int(r[1]), bool(int(r[2]))

    async def resync(self, variant_id: str) -> None:
        """After a data loss mid-order: available = SQL stock minus the live holds."""
        stock = await self._stock_of(variant_id)
        await self._call("RESYNC", [stock_key(variant_id)], [stock])

    async def counts(self, variant_id: str) -> dict[str, int]:
        """avail, held, sold, listed of a variant (loading it first if needed)."""
        key = stock_key(variant_id)
        raw = await self.redis.hgetall(key)
        if not raw:
            await self.load(variant_id)
            raw = await self.redis.hgetall(key)
        return {k: int(raw[k]) for k in ("avail", "held", "sold", "listed")}

    async def available(self, variant_ids: Sequence[str]) -> dict[str, int]:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for vid in variant_ids:
                    pipe.hget(stock_key(vid), "avail")
                values = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(
                "inventory_unavailable", "the inventory is unreachable, try again"
            ) from exc
        out: dict[str, int] = {}
        for vid, value in zip(variant_ids, values, strict=True):
            if value is None:
                await self.load(vid)
                value = await self.redis.hget(stock_key(vid), "avail")
            out[vid] = int(value or 0)
        return out

    # -- deals and notifications ---------------------------------------------------------

    async def start_deal(
        self,
        variant_id: str,
        *,
        show_id: str,
        price_minor: int,
        units: int,
        ends_ms: int,
        per_buyer_limit: int,
    ) -> None:
        p = prefix(variant_id)
        keys = [stock_key(variant_id), p + "deal", p + "dealbuy"]
        args = [secrets.token_hex(6), show_id, price_minor, units, ends_ms, per_buyer_limit]
        r = await self._gated("DEAL_START", variant_id, keys, args)
        if r[0] == "running":
            raise Conflict("deal_running", "a deal is already running on this variant")
        if r[0] == "ended":
            raise CheckoutError(
                "deal_expired",
                "the deal would end in the past",
                fields={"ends_at": "must be in the future"},
            )
        if r[0] == "short":
            raise OutOfStock(
                "out_of_stock",
                f"only {r[1]} units are available for the deal",
                fields={"units": f"<= {r[1]}"},
                extra={"available": {variant_id: int(r[1])}},
            )

    async def stop_deal(self, variant_id: str) -> bool:
        p = prefix(variant_id)
        return bool(await self._call("DEAL_STOP", [p + "deal", p + "dealbuy"], []))

    async def deal(self, variant_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(prefix(variant_id) + "deal")
        return {str(k): str(v) for k, v in raw.items()} or None

    async def subscribe(self, variant_id: str, viewer_id: str) -> bool:
        return bool(await self._call("NOTIFY_ADD", [prefix(variant_id) + "notify"], [viewer_id]))

    async def pop_subscribers(self, variant_id: str) -> list[str]:
        ids = await self._call("NOTIFY_POP", [prefix(variant_id) + "notify"], [])
        return [str(v) for v in ids]


def _refusal(variant_id: str, tag: str, r: Sequence[Any]) -> CheckoutError:
    if tag == "short":
        left = int(r[1])
        return OutOfStock(
            "sold_out" if left == 0 else "out_of_stock",
            "sold out" if left == 0 else f"only {left} left",
            fields={variant_id: f"{left} available"},
            extra={"available": {variant_id: left}},
        )
    if tag == "deal_limit":
        room = max(0, int(r[1]))
        return Conflict(
            "deal_limit_reached",
            f"the deal allows {room} more units for you",
            fields={"quantity": f"<= {room}"},
            extra={"room": room},
        )
    if tag == "deal_short":
        return OutOfStock(
            "deal_sold_out",
            f"only {r[1]} deal units left",
            fields={variant_id: f"{r[1]} deal units left"},
            extra={"left": int(r[1])},
        )
    if tag == "paying":
        return Conflict("checkout_in_progress", "this cart is already being checked out")
    if tag == "idem_mismatch":
        return IdempotencyError(
            "idempotency_key_reused",
            "this idempotency key was used for a different request",
            fields={"idempotency_key": "used for a different request"},
        )
    return CheckoutError("internal_error", f"unexpected inventory answer {tag!r}")
