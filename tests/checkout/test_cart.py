"""Carts: each line holds its units; checkout turns every hold into one order or says why not."""

from __future__ import annotations

import asyncio

import pytest

from checkout import catalog
from checkout.catalog import ProductSpec, VariantSpec
from checkout.errors import CheckoutError
from checkout.holds import HoldState
from checkout.show_state import ShowStatus
from tests.checkout.conftest import CART_HOLD_S, Shop

OK = "pm_card_ok"


async def test_add_change_remove_view(shop: Shop) -> None:
    a, b = shop.v("SNK-42"), shop.v("MUG")
    view = await shop.service.add_to_cart(shop.show_id, "u", a, 2)
    view = await shop.service.add_to_cart(shop.show_id, "u", a, 1)
    assert [(line.variant_id, line.quantity) for line in view.lines] == [(a, 3)]
    view = await shop.service.add_to_cart(shop.show_id, "u", b, 4)
    assert view.total_minor == 3 * 12900 + 4 * 1500
    assert view.to_json()["total"] == {"amount": 44700, "currency": "EUR"}
    assert await shop.counts(a) == {"avail": 2, "held": 3, "sold": 0, "listed": 5}
    view = await shop.service.set_cart_quantity(shop.show_id, "u", a, 1)
    assert await shop.counts(a) == {"avail": 4, "held": 1, "sold": 0, "listed": 5}
    view = await shop.service.set_cart_quantity(shop.show_id, "u", a, 0)
    assert [line.variant_id for line in view.lines] == [b]
    assert await shop.counts(a) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}
    view = await shop.service.remove_from_cart(shop.show_id, "u", b)
    assert view.lines == ()
    assert await shop.counts(b) == {"avail": 20, "held": 0, "sold": 0, "listed": 20}
    with pytest.raises(CheckoutError) as exc:
        await shop.service.remove_from_cart(shop.show_id, "u", b)
    assert exc.value.code == "not_in_cart"


async def test_more_than_available_is_refused_whole(shop: Shop) -> None:
    a = shop.v("SNK-42")
    await shop.service.add_to_cart(shop.show_id, "u", a, 3)
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.set_cart_quantity(shop.show_id, "u", a, 6)
    assert exc.value.code == "out_of_stock" and exc.value.fields == {a: "2 available"}
    assert await shop.snapshot() == before


async def test_checkout_makes_one_order_and_is_idempotent(shop: Shop) -> None:
    a, b = shop.v("SNK-42"), shop.v("MUG")
    await shop.service.add_to_cart(shop.show_id, "u", a, 2)
    await shop.service.add_to_cart(shop.show_id, "u", b, 3)
    results = await asyncio.gather(
        *(shop.service.checkout_cart(shop.show_id, "u", "c1", OK) for _ in range(3))
    )
    assert len({r.order_id for r in results}) == 1
    order = results[0]
    assert order.total_minor == 2 * 12900 + 3 * 1500
    assert sorted((line.variant_id, line.quantity) for line in order.lines) == sorted(
        [(a, 2), (b, 3)]
    )
    assert await shop.order_count() == 1
    assert await shop.counts(a) == {"avail": 3, "held": 0, "sold": 2, "listed": 5}
    assert await shop.counts(b) == {"avail": 17, "held": 0, "sold": 3, "listed": 20}
    assert await shop.sql_stock(a) == 3 and await shop.sql_stock(b) == 17
    assert (await shop.service.view_cart(shop.show_id, "u")).lines == ()
    again = await shop.service.checkout_cart(shop.show_id, "u", "c1", OK)
    assert again.order_id == order.order_id and again.replayed
    stats = await shop.service.stats(shop.show_id)
    assert stats == {"orders": 1, "revenue_minor": 30300, "units_sold": 5}
    summaries = await shop.service.orders_of(shop.show_id, "u")
    assert [(s.order_id, s.units) for s in summaries] == [(order.order_id, 5)]


