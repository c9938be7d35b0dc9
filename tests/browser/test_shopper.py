"""What shoppers expect (issue 14, part B), in real Chromium on a phone: a receipt and "My
orders", a product sheet, a cart that is right after a reload with hold timers and
quantities, back-in-stock notices, hearts with a running total, polls that remember your
vote, human messages, and money in each currency's own minor unit."""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from websockets.sync.client import ClientConnection, connect

from core.roles import Role
from tests.browser.conftest import PHONE, SECRET_KEY, Demo, screenshot
from web.auth import TokenIssuer

TIMEOUT_MS = 10_000
TOKENS = TokenIssuer(SECRET_KEY, 3600)


@dataclass
class Show:
    id: str
    title: str
    products: list[dict[str, Any]]  # as the API answered them (ids, variants)


def admin(demo: Demo) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.admin_secret}"}


def make_show(demo: Demo, title: str, products: list[dict[str, Any]]) -> Show:
    """A live show of its own (a clean viewer count, stock nobody else buys)."""
    made = httpx.post(f"{demo.base_url}/api/shows", json={"title": title}, headers=admin(demo))
    show = made.json()
    tag = secrets.token_hex(3).upper()
    added = []
    for n, product in enumerate(products):
        for variant in product["variants"]:
            variant["sku"] = f"{variant['sku']}-{n}-{tag}"
        resp = httpx.post(
            f"{demo.base_url}/api/shows/{show['id']}/products", json=product, headers=admin(demo)
        )
        assert resp.status_code == 201, resp.text
        added.append(resp.json())
    started = httpx.post(f"{demo.base_url}/api/shows/{show['id']}/start", headers=admin(demo))
    assert started.status_code == 200, started.text
    return Show(show["id"], title, added)


def tee(
    name: str, sizes: dict[str, int], price: int = 2500, currency: str = "EUR"
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name}: organic cotton, cut a little long.",
        "image_url": "/static/img/sweater.svg",
        "variants": [
            {
                "sku": f"T-{size}",
                "price": {"amount": price, "currency": currency},
                "stock": stock,
                "attributes": {"size": size},
            }
            for size, stock in sizes.items()
        ],
    }


class Staff:
    """A host or moderator on the live socket (from the test, not a page)."""

    _refs = itertools.count(1)

    def __init__(self, demo: Demo, show_id: str, role: Role) -> None:
        token = TOKENS.issue(role, name=f"Test {role.value}", show_id=show_id)
        url = demo.base_url.replace("http://", "ws://") + f"/live/{show_id}"
        self.ws: ClientConnection = connect(url, subprotocols=["liveshop", f"token.{token}"])  # type: ignore[list-item]

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        ref = f"t{next(self._refs)}"
        self.ws.send(json.dumps({"type": kind, "ref": ref, **fields}))
        while True:
            message = json.loads(self.ws.recv(timeout=10))
            if message.get("ref") == ref:
                assert message["type"] == "ok", message
                return message  # type: ignore[no-any-return]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def staff(demo: Demo) -> Iterator[list[Staff]]:
    opened: list[Staff] = []
    yield opened
    for one in opened:
        one.close()


def host_of(demo: Demo, show: Show, staff: list[Staff], role: Role = Role.HOST) -> Staff:
    one = Staff(demo, show.id, role)
    staff.append(one)
    return one


def viewer_token(name: str) -> tuple[str, str]:
    user_id = f"u_{name.lower()}_{secrets.token_hex(3)}"
    return TOKENS.issue(Role.VIEWER, name=name, user_id=user_id), user_id


