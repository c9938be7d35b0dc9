"""The SQL guard's group commit: orders written together share a transaction, yet each
order stays all-or-nothing, and a failed transaction confirms none of them."""

from __future__ import annotations

import asyncio

from checkout.errors import CheckoutError, OutOfStock
from checkout.order_writer import DuplicateOrder, OrderDraft, OrderWriter
from checkout.orders import LineSpec
from checkout.results import OrderResult
from tests.checkout.conftest import Shop


def _draft(shop: Shop, buyer: str, *lines: LineSpec, show_id: str = "") -> OrderDraft:
    return OrderDraft(show_id or shop.show_id, buyer, f"key-{buyer}", "EUR", lines, None)


async def _outcome(writer: OrderWriter, draft: OrderDraft) -> OrderResult | BaseException:
    try:
        return await writer.write(draft)
    except (CheckoutError, DuplicateOrder) as exc:
        return exc


async def test_concurrent_orders_share_transactions_and_never_oversell(shop: Shop) -> None:
    v = shop.v("SNK-43")  # 100 units
    writer = OrderWriter(shop.sessions)
    drafts = [_draft(shop, f"b{i}", LineSpec(v, 3, 12900)) for i in range(40)]
    outcomes = await asyncio.gather(*(_outcome(writer, d) for d in drafts))
    confirmed = [o for o in outcomes if isinstance(o, OrderResult)]
    refused = [o for o in outcomes if isinstance(o, OutOfStock)]
    assert len(confirmed) == 33 and len(refused) == 7  # 33 * 3 = 99 of 100 units
    assert all(r.extra["available"] == {v: 1} for r in refused)
    assert writer.batches < len(drafts)  # orders were grouped, not one transaction each
    assert await shop.sql_stock(v) == 1
    assert await shop.units_ordered(v) == 99 and await shop.order_count() == 33
    assert len({o.order_id for o in confirmed}) == 33


async def test_a_short_line_undoes_only_its_own_order(shop: Shop) -> None:
    mug, snk = shop.v("MUG"), shop.v("SNK-42")  # 20 and 5 units
    writer = OrderWriter(shop.sessions)
    both = _draft(shop, "a", LineSpec(mug, 2, 1500), LineSpec(snk, 6, 12900))
    fine = _draft(shop, "b", LineSpec(mug, 1, 1500))
    short, ok = await asyncio.gather(_outcome(writer, both), _outcome(writer, fine))
    assert writer.batches == 1
    assert isinstance(short, OutOfStock) and set(short.fields) == {snk}
    assert isinstance(ok, OrderResult) and ok.total_minor == 1500
    assert await shop.sql_stock(mug) == 19 and await shop.sql_stock(snk) == 5
    assert await shop.order_count() == 1


async def test_after_a_short_each_order_stands_or_fails_alone(shop: Shop) -> None:
    mug, snk = shop.v("MUG"), shop.v("SNK-42")  # 20 and 5 units
    writer = OrderWriter(shop.sessions)
    short = _draft(shop, "short", LineSpec(snk, 6, 12900))  # the batch is short of SNK-42
    zero = _draft(shop, "zero", LineSpec(mug, 0, 1500))  # its line breaks quantity > 0
    fine = _draft(shop, "fine", LineSpec(mug, 1, 1500))
    outcomes = await asyncio.gather(*(_outcome(writer, d) for d in (short, zero, fine)))
    assert writer.batches == 1
    assert isinstance(outcomes[0], OutOfStock)
    assert getattr(outcomes[1], "code", None) == "order_store_unavailable"
    assert isinstance(outcomes[2], OrderResult)
    assert await shop.sql_stock(mug) == 19 and await shop.sql_stock(snk) == 5
    assert await shop.order_count() == 1


async def test_a_key_that_made_an_order_makes_no_second(shop: Shop) -> None:
    v = shop.v("SNK-42")
    writer = OrderWriter(shop.sessions)
    draft = _draft(shop, "twice", LineSpec(v, 1, 12900))
    first, second = await asyncio.gather(_outcome(writer, draft), _outcome(writer, draft))
    assert isinstance(first, OrderResult) and isinstance(second, DuplicateOrder)
    assert isinstance(await _outcome(writer, draft), DuplicateOrder)  # in a later batch too
    assert await shop.sql_stock(v) == 4 and await shop.order_count() == 1


async def test_an_order_the_database_refuses_fails_only_itself(shop: Shop) -> None:
    v = shop.v("SNK-42")
    writer = OrderWriter(shop.sessions)
    good = _draft(shop, "good", LineSpec(v, 1, 12900))
    broken = _draft(shop, "broken", LineSpec(v, 1, 12900), show_id="shw_missing")  # FK
    ok, refused = await asyncio.gather(_outcome(writer, good), _outcome(writer, broken))
    assert writer.batches == 1  # they were in one batch, whose transaction failed
    assert isinstance(ok, OrderResult)
    assert getattr(refused, "code", None) == "order_store_unavailable"
    assert await shop.sql_stock(v) == 4 and await shop.order_count() == 1
    # the writer goes on: the next order commits
    again = _draft(shop, "again", LineSpec(v, 1, 12900))
    assert isinstance(await _outcome(writer, again), OrderResult)
    assert await shop.sql_stock(v) == 3


async def test_close_lets_the_running_batch_finish_then_refuses(shop: Shop) -> None:
    v = shop.v("SNK-42")
    writer = OrderWriter(shop.sessions)
    first = asyncio.create_task(_outcome(writer, _draft(shop, "first", LineSpec(v, 1, 12900))))
    await asyncio.sleep(0)  # the write is queued and its batch is under way
    await writer.close()
    assert isinstance(await first, OrderResult)
    late = await _outcome(writer, _draft(shop, "late", LineSpec(v, 1, 12900)))
    assert getattr(late, "code", None) == "order_store_unavailable"
    assert await shop.sql_stock(v) == 4 and await shop.order_count() == 1