async def test_checkout_reports_every_shortfall(shop: Shop) -> None:
    a, b = shop.v("SNK-42"), shop.v("MUG")
    await shop.service.add_to_cart(shop.show_id, "u", a, 2)
    await shop.service.add_to_cart(shop.show_id, "u", b, 3)
    # Redis is wrong: SQL has fewer units than Redis promised, for both lines
    async with shop.sessions.begin() as session:
        from sqlalchemy import update

        from checkout.models import Variant

        await session.execute(update(Variant).where(Variant.id == a).values(stock=1))
        await session.execute(update(Variant).where(Variant.id == b).values(stock=2))
    with pytest.raises(CheckoutError) as exc:
        await shop.service.checkout_cart(shop.show_id, "u", "c1", OK)
    assert exc.value.code == "out_of_stock"
    assert exc.value.fields == {a: "1 available", b: "2 available"}
    assert await shop.order_count() == 0
    assert await shop.sql_stock(a) == 1 and await shop.sql_stock(b) == 2
    assert (await shop.counts(a))["avail"] == 1 and (await shop.counts(a))["held"] == 0
    [payment] = await shop.payments.payments()  # charged once, and refunded whole
    assert payment.state == "succeeded" and payment.refunded_minor == payment.amount_minor > 0


async def test_expired_cart_says_so_and_holds_nothing(shop: Shop) -> None:
    await shop.service.close()  # only the lazy path and the check at checkout apply
    a = shop.v("SNK-42")
    await shop.service.add_to_cart(shop.show_id, "u", a, 2)
    await asyncio.sleep(CART_HOLD_S + 0.2)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.checkout_cart(shop.show_id, "u", "c1", OK)
    assert exc.value.code == "cart_expired" and exc.value.fields == {a: "hold expired"}
    assert await shop.order_count() == 0
    await shop.service.inventory.sweep(a)
    assert await shop.counts(a) == {"avail": 5, "held": 0, "sold": 0, "listed": 5}


async def test_cart_in_payment_cannot_change(shop: Shop) -> None:
    a = shop.v("SNK-42")
    await shop.service.add_to_cart(shop.show_id, "u", a, 1)
    hold = f"c:{shop.show_id}:u"
    await shop.service.inventory.move(a, hold, HoldState.HELD, HoldState.PAYING, 10_000)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.set_cart_quantity(shop.show_id, "u", a, 2)
    assert exc.value.code == "checkout_in_progress"


async def test_empty_cart_checkout_is_refused(shop: Shop) -> None:
    before = await shop.snapshot()
    with pytest.raises(CheckoutError) as exc:
        await shop.service.checkout_cart(shop.show_id, "u", "c1", OK)
    assert exc.value.code == "cart_empty"
    assert await shop.snapshot() == before


async def test_mixed_currency_cart_is_refused_and_keeps_its_holds(shop: Shop) -> None:
    async with shop.sessions.begin() as session:
        product = await catalog.add_product(
            session,
            shop.show_id,
            ProductSpec(name="Import", variants=[VariantSpec("USD-1", 500, "USD", 4)]),
        )
        usd = product.variants[0].id
    eur = shop.v("SNK-42")
    await shop.service.add_to_cart(shop.show_id, "u", eur, 1)
    await shop.service.add_to_cart(shop.show_id, "u", usd, 1)
    with pytest.raises(CheckoutError) as exc:
        await shop.service.checkout_cart(shop.show_id, "u", "c1", OK)
    assert exc.value.code == "mixed_currency"
    assert await shop.order_count() == 0
    # the holds went back to the cart, so the viewer can still change it
    view = await shop.service.remove_from_cart(shop.show_id, "u", usd)
    assert [(line.variant_id, line.quantity) for line in view.lines] == [(eur, 1)]
    assert (await shop.counts(usd))["held"] == 0
    order = await shop.service.checkout_cart(shop.show_id, "u", "c2", OK)
    assert order.status == "paid" and order.total_minor > 0