def phone(
    browser: Browser,
    contexts: list[BrowserContext],
    url: str,
    *,
    reduced_motion: str = "no-preference",
) -> Page:
    context = browser.new_context(
        viewport=PHONE,  # type: ignore[arg-type]
        locale="en-US",
        reduced_motion=reduced_motion,  # type: ignore[arg-type]
    )
    context.set_default_timeout(TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    page.goto(url)
    return page


def watch(demo: Demo, show: Show, token: str | None = None) -> str:
    url = f"{demo.base_url}/watch/{show.id}"
    return f"{url}#token={token}" if token else url


def test_a_buy_gives_a_receipt_and_my_orders_lists_every_show(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    first = make_show(demo, "Linen Sunday", [tee("Linen shirt", {"S": 5, "M": 5})])
    second = make_show(demo, "Tokyo night", [tee("Tea bowl", {"one": 4}, 1200, "JPY")])
    for show in (first, second):
        host_of(demo, show, staff).request("pin", product_id=show.products[0]["id"])
    token, _ = viewer_token("Rosa")
    page = phone(browser, contexts, watch(demo, first, token))
    card = page.get_by_role("article", name="Linen shirt")
    card.get_by_role("button", name="Buy now").click()
    expect(card.locator(".result")).to_have_text(re.compile(r"^Bought! Order ord_\S+"))
    order_id = re.search(r"ord_\S+", card.locator(".result").inner_text())
    assert order_id is not None
    card.get_by_role("button", name="Receipt").click()
    receipt = page.get_by_role("dialog", name="Receipt")
    expect(receipt).to_be_visible()
    expect(receipt).to_contain_text(f"Order {order_id.group(0)}")
    expect(receipt.locator(".order-status")).to_have_text("Paid")
    expect(receipt.locator(".receipt-lines li")).to_have_text(
        [re.compile(r"1 \u00d7 Linen shirt \(S\)\s*€25\.00")]
    )
    expect(receipt.locator(".total")).to_have_text("Total €25.00")
    expect(receipt).to_contain_text("Paid with: Test card")
    expect(receipt).to_contain_text("We'll email you when it ships.")
    expect(receipt).to_contain_text("money goes back")
    screenshot(page, "receipt")
    receipt.get_by_role("button", name="Close").click()
    expect(receipt).to_be_hidden()

    # a cart checkout opens its receipt at once
    card.locator("select").select_option(label="M")
    card.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-count")).to_have_text("1")
    page.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    page.get_by_role("button", name="Checkout").click()
    receipt = page.get_by_role("dialog", name="Receipt")
    expect(receipt.locator(".receipt-lines li")).to_have_text(
        [re.compile(r"1 \u00d7 Linen shirt \(M\)")]
    )
    receipt.get_by_role("button", name="Close").click()

    page.goto(watch(demo, second, token))
    page.reload()
    bowl = page.get_by_role("article", name="Tea bowl")
    bowl.get_by_role("button", name="Buy now").click()
    expect(bowl.locator(".result")).to_have_text(re.compile(r"^Bought!"))
    page.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    page.get_by_role("button", name="My orders").click()
    orders = page.get_by_role("dialog", name="My orders")
    items = orders.locator(".orders-list > li")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("Tokyo night")
    expect(items.nth(0).locator(".order-total")).to_have_text("¥1,200")
    expect(items.nth(1)).to_contain_text("Linen Sunday")
    expect(items.nth(1)).to_contain_text("1 \u00d7 Linen shirt (M)")
    expect(items.nth(2)).to_contain_text(order_id.group(0))
    expect(items.nth(2)).to_contain_text("Paid")
    screenshot(page, "my_orders")

    # another viewer sees none of them
    other = phone(browser, contexts, watch(demo, first))
    other.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    other.get_by_role("button", name="My orders").click()
    theirs = other.get_by_role("dialog", name="My orders")
    expect(theirs.get_by_role("status")).to_have_text("No orders yet. What you buy shows up here.")
    expect(theirs.locator(".orders-list > li")).to_have_count(0)


def test_tapping_a_card_opens_its_details_with_variants_and_stock(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(demo, "Sheet show", [tee("Field jacket", {"S": 3, "M": 0, "L": 2})])
    host_of(demo, show, staff).request("pin", product_id=show.products[0]["id"])
    page = phone(browser, contexts, watch(demo, show))
    card = page.get_by_role("article", name="Field jacket")
    card.get_by_role("button", name="Details of Field jacket").first.click()
    sheet = page.get_by_role("dialog", name="Field jacket details")
    expect(sheet).to_be_visible()
    expect(sheet.locator(".description")).to_have_text(
        "Field jacket: organic cotton, cut a little long."
    )
    expect(sheet.locator(".gallery img")).to_have_count(1)
    rows = sheet.locator(".variant")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("S")
    expect(rows.nth(0)).to_contain_text("€25.00")
    expect(rows.nth(0).locator(".stock")).to_have_text("3 left")
    expect(rows.nth(1).locator(".stock")).to_have_text("Sold out")
    sheet.get_by_role("radio", name="M").check()
    expect(sheet.get_by_role("button", name="Buy now")).to_be_disabled()
    sheet.get_by_role("radio", name="L").check()
    screenshot(page, "product_sheet")
    sheet.get_by_role("button", name="Buy now").click()
    expect(sheet.get_by_role("status")).to_have_text(re.compile(r"^Bought! Order ord_"))
    expect(rows.nth(2).locator(".stock")).to_have_text("1 left")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    expect(card.locator(".units")).to_have_text("1 left")  # the card shows the L bought
    card.locator("h3").click()
    sheet = page.get_by_role("dialog", name="Field jacket details")
    expect(sheet).to_be_visible()
    sheet.get_by_role("button", name="Close product details").click()
    expect(sheet).to_be_hidden()


def test_the_cart_survives_a_reload_with_hold_timers_and_quantities(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(demo, "Cart show", [tee("Wool beanie", {"one": 4})])
    host = host_of(demo, show, staff)
    host.request("pin", product_id=show.products[0]["id"])
    token, _ = viewer_token("Cara")
    page = phone(browser, contexts, watch(demo, show, token))
    card = page.get_by_role("article", name="Wool beanie")
    card.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-count")).to_have_text("1")
    page.reload()
    expect(page.locator("#cart-count")).to_have_text("1")  # before the drawer is opened
    page.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    line = page.locator("#cart-lines li")
    expect(line).to_have_count(1)
    hold = line.locator(".hold")
    expect(hold).to_have_text(re.compile(r"^Held for you \d+:\d\d$"))
    before = hold.inner_text()
    expect(hold).not_to_have_text(before, timeout=4000)  # it counts down
    line.get_by_role("button", name="One more Wool beanie (one)").click()
    expect(page.get_by_label("Quantity of Wool beanie (one)")).to_have_value("2")
    expect(page.locator("#cart-count")).to_have_text("2")
    expect(line).to_contain_text("€50.00")
    quantity = page.get_by_label("Quantity of Wool beanie (one)")
    quantity.fill("9")
    quantity.dispatch_event("change")
    expect(page.locator("#cart-result")).to_have_text("Only 2 more available: choose fewer.")
    expect(quantity).to_have_value("2")  # what the server holds
    screenshot(page, "cart")
    line.get_by_role("button", name="One fewer Wool beanie (one)").click()
    expect(page.locator("#cart-count")).to_have_text("1")

    # a second tab of the same viewer is the same viewer
    second = page.context.new_page()
    second.goto(watch(demo, show, token))
    expect(second.locator("#viewers")).to_have_text("1 watching")
    page.wait_for_timeout(1500)
    assert host.request("stats")["viewers_now"] == 1
    other = phone(browser, contexts, watch(demo, show))
    expect(other.locator("#viewers")).to_have_text("2 watching")
    expect(page.locator("#viewers")).to_have_text("2 watching")


def test_notify_me_ends_in_a_back_in_stock_notice(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(demo, "Restock show", [tee("Rain jacket", {"one": 1})])
    host_of(demo, show, staff).request("pin", product_id=show.products[0]["id"])
    buyer = phone(browser, contexts, watch(demo, show))
    waiting = phone(browser, contexts, watch(demo, show))
    buyer.get_by_role("article", name="Rain jacket").get_by_role("button", name="Buy now").click()
    card = waiting.get_by_role("article", name="Rain jacket")
    expect(card.locator(".units")).to_have_text("Sold out")
    card.get_by_role("button", name="Notify me").click()
    expect(card.locator(".result")).to_have_text("We will tell you when it is back")
    variant = show.products[0]["variants"][0]["id"]
    resp = httpx.put(
        f"{demo.base_url}/api/variants/{variant}/stock", json={"stock": 2}, headers=admin(demo)
    )
    assert resp.status_code == 200, resp.text
    toast = waiting.locator("#toasts .toast")
    expect(toast).to_contain_text("Rain jacket (one) is back in stock (2 left)")
    expect(card.locator(".result")).to_have_text("Back in stock (2 left): buy it now")
    expect(card.locator(".units")).to_have_text("2 left")
    expect(card.get_by_role("button", name="Buy now")).to_be_enabled()
    screenshot(waiting, "back_in_stock")
    expect(buyer.locator("#toasts .toast")).to_have_count(0)  # only who asked is told


def test_hearts_float_and_the_total_counts_every_tap(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    show = make_show(demo, "Hearts show", [tee("Scarf", {"one": 5})])
    token, _ = viewer_token("Hal")
    page = phone(browser, contexts, watch(demo, show, token))
    expect(page.locator("#show-status")).to_have_text("live")
    heart = page.get_by_role("button", name="Send a heart")
    for _ in range(5):
        heart.click()
    expect(page.locator("#reactions")).to_have_text("❤ 5")
    expect(page.locator("#hearts .heart").first).to_be_attached()
    screenshot(page, "hearts")
    page.wait_for_timeout(700)  # (the snapshot is cached for half a second)
    page.reload()
    expect(page.locator("#reactions")).to_have_text("❤ 5")
    still = phone(browser, contexts, watch(demo, show), reduced_motion="reduce")
    expect(still.locator("#reactions")).to_have_text("❤ 5")
    still.get_by_role("button", name="Send a heart").click()
    expect(still.locator("#reactions")).to_have_text("❤ 6")
    assert still.locator("#hearts .heart").count() == 0, "hearts move for a reduced-motion viewer"


def test_a_poll_shows_your_vote_refuses_a_second_and_keeps_it_after_a_reload(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(demo, "Poll show", [tee("Socks", {"one": 5})])
    host_of(demo, show, staff).request(
        "open_poll", question="Next colour?", options=["red", "blue"]
    )
    token, _ = viewer_token("Pia")
    page = phone(browser, contexts, watch(demo, show, token))
    page.locator("#poll-toggle").click()  # on a phone the poll is a chip until tapped
    poll = page.get_by_role("group", name="Poll")
    poll.get_by_role("button", name=re.compile(r"^blue")).click()
    expect(poll.get_by_role("status")).to_have_text("You voted blue")
    expect(poll.get_by_role("button", name=re.compile(r"^blue"))).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(poll.get_by_role("button", name=re.compile(r"^blue"))).to_have_text("blue (1)")
    poll.get_by_role("button", name=re.compile(r"^red")).click()
    expect(poll.get_by_role("status")).to_have_text("You voted blue. You already voted: blue.")
    expect(poll.get_by_role("button", name=re.compile(r"^red"))).to_have_text("red (0)")
    screenshot(page, "poll_voted")
    page.reload()
    page.locator("#poll-toggle").click()
    poll = page.get_by_role("group", name="Poll")
    expect(poll.get_by_role("status")).to_have_text("You voted blue")
    expect(poll.get_by_role("button", name=re.compile(r"^blue"))).to_have_class(
        re.compile("chosen")
    )


def test_refusals_read_as_people_talk_and_stale_answers_clear(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(demo, "Deal show", [tee("Cap", {"one": 10})])
    host = host_of(demo, show, staff)
    host.request("pin", product_id=show.products[0]["id"])
    variant = show.products[0]["variants"][0]["id"]
    host.request("start_deal", variant_id=variant, price_minor=900, units=5, duration_s=300)
    token, user_id = viewer_token("Max")
    page = phone(browser, contexts, watch(demo, show, token))
    card = page.get_by_role("article", name="Cap")
    card.get_by_role("button", name="Buy now").click()
    expect(card.locator(".result")).to_have_text(re.compile("^Bought!"))
    card.get_by_role("button", name="Buy now").click()
    expect(card.locator(".result")).to_have_text("You already have the most this deal allows.")
    # a stale answer goes away by itself
    expect(card.locator(".result")).to_have_text("", timeout=12_000)
    moderator = host_of(demo, show, staff, Role.MODERATOR)
    moderator.request("mute", user_id=user_id, seconds=90)
    page.get_by_label("Message").fill("hello?")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(
        page.locator(
            "#chat li", has_text=re.compile(r"You are muted: you can chat again in (89|90) s")
        )
    ).to_be_visible()


def test_money_is_shown_in_each_currencys_minor_unit(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], staff: list[Staff]
) -> None:
    show = make_show(
        demo,
        "Money show",
        [tee("Tea bowl", {"one": 3}, 1200, "JPY"), tee("Dates box", {"one": 3}, 1250, "KWD")],
    )
    host = host_of(demo, show, staff)
    for product in show.products:
        host.request("pin", product_id=product["id"])
    page = phone(browser, contexts, watch(demo, show))
    expect(page.get_by_role("article", name="Tea bowl").locator(".price")).to_have_text("¥1,200")
    dates = page.get_by_role("article", name="Dates box")
    expect(dates.locator(".price")).to_have_text(re.compile(r"^KWD\s1\.250$"))
    dates.get_by_role("button", name="Add to cart").click()
    page.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    expect(page.locator("#cart-total")).to_have_text(re.compile(r"^Total KWD\s1\.250$"))
