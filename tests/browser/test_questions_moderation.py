"""Questions seen by others only once approved, answers in the viewer's main view, and the
moderator console: lists of muted and banned viewers with undo, confirmations, the
blocked words loaded from the server, and a sign-in message without a valid token."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from core.roles import Role
from tests.browser.conftest import DESKTOP, SECRET_KEY, Demo, open_page, screenshot
from web.auth import TokenIssuer


def viewer_token(demo: Demo, name: str) -> str:
    response = httpx.post(f"{demo.base_url}/api/viewers", json={"name": name}, timeout=5)
    token: str = response.json()["token"]
    return token


def say(page: Page, text: str, button: str, *, taken: bool = False) -> None:
    """Type and send; ``taken``: wait until the page cleared the field (the server took
    it), so that the next ``say`` is not cleared by this one's late reply."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name=button, exact=True).click()
    if taken:
        expect(page.get_by_label("Message")).to_have_value("")


def test_others_see_a_question_once_approved_and_answers_show_in_the_main_view(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    console = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    vera = open_page(browser, contexts, demo.page("watch", viewer_token(demo, "Vera")))
    walt = open_page(browser, contexts, demo.page("watch"))
    expect(walt.locator("#show-status")).not_to_have_text("…")
    say(vera, "Is the wool itchy?", "Ask")
    # the asker sees it waiting, over the video and in the list; the moderators see it
    mine = vera.locator(".qa-mine")
    expect(mine).to_be_visible()
    expect(mine).to_contain_text("Is the wool itchy?")
    expect(mine).to_contain_text("Waiting for a moderator")
    expect(vera.locator("#questions li", has_text="Is the wool itchy?")).to_contain_text(
        "Waiting for a moderator"
    )
    item = console.locator("#queue li", has_text="Is the wool itchy?")
    expect(item.locator(".status", has_text="asked")).to_be_visible()
    screenshot(vera, "viewer_pending_question")
    # nobody else does (it is not on Walt's page at all), even after a reload
    walt.reload()
    expect(walt.locator("#show-status")).not_to_have_text("…")
    walt.get_by_label("Message").fill("sync")  # a round trip: the socket is up and current
    walt.get_by_role("button", name="Send", exact=True).click()
    expect(walt.locator("#chat li", has_text="sync")).to_be_visible()
    expect(walt.locator("#questions li", has_text="Is the wool itchy?")).to_have_count(0)
    # approved: everyone sees it and may upvote it; the console confirms
    item.get_by_role("button", name="Approve").click()
    expect(console.get_by_role("status").filter(has_text="Question approved")).to_be_visible()
    theirs = walt.locator("#questions li", has_text="Is the wool itchy?")
    expect(theirs).to_have_count(1)
    walt.locator("#open-cart").click()  # the list is in the drawer (out of reach while closed)
    expect(theirs.get_by_role("button", name="Upvote: Is the wool itchy?")).to_have_count(1)
    walt.keyboard.press("Escape")
    expect(mine).to_contain_text("Approved")
    # answered: a banner over the video for everyone, "your question" for the asker
    item = console.locator("#queue li", has_text="Is the wool itchy?")
    item.get_by_label("Answer to: Is the wool itchy?").fill("Not at all: it is merino.")
    item.get_by_role("button", name="Answer").click()
    expect(console.get_by_role("status").filter(has_text="Answer sent")).to_be_visible()
    banner = walt.locator(".qa-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Q: Is the wool itchy?")
    expect(banner).to_contain_text("A: Not at all: it is merino.")
    expect(banner).not_to_contain_text("Your question")
    own = vera.locator(".qa-banner")
    expect(own).to_be_visible()
    expect(own).to_contain_text("Your question was answered")
    expect(vera.locator(".qa-mine")).to_be_hidden()
    screenshot(vera, "viewer_answer_banner")
    # the banner goes after a few seconds; the answer stays in the list, after a reload too
    expect(banner).to_be_hidden(timeout=12_000)
    walt.reload()
    answered = walt.locator("#questions li", has_text="Is the wool itchy?")
    expect(answered.locator(".answer")).to_have_text("Answer: Not at all: it is merino.")
    # dismissed: gone from viewers' pages
    say(vera, "Can I return it?", "Ask")
    item = console.locator("#queue li", has_text="Can I return it?")
    item.get_by_role("button", name="Approve").click()
    expect(walt.locator("#questions li", has_text="Can I return it?")).to_have_count(1)
    console.locator("#queue li", has_text="Can I return it?").get_by_role(
        "button", name="Dismiss"
    ).click()
    expect(console.get_by_role("status").filter(has_text="Question dismissed")).to_be_visible()
    expect(walt.locator("#questions li", has_text="Can I return it?")).to_have_count(0)
    expect(vera.locator("#questions li", has_text="Can I return it?")).to_have_count(0)


def test_console_lists_mutes_and_bans_with_undo_and_confirms_every_action(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    console = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    status = console.locator("#console-status")
    # the blocked words: saved, then loaded when a console opens (saving no longer wipes them)
    expect(console.get_by_role("button", name="Save")).to_be_enabled()
    console.get_by_label("Blocked words").fill("spam, Scam ,junk")
    console.get_by_role("button", name="Save").click()
    expect(status).to_have_text("Blocked words saved (3)")
    other = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    expect(other.get_by_label("Blocked words")).to_have_value("junk, scam, spam")
    # a refusal is said in words, and changes nothing
    other.get_by_label("Blocked words").fill("ok, " + "x" * 2100)
    other.get_by_role("button", name="Save").click()
    expect(other.locator("#console-status")).to_have_text(re.compile("^That was not accepted"))
    third = open_page(browser, contexts, demo.page("moderate", demo.moderator_token), DESKTOP)
    expect(third.get_by_label("Blocked words")).to_have_value("junk, scam, spam")
    # mute, slow mode, shadow-ban, ban, from a chat message: each confirmed and listed
    token = viewer_token(demo, "Alice")
    alice = open_page(browser, contexts, demo.page("watch", token))
    say(alice, "Is it washable?", "Ask", taken=True)
    expect(console.locator("#queue li", has_text="Is it washable?")).to_be_visible()
    say(alice, "hello from Alice", "Send", taken=True)
    row = console.locator("#chat li", has_text="hello from Alice")
    row.get_by_role("button", name="Mute 5 min").click()
    expect(status).to_have_text("Muted Alice for 5 min")
    muted = console.locator("#muted li", has_text="Alice")
    expect(muted).to_contain_text(re.compile(r"until \d\d:\d\d \([45] min left\)"))
    row.get_by_role("button", name="Slow 30 s").click()
    expect(status).to_have_text("Slow mode for Alice: one message every 30 s")
    expect(console.locator("#slow-mode li", has_text="Alice")).to_contain_text(
        "one message every 30 s"
    )
    say(alice, "am I muted?", "Send")
    expect(alice.locator("#chat li", has_text="am I muted?")).to_have_count(0)
    row.get_by_role("button", name="Shadow-ban").click()
    expect(status).to_have_text(re.compile("^Shadow-banned Alice"))
    expect(console.locator("#shadow-banned li", has_text="Alice")).to_have_count(1)
    # ban: asks first; cancel changes nothing
    row.get_by_role("button", name="Ban", exact=True).click()
    expect(row).to_contain_text("Ban Alice from this show?")
    row.get_by_role("button", name="Cancel").click()
    expect(console.locator("#banned li", has_text="Alice")).to_have_count(0)
    row.get_by_role("button", name="Ban", exact=True).click()
    row.get_by_role("button", name="Yes, ban Alice").click()
    expect(status).to_have_text("Banned Alice")
    banned = console.locator("#banned li", has_text="Alice")
    expect(banned).to_have_count(1)
    screenshot(console, "console")
    # each undone; unbanned, Alice may join again and her chat reaches the console
    muted.get_by_role("button", name="Unmute Alice").click()
    expect(status).to_have_text("Unmuted Alice")
    expect(console.locator("#muted li", has_text="Alice")).to_have_count(0)
    console.get_by_role("button", name="End slow mode for Alice").click()
    expect(status).to_have_text("Slow mode off for Alice")
    expect(console.locator("#slow-mode li", has_text="Alice")).to_have_count(0)
    banned.get_by_role("button", name="Unban Alice").click()
    expect(status).to_have_text("Unbanned Alice: they can join again")
    expect(console.locator("#banned li", has_text="Alice")).to_have_count(0)
    console.get_by_role("button", name="Unshadow Alice").click()
    expect(status).to_have_text("Alice is no longer shadow-banned")
    expect(console.locator("#shadow-banned li", has_text="Alice")).to_have_count(0)
    alice.reload()
    say(alice, "back again", "Send")
    expect(console.locator("#chat li", has_text="back again")).to_be_visible()


def test_console_without_a_valid_token_asks_to_sign_in(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    forged = TokenIssuer("another-key-that-is-not-liveshops-0123456789", 3600).issue(
        Role.MODERATOR, name="Eve", show_id=demo.show_id
    )
    other_show = TokenIssuer(SECRET_KEY, 3600).issue(
        Role.MODERATOR, name="Mo", show_id="shw_another"
    )
    cases = [
        (None, "no token"),
        (forged, "not valid"),
        (other_show, "not for this show"),
        (viewer_token(demo, "Vic"), "not a moderator's"),
    ]
    for token, why in cases:
        page = open_page(browser, contexts, demo.page("moderate", token), DESKTOP)
        message = page.locator("#signin")
        expect(message).to_be_visible()
        expect(message).to_contain_text(
            "Open the moderator link liveshop printed, or ask the host for one"
        )
        expect(page.locator("#signin-why")).to_contain_text(why)
        expect(page.locator("#console")).to_be_hidden()
        expect(page.get_by_role("button", name="Save")).to_be_hidden()
        if token is None:
            screenshot(page, "console_signin")
