"""Every Lua path that changes a hold's state, against ``holds.HOLD_TRANSITIONS``.

The scripts (``checkout/scripts.py``) keep a live hold in its hash ``P h:ID`` (field
``state``: held or paying). A hold that ends is deleted, so whether it was committed or
released is read from the variant's counters: a commit moves its units from held to sold,
a release from held back to avail (``sold`` moves for nothing else). Each step reads every
hold of the variant and the counters before and after one script call, derives the moves it
made, checks them against the table and against what the step expects; a refused call must
leave every hold as it was. The test ends by checking that every edge of the table, and a
hold's birth in each live state, was seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from checkout.errors import CheckoutError
from checkout.holds import HOLD_TRANSITIONS, HoldState, IllegalTransition, transition
from checkout.inventory import Inventory, Replay, Reserved, hold_key, idem_key, stock_key
from tests.checkout.conftest import Shop

HELD, PAYING = HoldState.HELD, HoldState.PAYING
COMMITTED, RELEASED = HoldState.COMMITTED, HoldState.RELEASED

Move = tuple[HoldState | None, HoldState]
"""(before, after) of one hold; ``None`` before: the call created it."""

LIVE = frozenset(s for s in HoldState if HOLD_TRANSITIONS[s])
"""The states a hold can be created in: those it can still leave."""
EDGES = frozenset((a, b) for a in HoldState for b in HOLD_TRANSITIONS[a])
LONG_MS = 60_000
SHORT_MS = 300  # a hold that runs out during the test (the sweeper is stopped)


def allowed(move: Move) -> bool:
    before, after = move
    return after in LIVE if before is None else HOLD_TRANSITIONS.allows(before, after)


@dataclass(frozen=True)
class Snapshot:
    holds: dict[str, tuple[HoldState, int]]  # hold id -> (state, units) of the live holds
    counts: dict[str, int]


def moves_between(before: Snapshot, after: Snapshot, what: str) -> dict[str, Move]:
    moves: dict[str, Move] = {}
    for hold_id, (state, _) in after.holds.items():
        old = before.holds.get(hold_id)
        if old is None or old[0] is not state:
            moves[hold_id] = (None if old is None else old[0], state)
    gone = sorted(set(before.holds) - set(after.holds))
    sold = after.counts["sold"] - before.counts["sold"]
    for hold_id in gone:
        state, units = before.holds[hold_id]
        if sold == 0:
            moves[hold_id] = (state, RELEASED)
        else:
            assert gone == [hold_id] and sold == units, f"{what}: which hold was sold?"
            moves[hold_id] = (state, COMMITTED)
    return moves


@dataclass
class Watch:
    shop: Shop
    seen: set[Move] = field(default_factory=set)

    @property
    def inv(self) -> Inventory:
        return self.shop.service.inventory

    async def read(self, variant_id: str) -> Snapshot:
        redis = self.shop.redis
        holds: dict[str, tuple[HoldState, int]] = {}
        start = hold_key(variant_id, "")
        async for key in redis.scan_iter(match=start + "*"):
            state, units = await redis.hmget(key, ["state", "qty"])
            holds[str(key).removeprefix(start)] = (HoldState(str(state)), int(str(units)))
        raw = await redis.hgetall(stock_key(variant_id))
        counts = {k: int(raw[k]) for k in ("avail", "held", "sold", "listed")}
        assert counts["held"] == sum(units for _, units in holds.values()), (counts, holds)
        assert counts["avail"] + counts["held"] + counts["sold"] == counts["listed"], counts
        return Snapshot(holds, counts)

    async def step(
        self, what: str, variant_id: str, call: Awaitable[Any], expect: dict[str, Move]
    ) -> Any:
        """Run one script call; its moves must be ``expect``, each one in the table."""
        before = await self.read(variant_id)
        try:
            result = await call
        except CheckoutError as exc:
            result = exc
        after = await self.read(variant_id)
        moves = moves_between(before, after, what)
        for hold_id, move in moves.items():
            assert allowed(move), f"{what}: {hold_id} moved {move}, outside HOLD_TRANSITIONS"
        assert moves == expect, what
        self.seen.update(moves.values())
        return result

    async def unchanged(self, what: str, variant_id: str, call: Awaitable[Any]) -> Any:
        """Run one script call that must leave every hold of the variant as it was."""
        before = await self.read(variant_id)
        result = await self.step(what, variant_id, call, {})
        assert (await self.read(variant_id)).holds == before.holds, what
        return result

    async def refused(self, what: str, variant_id: str, call: Awaitable[Any], code: str) -> None:
        result = await self.unchanged(what, variant_id, call)
        assert isinstance(result, CheckoutError) and result.code == code, (what, result)

    async def none_left(self, variant_id: str) -> None:
        assert (await self.read(variant_id)).holds == {}

    def reserve(
        self,
        variant_id: str,
        hold_id: str,
        quantity: int,
        state: HoldState,
        *,
        buyer: str = "b",
        ttl_ms: int = LONG_MS,
        key: str = "",
    ) -> Awaitable[Reserved | Replay]:
        return self.inv.reserve(
            variant_id,
            hold_id,
            buyer_id=buyer,
            show_id=self.shop.show_id,
            quantity=quantity,
            ttl_ms=ttl_ms,
            state=state,
            idempotency=(key, f"{self.shop.show_id}|{variant_id}|{quantity}") if key else None,
        )


# -- the paths: each leaves no live hold behind ---------------------------------------


async def one_tap_buy(w: Watch) -> None:
    v = w.shop.v("SNK-43")
    res = await w.step(
        "a tap reserves a paying hold", v, w.reserve(v, "b:a:k", 1, PAYING, buyer="a", key="k"),
        {"b:a:k": (None, PAYING)},
    )  # fmt: skip
    assert isinstance(res, Reserved)
    outcome = await w.step(
        "the order is written: commit", v,
        w.inv.commit(v, "b:a:k", quantity=1, epoch=res.epoch, order_id="o1",
                     idem=idem_key(v, "a", "k")),
        {"b:a:k": (PAYING, COMMITTED)},
    )  # fmt: skip
    assert outcome == "ok"
    await w.none_left(v)


async def idempotent_replays(w: Watch) -> None:
    v = w.shop.v("SNK-43")
    res = await w.step(
        "a tap with a key", v, w.reserve(v, "b:b:k", 1, PAYING, key="k"),
        {"b:b:k": (None, PAYING)},
    )  # fmt: skip
    assert isinstance(res, Reserved)
    pending = await w.unchanged(
        "the same tap again, first one pending", v, w.reserve(v, "b:b:k", 1, PAYING, key="k")
    )
    assert isinstance(pending, Replay) and pending.state == "pending"
    await w.refused(
        "the key for another request", v, w.reserve(v, "b:b:k", 2, PAYING, key="k"),
        "idempotency_key_reused",
    )  # fmt: skip
    await w.step(
        "commit", v,
        w.inv.commit(v, "b:b:k", quantity=1, epoch=res.epoch, order_id="o2",
                     idem=idem_key(v, "b", "k")),
        {"b:b:k": (PAYING, COMMITTED)},
    )  # fmt: skip
    done = await w.unchanged(
        "the same tap after its order: no new hold", v, w.reserve(v, "b:b:k", 1, PAYING, key="k")
    )
    assert isinstance(done, Replay) and (done.state, done.order_id) == ("done", "o2")
    await w.unchanged(
        "releasing a committed hold", v, w.inv.release(v, "b:b:k", idem=idem_key(v, "b", "k"))
    )
    await w.step(
        "another key", v, w.reserve(v, "b:b:k2", 1, PAYING, key="k2"),
        {"b:b:k2": (None, PAYING)},
    )  # fmt: skip
    await w.step(
        "its payment failed: release", v,
        w.inv.release(v, "b:b:k2", idem=idem_key(v, "b", "k2"), reason="payment_declined"),
        {"b:b:k2": (PAYING, RELEASED)},
    )  # fmt: skip
    failed = await w.unchanged(
        "the failed tap again: no new hold", v, w.reserve(v, "b:b:k2", 1, PAYING, key="k2")
    )
    assert isinstance(failed, Replay) and (failed.state, failed.reason) == (
        "failed",
        "payment_declined",
    )
    await w.unchanged("releasing a released hold", v, w.inv.release(v, "b:b:k2"))
    await w.none_left(v)


async def cart_checkout(w: Watch) -> None:
    v, hold = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:u"
    await w.step("a cart line", v, w.reserve(v, hold, 1, HELD), {hold: (None, HELD)})
    await w.step("the line's quantity changes", v, w.reserve(v, hold, 3, HELD), {})
    assert (await w.read(v)).holds[hold] == (HELD, 3)
    await w.step(
        "checkout: held -> paying", v, w.inv.move(v, hold, HELD, PAYING, LONG_MS),
        {hold: (HELD, PAYING)},
    )  # fmt: skip
    await w.refused(
        "the cart changes while paying", v, w.reserve(v, hold, 2, HELD), "checkout_in_progress"
    )
    await w.refused(
        "a second checkout of the same cart", v, w.inv.move(v, hold, HELD, PAYING, LONG_MS),
        "checkout_in_progress",
    )  # fmt: skip
    await w.step(
        "checkout refused (another line ran out): paying -> held", v,
        w.inv.move(v, hold, PAYING, HELD, LONG_MS),
        {hold: (PAYING, HELD)},
    )  # fmt: skip
    moved = await w.step(
        "checkout again", v, w.inv.move(v, hold, HELD, PAYING, LONG_MS), {hold: (HELD, PAYING)}
    )
    await w.step(
        "the cart's order is written: commit", v,
        w.inv.commit(v, hold, quantity=3, epoch=moved.epoch, order_id="o3"),
        {hold: (PAYING, COMMITTED)},
    )  # fmt: skip
    gone = await w.unchanged("a gone hold cannot move", v, w.inv.move(v, hold, HELD, PAYING, 1))
    assert gone is None
    await w.none_left(v)


async def cart_line_changes(w: Watch) -> None:
    v, hold = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:v"
    await w.step("a cart line", v, w.reserve(v, hold, 2, HELD), {hold: (None, HELD)})
    # (no caller does this; the script allows it: the hold is made again as paying)
    await w.step(
        "a paying reserve over a held hold", v, w.reserve(v, hold, 2, PAYING),
        {hold: (HELD, PAYING)},
    )  # fmt: skip
    await w.step(
        "back to the cart", v, w.inv.move(v, hold, PAYING, HELD, LONG_MS), {hold: (PAYING, HELD)}
    )
    await w.step(
        "quantity 0 removes the line", v, w.reserve(v, hold, 0, HELD), {hold: (HELD, RELEASED)}
    )
    await w.step("a new line", v, w.reserve(v, hold, 1, HELD), {hold: (None, HELD)})
    await w.step("removed from the cart", v, w.inv.release(v, hold), {hold: (HELD, RELEASED)})
    await w.unchanged("removing it again", v, w.inv.release(v, hold))
    await w.none_left(v)


async def refused_reserves(w: Watch) -> None:
    v, hold = w.shop.v("SNK-42"), f"c:{w.shop.show_id}:w"  # 5 units
    await w.step("a cart line", v, w.reserve(v, hold, 2, HELD), {hold: (None, HELD)})
    await w.refused("more than there is", v, w.reserve(v, hold, 9, HELD), "out_of_stock")
    assert (await w.read(v)).holds[hold] == (HELD, 2)
    await w.refused("a tap for too many", v, w.reserve(v, "b:x:k", 4, PAYING), "out_of_stock")
    await w.step("removed", v, w.inv.release(v, hold), {hold: (HELD, RELEASED)})
    await w.none_left(v)


async def deals(w: Watch) -> None:
    v = w.shop.v("MUG")
    a, b = f"c:{w.shop.show_id}:da", f"c:{w.shop.show_id}:db"
    seconds, _ = await w.shop.redis.time()
    start = w.inv.start_deal(
        v, show_id=w.shop.show_id, price_minor=900, units=2,
        ends_ms=(int(seconds) + 60) * 1000, per_buyer_limit=1,
    )  # fmt: skip
    await w.unchanged("a deal starts", v, start)
    await w.step("a deal unit held", v, w.reserve(v, a, 1, HELD, buyer="da"), {a: (None, HELD)})
    await w.refused(
        "above the deal's limit", v, w.reserve(v, "b:dc:k", 2, PAYING, buyer="dc"),
        "deal_limit_reached",
    )  # fmt: skip
    await w.step("the last deal unit", v, w.reserve(v, b, 1, HELD, buyer="db"), {b: (None, HELD)})
    await w.refused(
        "no deal units left", v, w.reserve(v, "b:dd:k", 1, PAYING, buyer="dd"), "deal_sold_out"
    )
    await w.unchanged("the deal stops", v, w.inv.stop_deal(v))
    await w.step("removed", v, w.inv.release(v, a), {a: (HELD, RELEASED)})
    await w.step("removed", v, w.inv.release(v, b), {b: (HELD, RELEASED)})
    await w.none_left(v)


async def restock_and_resync(w: Watch) -> None:
    v, hold = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:r"
    await w.step("a cart line", v, w.reserve(v, hold, 2, HELD), {hold: (None, HELD)})
    await w.step("a tap", v, w.reserve(v, "b:r:k", 3, PAYING), {"b:r:k": (None, PAYING)})
    await w.unchanged("restock", v, w.inv.restock(v, 50))
    await w.refused("restock below the held units", v, w.inv.restock(v, 4), "stock_below_held")
    await w.unchanged("resync with SQL", v, w.inv.resync(v))
    await w.unchanged("load (already loaded)", v, w.inv.load(v))
    await w.step("removed", v, w.inv.release(v, hold), {hold: (HELD, RELEASED)})
    await w.step("paid no more", v, w.inv.release(v, "b:r:k"), {"b:r:k": (PAYING, RELEASED)})
    await w.none_left(v)


async def expiry_by_sweep(w: Watch) -> None:
    v, hold = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:s"
    await w.step(
        "a short cart hold", v, w.reserve(v, hold, 1, HELD, ttl_ms=SHORT_MS), {hold: (None, HELD)}
    )
    await w.step(
        "a short paying hold", v, w.reserve(v, "b:s:k", 1, PAYING, ttl_ms=SHORT_MS),
        {"b:s:k": (None, PAYING)},
    )  # fmt: skip
    await asyncio.sleep(SHORT_MS / 1000 * 2)
    gone = await w.unchanged(
        "a run-out hold cannot move (the sweep releases it)", v,
        w.inv.move(v, hold, HELD, PAYING, LONG_MS),
    )  # fmt: skip
    assert gone is None
    await w.step(
        "the sweep", v, w.inv.sweep(v), {hold: (HELD, RELEASED), "b:s:k": (PAYING, RELEASED)}
    )
    await w.none_left(v)


async def expiry_by_a_later_reserve(w: Watch) -> None:
    v, hold, later = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:l", f"c:{w.shop.show_id}:m"
    await w.step(
        "a short cart hold", v, w.reserve(v, hold, 1, HELD, ttl_ms=SHORT_MS), {hold: (None, HELD)}
    )
    await w.step(
        "a short paying hold", v, w.reserve(v, "b:l:k", 2, PAYING, ttl_ms=SHORT_MS),
        {"b:l:k": (None, PAYING)},
    )  # fmt: skip
    await asyncio.sleep(SHORT_MS / 1000 * 2)
    await w.step(
        "the next reserve releases them", v, w.reserve(v, later, 1, HELD),
        {later: (None, HELD), hold: (HELD, RELEASED), "b:l:k": (PAYING, RELEASED)},
    )  # fmt: skip
    await w.step("removed", v, w.inv.release(v, later), {later: (HELD, RELEASED)})
    await w.none_left(v)


async def expiry_by_a_refused_reserve(w: Watch) -> None:
    v, hold = w.shop.v("SNK-42"), f"c:{w.shop.show_id}:e"  # 5 units
    await w.step(
        "a short hold of every unit", v, w.reserve(v, hold, 5, HELD, ttl_ms=SHORT_MS),
        {hold: (None, HELD)},
    )  # fmt: skip
    await asyncio.sleep(SHORT_MS / 1000 * 2)
    result = await w.step(
        "a reserve refused for too many still releases it", v,
        w.reserve(v, "b:e:k", 6, PAYING), {hold: (HELD, RELEASED)},
    )  # fmt: skip
    assert isinstance(result, CheckoutError) and result.code == "out_of_stock"
    await w.none_left(v)


async def commits_that_find_no_paying_hold(w: Watch) -> None:
    v, hold = w.shop.v("SNK-43"), f"c:{w.shop.show_id}:c"
    res = await w.step("a cart line", v, w.reserve(v, hold, 1, HELD), {hold: (None, HELD)})
    await w.step("checkout", v, w.inv.move(v, hold, HELD, PAYING, SHORT_MS), {hold: (HELD, PAYING)})
    await asyncio.sleep(SHORT_MS / 1000 * 2)
    await w.step("the payment outlasted the hold", v, w.inv.sweep(v), {hold: (PAYING, RELEASED)})
    # the order was written all the same: the hold stays released, its units are taken again
    before = await w.read(v)
    outcome = await w.unchanged(
        "commit of a released hold", v,
        w.inv.commit(v, hold, quantity=1, epoch=res.epoch, order_id="o4"),
    )  # fmt: skip
    after = await w.read(v)
    assert outcome == "ok" and after.counts["sold"] == before.counts["sold"] + 1
    assert await w.unchanged(
        "commit of a released hold from a lost copy of Redis", v,
        w.inv.commit(v, hold, quantity=1, epoch="lost", order_id="o4"),
    ) == "resync"  # fmt: skip
    # the buyer filled the cart again (same hold id) before the late commit came
    await w.step("a new cart line", v, w.reserve(v, hold, 2, HELD), {hold: (None, HELD)})
    before = await w.read(v)
    await w.unchanged(
        "a late commit leaves the new cart line held", v,
        w.inv.commit(v, hold, quantity=1, epoch=res.epoch, order_id="o4"),
    )  # fmt: skip
    after = await w.read(v)
    assert after.holds[hold] == (HELD, 2) and after.counts["sold"] == before.counts["sold"] + 1
    await w.step("removed", v, w.inv.release(v, hold), {hold: (HELD, RELEASED)})
    await w.none_left(v)


PATHS: tuple[Callable[[Watch], Awaitable[None]], ...] = (
    one_tap_buy,
    idempotent_replays,
    cart_checkout,
    cart_line_changes,
    refused_reserves,
    deals,
    restock_and_resync,
    expiry_by_sweep,
    expiry_by_a_later_reserve,
    expiry_by_a_refused_reserve,
    commits_that_find_no_paying_hold,
)


async def test_every_script_path_moves_holds_by_the_table(shop: Shop) -> None:
    await shop.service.close()  # no sweeper: each release happens in the step that made it
    watch = Watch(shop)
    for path in PATHS:
        await path(watch)
    births = {after for before, after in watch.seen if before is None}
    assert births == LIVE
    assert {move for move in watch.seen if move[0] is not None} == EDGES


def test_the_table_refuses_what_it_lacks() -> None:
    assert {HELD, PAYING} == LIVE and len(EDGES) == 5
    assert not allowed((HELD, COMMITTED)) and not allowed((None, RELEASED))
    assert not allowed((RELEASED, COMMITTED)) and not allowed((COMMITTED, RELEASED))


def test_hold_transitions() -> None:
    assert transition(HoldState.HELD, HoldState.PAYING) is HoldState.PAYING
    assert transition(HoldState.PAYING, HoldState.COMMITTED) is HoldState.COMMITTED
    try:
        transition(HoldState.COMMITTED, HoldState.RELEASED)
    except IllegalTransition:
        pass
    else:
        raise AssertionError("committed -> released was allowed")


async def test_a_move_outside_the_table_is_refused_before_redis(shop: Shop) -> None:
    # MOVE's Lua writes whatever state it is given: Inventory.move checks it first.
    inv = shop.service.inventory
    v = shop.v("SNK-43")
    held = await inv.reserve(
        v,
        "c:guard",
        buyer_id="b",
        show_id=shop.show_id,
        quantity=1,
        ttl_ms=LONG_MS,
        state=HELD,
    )
    assert isinstance(held, Reserved)
    before = await shop.redis.hgetall(hold_key(v, "c:guard"))
    for source, target in ((HELD, COMMITTED), (PAYING, RELEASED), (COMMITTED, HELD)):
        try:
            await inv.move(v, "c:guard", source, target, LONG_MS)
        except (IllegalTransition, ValueError):
            pass
        else:
            raise AssertionError(f"move {source} -> {target} was sent to Redis")
    assert await shop.redis.hgetall(hold_key(v, "c:guard")) == before
