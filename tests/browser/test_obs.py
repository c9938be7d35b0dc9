"""The studio's "Publish from OBS (WHIP)" panel in real Chromium against `liveshop demo`:
numbered steps, copy buttons, a stream key made, shown once, copied, revoked, and WHIP
refusing it afterwards."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from benches.processes import spawn, stop
from tests.browser.conftest import DESKTOP, ICE_ADDRESS, PHONE, ROOT, Demo, screenshot

TIMEOUT_MS = 10_000


def _studio(
    browser: Browser,
    contexts: list[BrowserContext],
    demo: Demo,
    token: str | None,
    viewport: dict[str, int] = DESKTOP,
    open_obs: bool = True,
) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo.base_url)
    context.set_default_timeout(TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    page.goto(demo.page("studio", token))
    if open_obs:
        page.get_by_text("Publish from OBS (WHIP)").click()
    return page


def _keys(demo: Demo) -> list[dict[str, object]]:
    resp = httpx.get(
        f"{demo.base_url}/api/shows/{demo.show_id}/stream-keys",
        headers={"Authorization": f"Bearer {demo.host_token}"},
    )
    assert resp.status_code == 200, resp.text
    keys: list[dict[str, object]] = resp.json()["stream_keys"]
    return keys


def _whip(demo: Demo, key: str) -> httpx.Response:
    """A WHIP POST with a dummy offer: refused at auth (401/403), or past it at the SDP."""
    return httpx.post(
        f"{demo.base_url}/whip/{demo.show_id}",
        content=b"v=0\r\n",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
    )


def _clipboard(page: Page) -> str:
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


def test_a_stream_key_is_made_shown_once_copied_and_revoked(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = _studio(browser, contexts, demo, demo.host_token)
    panel = page.locator("#obs")
    steps = panel.locator("ol.obs-steps > li")
    expect(steps).to_have_count(6)
    expect(steps.nth(0)).to_contain_text("Settings → Stream")
    expect(steps.nth(1)).to_contain_text("WHIP")
    expect(steps.nth(4)).to_contain_text("Keyframe interval")
    expect(steps.nth(4)).to_contain_text("1 s or 2 s")
    whip_url = f"{demo.base_url}/whip/{demo.show_id}"
    expect(page.locator("#whip-url")).to_have_text(whip_url)
    expect(panel.locator("#obs-keys")).to_contain_text("No stream key yet.")
    assert "eyJ" not in panel.inner_text()  # the host's own token is no longer offered

    # copy the server URL
    page.get_by_role("button", name="Copy URL").click()
    expect(page.locator("#obs-url-copied")).to_have_text("Copied")
    assert _clipboard(page) == whip_url

    # make a key: shown once, listed
    page.get_by_label("Key label").fill("Studio PC")
    page.get_by_role("button", name="Create stream key").click()
    key_box = page.locator("#obs-key")
    expect(key_box).to_be_visible()
    expect(key_box).to_have_text(re.compile(r"^lsk_[A-Za-z0-9_-]{43}$"))
    key = key_box.inner_text()
    expect(panel.locator("#obs-keys li.obs-key-row")).to_have_count(1)
    expect(panel.locator("#obs-keys")).to_contain_text("Studio PC")
    expect(panel.locator("#obs-keys")).to_contain_text("never used")
    expect(page.locator("#obs-msg")).to_contain_text('Stream key "Studio PC" created')
    page.get_by_role("button", name="Copy key").click()
    expect(page.locator("#obs-key-copied")).to_have_text("Copied")
    assert _clipboard(page) == key
    listed = _keys(demo)
    assert [(k["label"], k["revoked_at"]) for k in listed] == [("Studio PC", None)]
    page.locator("#obs summary").evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "studio_obs")

    # WHIP takes the key: refused only at the dummy SDP, past the auth
    before = _whip(demo, key)
    assert (before.status_code, before.json()["error"]["code"]) == (400, "malformed_sdp")

    # a reload never shows the key again; the list still has it, now used
    page.reload()
    page.get_by_text("Publish from OBS (WHIP)").click()
    expect(panel.locator("#obs-keys")).to_contain_text("Studio PC")
    expect(panel.locator("#obs-keys")).to_contain_text("last used")
    expect(page.locator("#obs-new-key")).to_be_hidden()
    assert key not in page.content()

    # revoke: asks first; Cancel keeps the key
    page.get_by_role("button", name="Revoke Studio PC").click()
    confirm = panel.locator(".obs-confirm")
    expect(confirm).to_contain_text('Revoke "Studio PC"? OBS streaming with it stops at once.')
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert _keys(demo)[0]["revoked_at"] is None
    page.get_by_role("button", name="Revoke Studio PC").click()
    panel.get_by_role("button", name="Yes, revoke").click()
    expect(page.locator("#obs-msg")).to_have_text('Revoked "Studio PC": it can no longer publish.')
    expect(panel.locator("#obs-keys li.obs-key-row")).to_have_count(0)
    expect(panel.locator("#obs-keys")).to_contain_text("1 revoked")
    assert _keys(demo)[0]["revoked_at"] is not None

    # and WHIP refuses it, with its code, before reading the offer
    after = _whip(demo, key)
    assert (after.status_code, after.json()["error"]["code"]) == (401, "key_revoked")


def test_the_obs_panel_without_a_token_is_not_offered(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    # Without a host token the studio shows only its sign-in message (tests/browser/
    # test_studio.py): no OBS steps, no key to make, nothing that scrolls sideways.
    page = _studio(browser, contexts, demo, None, PHONE, open_obs=False)
    expect(page.locator("#signin-msg")).to_contain_text("Open the host link liveshop printed")
    expect(page.get_by_role("button", name="Create stream key")).to_be_hidden()
    expect(page.get_by_text("Publish from OBS (WHIP)")).to_be_hidden()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the studio scrolls sideways on a phone"


def test_an_obs_host_with_a_long_keyframe_interval_is_told_what_to_set(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """An OBS-like publisher (H.264, a keyframe every 4 s, keyframe requests ignored) with
    a stream key: the studio, which publishes nothing itself, says the show is live from a
    stream key, shows the interval the relay measures and what to set in OBS, and why."""
    made = httpx.post(
        f"{demo.base_url}/api/shows/{demo.show_id}/stream-keys",
        json={"label": "OBS long GOP"},
        headers={"Authorization": f"Bearer {demo.host_token}"},
    )
    assert made.status_code == 201, made.text
    page = _studio(browser, contexts, demo, demo.host_token, open_obs=False)
    expect(page.locator("#stream-state")).to_have_text("offline")
    expect(page.locator("#keyframe-advice")).to_be_hidden()
    whip_url, key = made.json()["whip_url"], made.json()["key"]
    # URL, 40 s, a keyframe every 120 frames (4 s), 1.5 Mbit/s, its ICE address, the key
    publish = ["_publish", whip_url, "40", "120", "1500000", ICE_ADDRESS, key]
    publisher = spawn(
        [sys.executable, "-m", "benches.relay", *publish],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert publisher.stdout is not None
        assert publisher.stdout.readline().strip() == "published"
        expect(page.locator("#stream-state")).to_have_text("live", timeout=15_000)
        expect(page.locator("#stream-source")).to_contain_text("stream key (OBS")
        advice = page.locator("#keyframe-advice")
        expect(advice).to_be_visible(timeout=20_000)
        expect(advice).to_contain_text("Keyframe Interval: set 1 s or 2 s")
        expect(advice).to_contain_text("Settings → Output (Output Mode: Advanced) → Streaming")
        expect(advice).to_contain_text("A 1-2 s interval costs about 5-10% more bitrate")
        cell = page.locator("#health div", has_text="Keyframe every").locator("b")
        expect(cell).to_have_text(re.compile(r"^[34]\.\d s$"), timeout=20_000)
        measured = float(cell.inner_text().removesuffix(" s"))
        assert 3.5 <= measured <= 4.6, measured
        expect(advice).to_contain_text(f"only every {measured:.1f} s")
        bitrate = page.locator("#health div", has_text="Bitrate").locator("b")
        expect(bitrate).to_have_text(re.compile(r"^\d+ kbit/s$"))
        page.locator("#h-camera").evaluate("e => e.scrollIntoView({block: 'start'})")
        screenshot(page, "studio_obs_keyframe_advice")
    finally:
        stop(publisher)
