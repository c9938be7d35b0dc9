"""The Redis gate: the invariant under concurrency, expiry, and rebuilding after a loss."""

from __future__ import annotations

import asyncio

import pytest

from checkout.errors import CheckoutError
from checkout.events import BackInStock, StockChanged
from checkout.holds import HoldState
from checkout.inventory import Reserved, stock_key
from tests.checkout.conftest import CART_HOLD_S, Shop, wait_until

OK = "pm_card_ok"


async def _tap(shop: Shop, buyer: str, variant_id: str, key: str) -> str:
    try:
        return (await shop.service.buy_now(shop.show_id, buyer, variant_id, 1, key, OK)).order_id
    except CheckoutError as exc:
        return exc.code


async def test_invariant_under_concurrent_taps(shop: Shop) -> None:
    v = shop.v("SNK-42")  # 5 units
    checks: list[dict[str, int]] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            checks.append(await shop.counts(v))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(_tap(shop, f"u{i}", v, f"k{i}") for i in range(60)))
    stop.set()
    await watcher
    orders = [r for r in results if r.startswith("ord_")]
    assert len(orders) == 5 and len(set(orders)) == 5
    assert sorted(set(results) - set(orders)) == ["sold_out"]
    assert checks and all(c["avail"] + c["held"] + c["sold"] == 5 for c in checks)
    assert all(c["avail"] >= 0 for c in checks)
    assert await shop.counts(v) == {"avail": 0, "held": 0, "sold": 5, "listed": 5}
    assert await shop.sql_stock(v) == 0 and await shop.order_count() == 5
    await shop.assert_invariant(v)


async def test_cart_holds_expire_by_sweeper(shop: Shop) -> None:
    v = shop.v("SNK-42")
    await shop.service.add_to_cart(shop.show_id, "u1", v, 5)
    assert await shop.counts(v) == {"avail": 0, "held": 5, "sold": 0, "listed": 5}
    await shop.service.notify_me(shop.show_id, "w1", v)
    await shop.service.notify_me(shop.show_id, "w2", v)
    await wait_until(lambda: shop.counts(v), lambda c: c["held"] == 0, CART_HOLD_S + 3)
    assert await shop.counts(v) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}
    expired = [e for e in shop.sink.of("order") if getattr(e, "status", "") == "cart_expired"]
    assert len(expired) == 1
    back = [e for e in shop.sink.events if isinstance(e, BackInStock)]
    assert [(b.variant_id, b.available, b.viewer_ids) for b in back] == [(v, 5, ["w1", "w2"])]
    view = await shop.service.view_cart(shop.show_id, "u1")
    assert view.lines == () and view.expired == (v,)


async def test_lazy_release_by_next_reserve(shop: Shop) -> None:
    await shop.service.close()  # no sweeper: only the next reserve can release
    v = shop.v("SNK-42")
    inv = shop.service.inventory
    first = await inv.reserve(
        v, "h1", buyer_id="a", show_id=shop.show_id, quantity=5, ttl_ms=300,
        state=HoldState.HELD,
    )  # fmt: skip
    assert isinstance(first, Reserved) and first.available == 0
    await asyncio.sleep(0.4)
    second = await inv.reserve(
        v, "h2", buyer_id="b", show_id=shop.show_id, quantity=2, ttl_ms=10_000,
        state=HoldState.HELD,
    )  # fmt: skip
    assert isinstance(second, Reserved)
    assert second.available == 3
    assert [(r.hold_id, r.buyer_id) for r in second.released] == [("h1", "a")]
    assert await shop.counts(v) == {"avail": 3, "held": 2, "sold": 0, "listed": 5}


async def test_expiry_uses_the_redis_clock(shop: Shop) -> None:
    v = shop.v("MUG")
    res = await shop.service.inventory.reserve(
        v, "h", buyer_id="a", show_id=shop.show_id, quantity=1, ttl_ms=60_000,
        state=HoldState.HELD,
    )  # fmt: skip
    assert isinstance(res, Reserved)
    seconds, micros = await shop.redis.time()
    server_ms = seconds * 1000 + micros // 1000
    assert server_ms + 59_000 <= res.expires_ms <= server_ms + 60_000


