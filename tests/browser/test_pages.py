"""The three pages in real Chromium, against a real `liveshop demo` server."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from core.roles import Role
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    SECRET_KEY,
    Demo,
    open_page,
    screenshot,
    wait_until,
)
from web.auth import TokenIssuer


def test_pin_and_one_tap_buy_update_every_page(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)
    vera = open_page(browser, contexts, demo.page("watch"))
    walt = open_page(browser, contexts, demo.page("watch"))
    studio.get_by_role("button", name="Pin Merino crew sweater").click()
    for viewer in (vera, walt):
        expect(viewer.get_by_role("article", name="Merino crew sweater")).to_be_visible()
    sweater = vera.get_by_role("article", name="Merino crew sweater")
    expect(sweater.locator(".units")).to_have_text("20 left")
    sweater.get_by_role("button", name="Buy now").click()
    expect(sweater.get_by_role("status")).to_have_text(re.compile(r"^Bought! Order ord_"))
    for viewer in (vera, walt):
        expect(
            viewer.get_by_role("article", name="Merino crew sweater").locator(".units")
        ).to_have_text("19 left")
    screenshot(vera, "viewer-phone")
    screenshot(studio, "studio-desktop")


def test_sold_out_offers_notify_me(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)
    studio.get_by_role("button", name="Pin Limited sneaker drop").click()
    buyer = open_page(browser, contexts, demo.page("watch"))
    other = open_page(browser, contexts, demo.page("watch"))
    sneaker = buyer.get_by_role("article", name="Limited sneaker drop")
    expect(sneaker.locator(".units")).to_have_text("3 left")
    for left in (2, 1, 0):
        sneaker.get_by_role("button", name="Buy now").click()
        expect(sneaker.get_by_role("status")).to_have_text(re.compile("^Bought!"))
        expect(sneaker.locator(".units")).to_have_text("Sold out" if left == 0 else f"{left} left")
    theirs = other.get_by_role("article", name="Limited sneaker drop")
    expect(theirs.locator(".units")).to_have_text("Sold out")
    expect(theirs.get_by_role("button", name="Buy now")).to_be_disabled()
    theirs.get_by_role("button", name="Notify me").click()
    expect(theirs.get_by_role("status")).to_have_text("We will tell you when it is back")
    screenshot(other, "viewer-sold-out-phone")


def test_question_goes_to_moderator_and_the_answer_comes_back(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    viewer = open_page(browser, contexts, demo.page("watch"))
    console = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    viewer.get_by_label("Message").fill("Love the colours!")
    viewer.get_by_role("button", name="Send", exact=True).click()
    expect(console.locator("#chat li", has_text="Love the colours!")).to_be_visible()
    viewer.get_by_label("Message").fill("Does the sweater run small?")
    viewer.get_by_role("button", name="Ask").click()
    item = console.locator("#queue li", has_text="Does the sweater run small?")
    expect(item).to_be_visible()
    screenshot(console, "moderator-desktop")
    item.get_by_role("button", name="Approve").click()
    item = console.locator("#queue li", has_text="Does the sweater run small?")
    expect(item.locator(".status", has_text="approved")).to_be_visible()
    item.get_by_label("Answer to: Does the sweater run small?").fill("True to size <b>really</b>")
    item.get_by_role("button", name="Answer").click()
    viewer.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    answer = viewer.locator("#questions li", has_text="Does the sweater run small?")
    expect(answer.locator(".answer")).to_have_text("Answer: True to size <b>really</b>")
    assert answer.locator("b", has_text="really").count() == 0, "user text rendered as HTML"
    screenshot(viewer, "viewer-cart-drawer-phone")


def test_viewer_cannot_reach_host_or_moderator_actions(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    viewer_token = httpx.post(
        f"{demo.base_url}/api/viewers", json={"name": "Mallory"}, timeout=5
    ).json()["token"]
    studio = open_page(browser, contexts, demo.page("studio", viewer_token), DESKTOP)
    # the studio offers a viewer no controls at all, only the way to sign in
    expect(studio.locator("#signin-msg")).to_contain_text("Open the host link liveshop printed")
    expect(studio.get_by_role("button", name="Pin Ceramic pour-over set")).to_have_count(0)
    resp = studio.request.post(
        f"{demo.base_url}/api/shows/{demo.show_id}/end",
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert resp.status == 403
    assert resp.json()["error"]["code"] == "forbidden_role"
    viewer = open_page(browser, contexts, demo.page("watch"))
    expect(viewer.get_by_role("article", name="Ceramic pour-over set")).to_have_count(0)


@pytest.mark.parametrize(
    ("kind", "viewport"),
    [
        ("watch", PHONE),
        ("watch", DESKTOP),
        ("studio", PHONE),
        ("studio", DESKTOP),
        ("moderate", PHONE),
        ("moderate", DESKTOP),
    ],
)
def test_pages_are_readable_and_labelled(
    demo: Demo,
    browser: Browser,
    contexts: list[BrowserContext],
    kind: str,
    viewport: dict[str, int],
) -> None:
    token = {"watch": None, "studio": demo.host_token, "moderate": demo.moderator_token}[kind]
    page = open_page(browser, contexts, demo.page(kind, token), viewport)
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{kind} scrolls sideways at {viewport['width']} px"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('button, input, select')]
        .filter(e => e.offsetParent !== null)
        .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
        .map(e => e.outerHTML)""")
    assert unlabelled == []
    screenshot(page, f"{kind}-{'phone' if viewport is PHONE else 'desktop'}-initial")


