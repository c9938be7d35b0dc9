"""Automatic answers on the pages: the viewer gets an answer at once, the moderator console
lists it with its source and can retract it; a question the data does not settle comes
to the console with a drafted reply that one click sends; the time to answer is shown."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.conftest import DESKTOP, Demo, open_page, screenshot
from tests.browser.test_questions_moderation import say, viewer_token


def _teach(demo: Demo) -> None:
    """Facts for the sweater and the show's return policy, through the API."""
    auth = {"Authorization": f"Bearer {demo.host_token}"}
    show = httpx.get(f"{demo.base_url}/api/shows/{demo.show_id}", timeout=5).json()
    sweater = next(p for p in show["products"] if p["name"] == "Merino crew sweater")
    facts = {"material": "100% superfine merino wool", "care": "Machine wash on the wool cycle"}
    resp = httpx.put(
        f"{demo.base_url}/api/products/{sweater['id']}/facts",
        json={"facts": facts},
        headers=auth,
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    resp = httpx.put(
        f"{demo.base_url}/api/shows/{demo.show_id}/policies",
        json={"policies": {"returns": "30 days, free within the EU"}},
        headers=auth,
        timeout=5,
    )
    assert resp.status_code == 200, resp.text


def _cell(page: Page, label: str) -> Locator:
    """The figure of the console's "Time to answer" cell labelled ``label``."""
    return (
        page.locator("#answer-times div")
        .filter(has=page.get_by_text(label, exact=True))
        .locator("b")
    )


def test_automatic_answers_and_drafted_replies_in_the_console(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    _teach(demo)
    console = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    status = console.locator("#console-status")
    vera = open_page(browser, contexts, demo.page("watch", viewer_token(demo, "Vera")))
    expect(vera.locator("#show-status")).not_to_have_text("…")

    # settled by the product's facts: answered at once, on the viewer's page and in the console
    say(vera, "what is the sweater made of?", "Ask", taken=True)
    banner = vera.locator(".qa-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("100% superfine merino wool")
    expect(banner).to_contain_text("Automatic answer, from product facts")
    expect(vera.locator("#chat li", has_text="Answered at once")).to_have_count(1)
    screenshot(vera, "viewer_automatic_answer")
    auto = console.locator("#automatic li", has_text="what is the sweater made of?")
    expect(auto).to_contain_text("Merino crew sweater: material: 100% superfine merino wool.")
    expect(auto.locator(".status")).to_have_text("from product facts")
    expect(console.locator("#answer-times")).to_contain_text(
        re.compile(r"\d+ s\s*Automatic: median")
    )
    expect(_cell(console, "Answered automatically")).to_have_text("1")
    expect(_cell(console, "Answered by people")).to_have_text("0")
    screenshot(console, "console_automatic_answer")

    # retracted: the question is back in the queue, unanswered
    auto.get_by_role("button", name="Retract").click()
    expect(status).to_have_text("Answer retracted: the question is back in the queue")
    queued = console.locator("#queue li", has_text="what is the sweater made of?")
    expect(queued).to_be_visible()
    expect(queued.locator(".waiting")).to_contain_text(re.compile(r"waiting \d+ s"))
    expect(console.locator("#automatic li", has_text="what is the sweater made of?")).to_have_count(
        0
    )

    # not settled by the data: in the queue with a drafted reply, sent with one click
    say(vera, "does the merino sweater feel soft on the skin?", "Ask", taken=True)
    item = console.locator("#queue li", has_text="does the merino sweater feel soft on the skin?")
    draft = item.locator(".draft", has_text="100% superfine merino wool")
    expect(draft).to_be_visible()
    expect(draft).to_contain_text("from product facts")
    screenshot(console, "console_drafted_reply")
    draft.get_by_role("button", name="Send").click()
    expect(status).to_have_text("Answer sent")
    expect(vera.locator("#questions li", has_text="feel soft on the skin")).to_contain_text(
        "Merino crew sweater: material: 100% superfine merino wool."
    )
    expect(_cell(console, "Answered automatically")).to_have_text("0")  # (retracted)
    expect(_cell(console, "Answered by people")).to_have_text("1")
    # the host's studio has the same figures, automatic and people's apart
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)

    def figure(label: str) -> Locator:
        return studio.locator("#stats div").filter(has=studio.get_by_text(label, exact=True))

    expect(figure("Median auto").locator("b")).to_have_text("\u2013")
    expect(figure("Median people").locator("b")).to_have_text(re.compile(r"^\d+ s$"))
    expect(figure("Answered by people").locator("b")).to_have_text("1")
    expect(figure("Questions waiting").locator("b")).to_have_text("1")
    waiting = studio.locator("#questions li", has_text="what is the sweater made of?")
    expect(waiting.locator(".waiting")).to_have_text(re.compile(r"^waiting \d+ s$"))

    # the host writes facts and policies in the studio; questions about them are answered
    pourover = studio.locator("#products li", has_text="Ceramic pour-over set")
    pourover.get_by_text("Facts of Ceramic pour-over set (for automatic answers)").click()
    facts = pourover.get_by_label("Facts of Ceramic pour-over set")
    facts.fill("care dishwasher safe")
    pourover.get_by_role("button", name="Save facts").click()
    expect(pourover.locator(".facts .form-msg")).to_have_text(re.compile("^Facts: write each"))
    facts.fill("care: Dishwasher safe\nmaterial: Stoneware")
    pourover.get_by_role("button", name="Save facts").click()
    expect(pourover.locator(".facts .form-msg")).to_have_text(re.compile(r"^Facts saved \(2\)"))
    studio.get_by_text("Policies (for automatic answers)").click()
    expect(studio.locator("#policies")).to_have_value("returns: 30 days, free within the EU")
    studio.locator("#policies").fill("shipping: Ships in 2 days from Amsterdam")
    studio.get_by_role("button", name="Save policies").click()
    expect(studio.locator("#policies-msg")).to_have_text("Policies saved (1)")
    screenshot(studio, "studio_facts_and_policies")
    walt = open_page(browser, contexts, demo.page("watch", viewer_token(demo, "Walt")))
    expect(walt.locator("#show-status")).not_to_have_text("…")
    say(walt, "is the pour over set dishwasher safe?", "Ask", taken=True)
    expect(walt.locator("#questions li", has_text="dishwasher safe?")).to_contain_text(
        "Ceramic pour-over set: care: Dishwasher safe."
    )
    say(walt, "how long does shipping take?", "Ask", taken=True)
    expect(walt.locator("#questions li", has_text="shipping take")).to_contain_text(
        "Shipping: Ships in 2 days from Amsterdam"
    )