async def test_redis_flush_mid_drop_rebuilds_from_sql_without_oversell(shop: Shop) -> None:
    v = shop.v("SNK-42")
    first = await asyncio.gather(*(_tap(shop, f"a{i}", v, f"k{i}") for i in range(3)))
    assert sum(r.startswith("ord_") for r in first) == 3
    epoch = await shop.redis.get("inv:epoch")
    await shop.redis.flushdb()
    second = await asyncio.gather(*(_tap(shop, f"b{i}", v, f"k{i}") for i in range(20)))
    assert sum(r.startswith("ord_") for r in second) == 2
    assert await shop.sql_stock(v) == 0 and await shop.units_ordered(v) == 5
    assert await shop.redis.get("inv:epoch") not in (None, epoch)
    assert (await shop.counts(v))["avail"] == 0
    # a key that made an order before the loss still answers that order, not a second one
    await shop.service.sweep_once()
    again = await shop.service.buy_now(shop.show_id, "a0", v, 1, "k0", OK)
    assert again.replayed and await shop.order_count() == 5


async def test_flush_while_paying_keeps_sql_truth(shop: Shop) -> None:
    v = shop.v("SNK-42")
    inv = shop.service.inventory
    held = await inv.reserve(
        v, "b:x:k", buyer_id="x", show_id=shop.show_id, quantity=2, ttl_ms=10_000,
        state=HoldState.PAYING,
    )  # fmt: skip
    assert isinstance(held, Reserved)
    await shop.redis.flushdb()
    await shop.service.sweep_once()  # the watchdog sees the epoch vanish and rebuilds
    assert (await shop.counts(v))["avail"] == 5
    # the order of the lost hold lands in SQL; Redis follows SQL afterwards
    from checkout import order_writer, orders

    await shop.service.writer.write(
        order_writer.OrderDraft(
            shop.show_id, "x", "k", "EUR", (orders.LineSpec(v, 2, 12900),), None
        )
    )
    assert await inv.commit(v, "b:x:k", quantity=2, epoch=held.epoch, order_id="o") == "resync"
    await inv.resync(v)
    assert (await shop.counts(v))["avail"] == 3


async def test_stock_events_are_coalesced(shop: Shop) -> None:
    v = shop.v("SNK-43")
    for i in range(30):
        await shop.service.add_to_cart(shop.show_id, f"u{i}", v, 1)
    await asyncio.sleep(0.6)
    stock = [e for e in shop.sink.events if isinstance(e, StockChanged) and e.variant_id == v]
    assert 1 <= len(stock) <= 4
    assert stock[-1].available == 70 and not stock[-1].sold_out


async def test_set_stock_keeps_redis_in_line(shop: Shop) -> None:
    v = shop.v("SNK-44")
    await shop.service.notify_me(shop.show_id, "w1", v)
    out = await shop.service.set_stock(v, 4)
    assert out["stock"] == 4 and out["available"] == 4
    assert await shop.counts(v) == {"avail": 4, "held": 0, "sold": 0, "listed": 4}
    assert [e.viewer_ids for e in shop.sink.events if isinstance(e, BackInStock)] == [["w1"]]
    await shop.service.add_to_cart(shop.show_id, "u", v, 3)
    try:
        await shop.service.set_stock(v, 2)
    except CheckoutError as exc:
        assert exc.code == "stock_below_held"
    else:
        raise AssertionError("stock below held units was accepted")
    assert await shop.sql_stock(v) == 4
    assert await shop.counts(v) == {"avail": 1, "held": 3, "sold": 0, "listed": 4}


async def test_taps_that_find_a_variant_unloaded_share_one_load(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = shop.v("SNK-43")  # 100 units, nothing held
    await shop.redis.delete(stock_key(v))  # as before the show's first tap
    inventory = shop.service.inventory
    loads: list[str] = []
    real_load = inventory._load

    async def counted(variant_id: str) -> bool:
        loads.append(variant_id)
        return await real_load(variant_id)

    monkeypatch.setattr(inventory, "_load", counted)
    results = await asyncio.gather(*(_tap(shop, f"w{i}", v, f"kw{i}") for i in range(40)))
    assert loads == [v]
    assert all(r.startswith("ord_") for r in results)
    assert (await shop.counts(v))["sold"] == 40


async def test_a_show_going_live_loads_its_stock(shop: Shop) -> None:
    v = shop.v("MUG")
    await shop.redis.delete(stock_key(v))
    await shop.service.prepare_show(shop.show_id)
    assert await shop.counts(v) == {"avail": 20, "held": 0, "sold": 0, "listed": 20}


async def test_scripts_flushed_from_redis_are_loaded_again(shop: Shop) -> None:
    v = shop.v("SNK-43")
    await shop.redis.script_flush()  # as after a Redis restart that kept the data
    batcher = shop.service.inventory.batcher
    before = batcher.batches
    results = await asyncio.gather(*(_tap(shop, f"s{i}", v, f"ks{i}") for i in range(5)))
    assert all(r.startswith("ord_") for r in results)
    assert batcher.batches > before
    assert (await shop.counts(v))["sold"] == 5