def test_host_goes_live_and_viewers_see_moving_video(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    early = open_page(browser, contexts, demo.page("watch"))  # watching before the host
    expect(early.locator("#stream-msg")).to_have_text("Waiting for the host…")
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#stream-state")).to_have_text("live", timeout=20_000)
    late = open_page(browser, contexts, demo.page("watch"), DESKTOP)
    for page in (early, late):
        wait_until(page, "document.getElementById('video').videoWidth > 0", 20)
        first = page.evaluate("document.getElementById('video').currentTime")
        wait_until(page, f"document.getElementById('video').currentTime > {first} + 0.5", 10)
        expect(page.locator("#stream-msg")).to_be_hidden()
    screenshot(late, "viewer-live-desktop")
    screenshot(studio, "studio-live-desktop")
    studio.get_by_role("button", name="Stop").click()
    expect(early.locator("#stream-msg")).to_have_text(
        re.compile("Waiting|Reconnecting|paused"), timeout=15_000
    )


def test_cart_drawer_checkout(demo: Demo, browser: Browser, contexts: list[BrowserContext]) -> None:
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)
    studio.get_by_role("button", name="Pin Ceramic pour-over set").click()
    viewer = open_page(browser, contexts, demo.page("watch"))
    card = viewer.get_by_role("article", name="Ceramic pour-over set")
    card.get_by_role("button", name="Add to cart").click()
    expect(card.get_by_role("status")).to_have_text("Added to your cart")
    card.get_by_role("button", name="Add to cart").click()
    expect(viewer.locator("#cart-count")).to_have_text("2")
    viewer.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    expect(viewer.locator("#cart-lines li")).to_have_count(1)
    line = viewer.locator("#cart-lines li")
    expect(line).to_contain_text("2 \u00d7 Ceramic pour-over set (sand)")
    expect(line).to_contain_text("90.00")
    viewer.get_by_role("button", name="Checkout").click()
    expect(viewer.locator("#cart-result")).to_have_text(re.compile(r"^Order ord_\S+ confirmed$"))
    expect(viewer.locator("#cart-count")).to_have_text("0")


def test_a_page_renews_its_token_and_keeps_its_live_channel(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    ttl_s = 12  # the page renews ahead of expiry; the server ends the socket at expiry
    token = TokenIssuer(SECRET_KEY, 3600).issue(Role.VIEWER, name="Rita", ttl_s=ttl_s)
    started = time.monotonic()
    viewer = open_page(browser, contexts, demo.page("watch", token))
    renewals: list[int] = []
    viewer.on(
        "response",
        lambda r: renewals.append(r.status) if r.url.endswith("/api/tokens/renew") else None,
    )
    viewer.get_by_label("Message").fill("before the token runs out")
    viewer.get_by_role("button", name="Send", exact=True).click()
    expect(viewer.locator("#chat li", has_text="before the token runs out")).to_be_visible()
    viewer.wait_for_timeout(max(0, ttl_s + 3 - (time.monotonic() - started)) * 1000)
    viewer.get_by_label("Message").fill("after it ran out")
    viewer.get_by_role("button", name="Send", exact=True).click()
    expect(viewer.locator("#chat li", has_text="after it ran out")).to_be_visible()
    assert renewals and all(status == 200 for status in renewals)
