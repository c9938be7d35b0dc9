"""The host studio in Chromium (desktop): show controls and the end with its summary,
products and stock edited from the page and kept current by every sale, a labelled deal
form with a running countdown, chat, reactions and every question with an answer box,
stream health and device choice, the secure-context message and the sign-in message."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import DESKTOP, ICE_ADDRESS, Demo, open_page, screenshot

TIMEOUT_MS = 15_000


def _admin(demo: Demo) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.admin_secret}"}


def _token(demo: Demo, role: str, name: str, show_id: str | None = None) -> str:
    body: dict[str, Any] = {"role": role, "name": name}
    if show_id:
        body["show_id"] = show_id
    resp = httpx.post(f"{demo.base_url}/api/tokens", json=body, headers=_admin(demo), timeout=5)
    assert resp.status_code == 201, resp.text
    token: str = resp.json()["token"]
    return token


def _new_show(demo: Demo, title: str) -> tuple[str, str, str]:
    """A scheduled show of its own with one product: (show id, host token, variant id)."""
    resp = httpx.post(
        f"{demo.base_url}/api/shows", json={"title": title}, headers=_admin(demo), timeout=5
    )
    assert resp.status_code == 201, resp.text
    show_id = resp.json()["id"]
    host = _token(demo, "host", "Hana", show_id)
    sku = f"MUG-{uuid.uuid4().hex[:8]}"
    product = {
        "name": "Stoneware mug",
        "variants": [{"sku": sku, "price": {"amount": 1800, "currency": "EUR"}, "stock": 5}],
    }
    resp = httpx.post(
        f"{demo.base_url}/api/shows/{show_id}/products",
        json=product,
        headers={"Authorization": f"Bearer {host}"},
        timeout=5,
    )
    assert resp.status_code == 201, resp.text
    return show_id, host, resp.json()["variants"][0]["id"]


def _buy(demo: Demo, show_id: str, variant_id: str, quantity: int = 1) -> dict[str, Any]:
    viewer = httpx.post(f"{demo.base_url}/api/viewers", json={"name": "Bea"}, timeout=5).json()
    resp = httpx.post(
        f"{demo.base_url}/api/shows/{show_id}/buy",
        json={"variant_id": variant_id, "quantity": quantity, "payment_method": "pm_card_ok"},
        headers={"Authorization": f"Bearer {viewer['token']}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    order: dict[str, Any] = resp.json()
    return order


def _show(demo: Demo, show_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{demo.base_url}/api/shows/{show_id}", timeout=5).json()
    return body


def _studio(browser: Browser, contexts: list[BrowserContext], url: str) -> Page:
    page = open_page(browser, contexts, url, DESKTOP)
    page.context.set_default_timeout(TIMEOUT_MS)
    return page


def _go_live(studio: Page) -> None:
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#stream-state")).to_have_text("live", timeout=20_000)
    expect(studio.locator("#publish-msg")).to_have_text("You are live")


def test_show_controls_and_the_end_with_its_summary(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    show_id, host, variant = _new_show(demo, "Friday pottery")
    studio = _studio(browser, contexts, f"{demo.base_url}/studio/{show_id}#token={host}")
    badge = studio.locator("#show-status")
    expect(badge).to_have_text("Scheduled")
    expect(studio.get_by_role("button", name="End show")).to_be_hidden()
    expect(studio.get_by_label("Title")).to_have_value("Friday pottery")

    studio.get_by_label("Title").fill("Friday pottery, live")
    studio.get_by_label("Starts at").fill("2030-05-01T18:30")
    studio.get_by_role("button", name="Save").click()
    expect(studio.locator("#show-msg")).to_have_text("Saved")
    show = _show(demo, show_id)
    assert show["title"] == "Friday pottery, live"
    assert show["scheduled_at"] is not None and show["scheduled_at"].startswith("2030-05-01T")
    studio.get_by_label("Title").fill("")
    studio.get_by_role("button", name="Save").click()  # the browser's own required check
    assert _show(demo, show_id)["title"] == "Friday pottery, live"

    studio.get_by_role("button", name="Start show").click()
    expect(badge).to_have_text("Live")
    assert _show(demo, show_id)["status"] == "live"
    _go_live(studio)
    _buy(demo, show_id, variant, quantity=2)

    studio.get_by_role("button", name="End show").click()
    dialog = studio.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("End the show for everyone?")
    dialog.get_by_role("button", name="Keep the show live").click()
    expect(dialog).to_be_hidden()
    assert _show(demo, show_id)["status"] == "live"
    expect(badge).to_have_text("Live")

    studio.get_by_role("button", name="End show").click()
    studio.get_by_role("dialog").get_by_role("button", name="End show").click()
    expect(badge).to_have_text("Ended")
    assert _show(demo, show_id)["status"] == "ended"
    expect(studio.locator("#publish-msg")).to_have_text("The show has ended.")
    expect(studio.get_by_text("You are live")).to_have_count(0)
    summary = studio.locator("#summary")
    expect(summary).to_be_visible()

    def cell(label: str) -> Any:
        return summary.locator(".stats div", has_text=label).locator("b")

    expect(cell("Orders")).to_have_text("1")
    expect(cell("Units sold")).to_have_text("2")
    expect(cell("Revenue")).to_contain_text("36.00")
    expect(cell("Peak viewers")).to_have_text("0")
    expect(cell("Answered auto")).to_have_text("0")
    expect(cell("Answered by people")).to_have_text("0")
    expect(cell("Questions waiting")).to_have_text("0")
    expect(summary.locator("#replay")).to_have_text("Replay: coming soon")
    expect(studio.get_by_role("button", name="Go live")).to_be_disabled()
    expect(studio.get_by_role("button", name="End show")).to_be_hidden()
    screenshot(studio, "studio_ended")


def test_products_and_stock_are_edited_and_follow_every_sale(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = _studio(browser, contexts, demo.page("studio", demo.host_token))
    expect(studio.locator("#products li", has_text="Merino crew sweater")).to_be_visible()
    studio.get_by_text("Add a product").click()
    form = studio.locator("#product-form")
    form.get_by_label("Name").fill("Linen apron")
    form.get_by_label("Description").fill("Stonewashed linen, one size.")
    form.get_by_label("Image URL").fill("/static/img/sweater.svg")
    form.get_by_label("Price").fill("24.5x")
    form.get_by_label("SKU").fill("APRON 1")
    form.get_by_label("Attributes").fill("colour=sand")
    form.get_by_label("Stock").fill("4")
    form.get_by_role("button", name="Add product").click()
    msg = studio.locator("#product-msg")
    expect(msg).to_have_text("Price: enter an amount in EUR such as 12.50 (at most 2 decimals).")
    form.get_by_label("Price").fill("24.50")
    form.get_by_role("button", name="Add product").click()
    expect(msg).to_have_text(re.compile(r"^Please check SKU: letters, digits, dots"))
    sku = f"APRON-{uuid.uuid4().hex[:6]}"
    form.get_by_label("SKU").fill(sku)
    form.get_by_role("button", name="Add product").click()
    expect(msg).to_have_text("Added Linen apron")
    apron = studio.locator("#products li", has_text="Linen apron")
    expect(apron.locator(".variant")).to_have_count(1)
    expect(apron.locator(".variant").first).to_contain_text("sand")
    expect(apron.locator(".variant").first).to_contain_text("4 in stock")
    added = next(p for p in _show(demo, demo.show_id)["products"] if p["name"] == "Linen apron")
    assert added["description"] == "Stonewashed linen, one size."
    assert added["variants"][0]["price"] == {"amount": 2450, "currency": "EUR"}

    # a second variant of it, then a duplicate SKU said in words
    apron.get_by_text("Add a variant of Linen apron").click()
    adder = apron.locator("details.add-variant form")
    adder.get_by_label("SKU").fill(sku)
    adder.get_by_label("Attributes").fill("colour=ink")
    adder.get_by_label("Price").fill("26")
    adder.get_by_label("Stock").fill("1")
    adder.get_by_role("button", name="Add variant").click()
    expect(adder.get_by_role("status")).to_have_text(
        "That SKU is used already: choose another one."
    )
    adder.get_by_label("SKU").fill(f"{sku}-INK")
    adder.get_by_role("button", name="Add variant").click()
    expect(apron.locator(".variant")).to_have_count(2)
    ink = apron.locator(".variant", has_text="ink")
    expect(ink).to_contain_text("26.00")

    # set the stock, then sales bring it down to sold out while a form keeps its focus
    ink.get_by_label("Stock").fill("2")
    ink.get_by_role("button", name="Set stock").click()
    expect(ink.get_by_role("status")).to_have_text("Stock set to 2")
    expect(ink.locator(".stock-left")).to_have_text("2 in stock")
    ink.get_by_label("Stock").fill("-1")
    ink.get_by_role("button", name="Set stock").click()
    expect(ink.get_by_role("status")).to_have_text("Stock is a whole number, 0 or more.")
    variant_id = ink.get_attribute("data-variant")
    assert variant_id
    form.get_by_label("Name").fill("half-typed name")
    form.get_by_label("Name").focus()
    _buy(demo, demo.show_id, variant_id)
    expect(ink.locator(".stock-left")).to_have_text("1 in stock")
    _buy(demo, demo.show_id, variant_id)
    expect(ink.locator(".stock-left")).to_have_text("Sold out")
    assert studio.evaluate("document.activeElement.name") == "name"
    expect(form.get_by_label("Name")).to_have_value("half-typed name")
    screenshot(studio, "studio_products")


def test_deal_form_is_labelled_and_a_running_deal_counts_down(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = _studio(browser, contexts, demo.page("studio", demo.host_token))
    row = studio.locator("#products li", has_text="Ceramic pour-over set").locator(".variant")
    for label in ("Deal price", "Units", "Minutes", "Limit per buyer"):
        expect(row.get_by_label(label)).to_be_visible()
    expect(row.get_by_label("Deal price")).to_have_value("36.00")  # 80% of 45.00, major units
    row.get_by_label("Deal price").fill("36.5.0")
    row.get_by_role("button", name="Start deal").click()
    expect(row.get_by_role("status")).to_contain_text("Deal price: enter an amount in EUR")
    row.get_by_label("Deal price").fill("36.50")
    row.get_by_label("Units").fill("5")
    row.get_by_label("Minutes").fill("2")
    row.get_by_label("Limit per buyer").fill("2")
    row.get_by_role("button", name="Start deal").click()
    timer = row.get_by_role("timer")
    expect(timer).to_have_text(re.compile(r"^Deal €36\.50 · 5 of 5 left · ends in [12]:\d\d$"))
    expect(row.get_by_label("Units")).to_be_hidden()
    deals = httpx.get(f"{demo.base_url}/api/shows/{demo.show_id}/deals", timeout=5).json()
    deal = next(d for d in deals["deals"] if d["variant_id"] == row.get_attribute("data-variant"))
    assert deal["price"] == {"amount": 3650, "currency": "EUR"} and deal["per_buyer_limit"] == 2
    first = timer.inner_text()
    studio.wait_for_timeout(2100)  # (the page redraws the countdown every second)
    assert timer.inner_text() != first, "the countdown does not move"

    variant_id = row.get_attribute("data-variant")
    assert variant_id
    order = _buy(demo, demo.show_id, variant_id, quantity=2)
    assert order["total"] == {"amount": 7300, "currency": "EUR"}
    expect(timer).to_have_text(re.compile(r"^Deal €36\.50 · 3 of 5 left · ends in"))
    screenshot(studio, "studio_deal")
    row.get_by_role("button", name="Stop deal").click()
    expect(row.get_by_role("button", name="Start deal")).to_be_visible()
    expect(timer).to_be_hidden()


def test_host_sees_chat_reactions_questions_health_and_answers(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = _studio(browser, contexts, demo.page("studio", demo.host_token))
    viewer = open_page(browser, contexts, demo.page("watch"))
    expect(viewer.get_by_label("Message")).to_be_visible()
    viewer.get_by_label("Message").fill("Love the colours!")
    viewer.get_by_role("button", name="Send", exact=True).click()
    expect(studio.locator("#chat li", has_text="Love the colours!")).to_be_visible()
    for _ in range(5):
        viewer.locator("#react").click()
    expect(studio.locator("#reactions")).to_have_text("❤ 5")
    studio.wait_for_timeout(700)  # (the shared snapshot is cached for half a second)
    studio.reload()  # the show's running total, not a count since the page opened
    expect(studio.locator("#reactions")).to_have_text("❤ 5")
    viewer.get_by_label("Message").fill("Is the sweater itchy?")
    viewer.get_by_role("button", name="Ask").click()
    question = studio.locator("#questions li", has_text="Is the sweater itchy?")
    expect(question).to_be_visible()
    expect(question.locator(".status")).to_have_text("asked")  # not approved by anyone
    studio.get_by_label("Message").fill("Welcome, everyone!")
    studio.get_by_role("button", name="Send", exact=True).click()
    expect(viewer.locator("#chat li", has_text="Welcome, everyone!")).to_be_visible()
    expect(studio.locator("#chat li", has_text="Welcome, everyone!")).to_contain_text("(host)")

    _go_live(studio)
    health = studio.locator("#health")

    def cell(label: str) -> Any:
        return health.locator("div", has_text=label).locator("b")

    expect(cell("Bitrate")).to_have_text(re.compile(r"^[1-9]\d* kbit/s$"), timeout=10_000)
    expect(cell("Resolution")).to_have_text(re.compile(r"^\d{3,4}\u00d7\d{3,4}$"))
    expect(cell("Frame rate")).to_have_text(re.compile(r"^\d+ fps$"))
    expect(cell("Viewers")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=10_000)
    screenshot(studio, "studio_live")

    question.get_by_label("Answer to: Is the sweater itchy?").fill("Not at all: it is merino.")
    question.get_by_role("button", name="Answer").click()
    expect(question.locator(".status")).to_have_text("answered")
    expect(question.locator(".answer")).to_have_text("Answered: Not at all: it is merino.")
    expect(question.get_by_role("button", name="Answer")).to_be_hidden()
    expect(cell("Keyframe every")).to_have_text("on request")  # (a browser's, not set)
    studio.get_by_role("button", name="Stop").click()
    # the server's word once this tab stopped: paused (viewers stay, and play on return)
    expect(studio.locator("#stream-state")).to_have_text("paused")
    expect(studio.locator("#stream-source")).to_be_hidden()


def test_camera_and_microphone_choice(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = _studio(browser, contexts, demo.page("studio", demo.host_token))
    cameras, mics = studio.locator("#camera-select"), studio.locator("#mic-select")
    assert studio.evaluate(
        "document.getElementById('mic-select').labels[0].textContent"
    ).startswith("Microphone")
    expect(cameras.locator("option").first).to_have_text(re.compile(r"\S"))
    expect(mics.locator("option")).not_to_have_count(0)
    _go_live(studio)
    options = mics.locator("option")
    assert options.count() >= 2, "Chromium's fake devices offer several microphones"
    chosen = mics.input_value()
    other = next(
        v
        for v in (options.nth(i).get_attribute("value") for i in range(options.count()))
        if v != chosen
    )
    assert other is not None
    mics.select_option(other)
    expect(studio.locator("#publish-msg")).to_have_text("Switched microphone while live")
    expect(mics).to_have_value(other)
    expect(studio.locator("#stream-state")).to_have_text("live")
    studio.get_by_role("button", name="Stop").click()
    # the server's word once this tab stopped: paused (viewers stay, and play on return)
    expect(studio.locator("#stream-state")).to_have_text("paused")
    expect(studio.locator("#stream-source")).to_be_hidden()


def test_insecure_address_says_what_to_do(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """http:// on an address that is not localhost is no secure context: no camera API."""
    address = ICE_ADDRESS if ICE_ADDRESS not in ("127.0.0.1", "localhost") else "10.77.0.1"
    port = demo.base_url.rsplit(":", 1)[1]
    insecure = f"http://{address}:{port}"
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    contexts.append(context)

    def relay(route: Route) -> None:  # served by the demo as if it listened there too
        route.fulfill(response=route.fetch(url=route.request.url.replace(insecure, demo.base_url)))

    context.route(f"{insecure}/**", relay)
    page = context.new_page()
    page.goto(f"{insecure}/studio/{demo.show_id}#token={demo.host_token}")
    assert page.evaluate("window.isSecureContext") is False
    expect(page.locator("#camera-msg")).to_have_text(
        "Your browser only allows the camera on https:// or localhost. Open this studio over "
        "HTTPS (see README: Serving over TLS), or publish from OBS (below)."
    )
    expect(page.get_by_text("Cannot read properties of undefined")).to_have_count(0)
    expect(page.get_by_role("button", name="Go live")).to_be_disabled()
    expect(page.locator("#products li", has_text="Merino crew sweater")).to_be_visible()
    screenshot(page, "studio_insecure")


def test_studio_without_a_valid_host_token_asks_to_sign_in(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    viewer = httpx.post(f"{demo.base_url}/api/viewers", json={"name": "Mallory"}, timeout=5)
    other_show, other_host, _ = _new_show(demo, "Someone else's show")
    cases = {
        "no token": demo.page("studio"),
        "viewer": demo.page("studio", viewer.json()["token"]),
        "moderator": demo.page("studio", demo.moderator_token),
        "other show": demo.page("studio", other_host),
        "forged": demo.page("studio", demo.host_token[:-6] + "AAAAAA"),
    }
    assert other_show != demo.show_id
    for name, url in cases.items():
        page = _studio(browser, contexts, url)
        expect(page.locator("#signin"), name).to_be_visible()
        expect(page.locator("#signin-msg"), name).to_contain_text(
            "Open the host link liveshop printed"
        )
        expect(page.get_by_role("button", name="Go live"), name).to_be_hidden()
        expect(page.get_by_role("button", name=re.compile("^Pin ")), name).to_have_count(0)
        if name == "no token":
            screenshot(page, "studio_signin")
    page = _studio(browser, contexts, demo.page("studio", demo.host_token))
    expect(page.get_by_role("button", name="Go live")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