async def test_the_end_of_a_show_releases_held_carts_not_those_being_paid(shop: Shop) -> None:
    a, b = shop.v("SNK-42"), shop.v("MUG")
    await shop.service.add_to_cart(shop.show_id, "held", a, 2)
    await shop.service.add_to_cart(shop.show_id, "held", b, 1)
    await shop.service.add_to_cart(shop.show_id, "paying", a, 1)
    paying = f"c:{shop.show_id}:paying"  # a checkout in flight when the show ends
    await shop.service.inventory.move(a, paying, HoldState.HELD, HoldState.PAYING, 10_000)
    shop.sink.events.clear()

    assert await shop.service.release_show_carts(shop.show_id) == 1
    assert await shop.counts(a) == {"avail": 4, "held": 1, "sold": 0, "listed": 5}
    assert await shop.counts(b) == {"avail": 20, "held": 0, "sold": 0, "listed": 20}
    assert (await shop.service.view_cart(shop.show_id, "held")).lines == ()
    kept = await shop.service.view_cart(shop.show_id, "paying")
    assert [(line.variant_id, line.quantity) for line in kept.lines] == [(a, 1)]
    assert [(e.buyer_id, e.status, e.reason) for e in shop.sink.of("order")] == [  # type: ignore[attr-defined]
        ("held", "cart_released", "show_ended")
    ]
    assert await shop.service.release_show_carts(shop.show_id) == 0  # nothing left to release
    await shop.assert_invariant(a)


async def test_a_checkout_caught_by_the_end_of_the_show_gives_its_units_back(
    shop: Shop,
) -> None:
    # The show ends while a cart checkout moves its lines to "paying": the end releases the
    # lines still held, the checkout finds them gone. Its moved lines go back to stock
    # (not back to a cart its buyer was told is empty), and it answers show_ended.
    a, b = shop.v("SNK-42"), shop.v("MUG")
    await shop.service.add_to_cart(shop.show_id, "u", a, 1)
    await shop.service.add_to_cart(shop.show_id, "u", b, 2)
    inventory = shop.service.inventory
    real_move = inventory.move
    ended = False

    async def move_then_end(*args: object, **kwargs: object) -> object:
        nonlocal ended
        moved = await real_move(*args, **kwargs)  # type: ignore[arg-type]
        if not ended:  # right after the first line moved: the show ends
            ended = True
            async with shop.sessions.begin() as session:
                await catalog.change_status(session, shop.show_id, ShowStatus.ENDED)
            shop.service.invalidate_show(shop.show_id)
            await shop.service.release_show_carts(shop.show_id)
        return moved

    inventory.move = move_then_end  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(CheckoutError) as refused:
            await shop.service.checkout_cart(shop.show_id, "u", "k-end", OK)
    finally:
        inventory.move = real_move  # type: ignore[method-assign]
    assert refused.value.code == "show_ended"
    for variant, listed in ((a, 5), (b, 20)):
        assert await shop.counts(variant) == {
            "avail": listed,
            "held": 0,
            "sold": 0,
            "listed": listed,
        }
        await shop.assert_invariant(variant)
    assert await shop.order_count() == 0


async def test_a_buy_or_checkout_sent_again_after_the_end_gets_its_order(shop: Shop) -> None:
    # One tap, one order: the page sends a key again until it hears a definitive answer;
    # the show may have ended in between. The order the key made is that answer.
    a = shop.v("MUG")
    bought = await shop.service.buy_now(shop.show_id, "u", a, 1, "k-buy", OK)
    await shop.service.add_to_cart(shop.show_id, "u", a, 2)
    paid = await shop.service.checkout_cart(shop.show_id, "u", "k-cart", OK)
    async with shop.sessions.begin() as session:
        await catalog.change_status(session, shop.show_id, ShowStatus.ENDED)
    shop.service.invalidate_show(shop.show_id)
    again = await shop.service.buy_now(shop.show_id, "u", a, 1, "k-buy", OK)
    assert (again.order_id, again.replayed) == (bought.order_id, True)
    again = await shop.service.checkout_cart(shop.show_id, "u", "k-cart", OK)
    assert (again.order_id, again.replayed) == (paid.order_id, True)
    with pytest.raises(CheckoutError) as refused:  # a new key: the show has ended
        await shop.service.buy_now(shop.show_id, "u", a, 1, "k-new", OK)
    assert refused.value.code == "show_ended"
    assert await shop.order_count() == 2
