"""The viewer on small screens and with a keyboard (issue 14, "Small screens and keyboards").

The overlays (top bar, chat, poll, cards, chat form, view tools) must leave at least half
of the video visible at 320, 390 and 1280 px with a card pinned and a poll open, and must
not cover each other; the closed cart drawer is out of the Tab order (the page never
scrolls sideways), opening it moves focus into it, Esc closes it and gives focus back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.browser.conftest import DESKTOP, PHONE, Demo, open_page, screenshot

TIMEOUT_MS = 10_000

# The boxes a viewer sees over the video; other parts may add `.overlay-panel`s.
OVERLAYS = {
    "top bar": ".viewer .top",
    "view tools": "#view-tools",
    "chat": "#chat",
    "poll": "#poll-panel",
    "cards": "#cards",
    "form": "#chat-form",
}

# Union of the overlays' rectangles clipped to the video's, by coordinate compression
# (a handful of boxes), and every pair of overlays that intersect by more than a pixel.
MEASURE = """(selectors) => {
    const box = (e) => {
        const r = e.getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom];
    };
    const shown = (e) => e && e.checkVisibility() && e.getBoundingClientRect().width > 0
        && e.getBoundingClientRect().height > 0;
    const video = box(document.getElementById('video'));
    const named = Object.entries(selectors)
        .map(([name, sel]) => [name, document.querySelector(sel)]);
    for (const extra of document.querySelectorAll('.viewer .overlay-panel'))
        if (!named.some(([, e]) => e === extra)) named.push([extra.id || 'panel', extra]);
    const boxes = named.filter(([, e]) => shown(e)).map(([name, e]) => [name, box(e)]);
    const clipped = boxes.map(([, b]) => [Math.max(b[0], video[0]), Math.max(b[1], video[1]),
        Math.min(b[2], video[2]), Math.min(b[3], video[3])])
        .filter(b => b[0] < b[2] && b[1] < b[3]);
    const xs = [...new Set(clipped.flatMap(b => [b[0], b[2]]))].sort((a, b) => a - b);
    const ys = [...new Set(clipped.flatMap(b => [b[1], b[3]]))].sort((a, b) => a - b);
    let covered = 0;
    for (let i = 0; i + 1 < xs.length; i++) for (let j = 0; j + 1 < ys.length; j++) {
        const cx = (xs[i] + xs[i + 1]) / 2, cy = (ys[j] + ys[j + 1]) / 2;
        if (clipped.some(b => b[0] <= cx && cx <= b[2] && b[1] <= cy && cy <= b[3]))
            covered += (xs[i + 1] - xs[i]) * (ys[j + 1] - ys[j]);
    }
    const area = (video[2] - video[0]) * (video[3] - video[1]);
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i][1], boxes[j][1]];
        const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
        const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
        if (w > 1 && h > 1) overlaps.push(`${boxes[i][0]} / ${boxes[j][0]}`);
    }
    return { visible: area > 0 ? 1 - covered / area : 0,
             videoShare: area / (innerWidth * innerHeight),
             shown: boxes.map(([name]) => name), overlaps };
}"""


@pytest.fixture(scope="module")
def show_with_poll(demo: Demo, browser: Browser) -> Iterator[Demo]:
    """The demo show with a card pinned, a poll open and a few chat messages."""
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    try:
        studio = context.new_page()
        studio.goto(demo.page("studio", demo.host_token))
        studio.get_by_role("button", name="Pin Merino crew sweater").click()
        expect(studio.get_by_role("button", name="Unpin Merino crew sweater")).to_be_visible()
        studio.locator("#poll-q").fill("Which colour should we show next?")
        studio.locator("#poll-o").fill("Navy, Forest green, Oat")
        studio.get_by_role("button", name="Start poll").click()
        expect(studio.locator("#poll")).to_contain_text("Close poll")
        viewer = context.new_page()
        viewer.goto(demo.page("watch"))
        for text in ("Hello from the sofa!", "That sweater looks warm", "Is there a size L?"):
            viewer.get_by_label("Message").fill(text)
            viewer.get_by_role("button", name="Send", exact=True).click()
            expect(viewer.locator("#chat li", has_text=text)).to_be_visible()
        yield demo
    finally:
        context.close()


@pytest.mark.parametrize(
    ("name", "viewport"),
    [
        ("viewer_320", {"width": 320, "height": 568}),
        ("viewer_390", {"width": 390, "height": 844}),
        ("viewer_1280", DESKTOP),
    ],
)
def test_overlays_leave_half_the_video_visible_and_never_overlap(
    show_with_poll: Demo,
    browser: Browser,
    contexts: list[BrowserContext],
    name: str,
    viewport: dict[str, int],
) -> None:
    page = open_page(browser, contexts, show_with_poll.page("watch"), viewport)
    card = page.get_by_role("article", name="Merino crew sweater")
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name="Buy now")).to_be_visible()
    expect(page.locator("#chat li", has_text="Is there a size L?")).to_be_visible()
    poll = page.locator("#poll-toggle")
    expect(poll).to_contain_text("Which colour should we show next?")
    expect(page.locator("#poll-panel")).to_be_visible()
    small = viewport["width"] <= 420
    # Small screens: the poll is a one-line chip; a tap opens it. Wide ones: open at once.
    expect(poll).to_have_attribute("aria-expanded", "false" if small else "true")
    option = page.get_by_role("button", name=re.compile(r"^Navy \(\d+\)$"))
    if small:
        expect(option).to_be_hidden()
    else:
        expect(option).to_be_visible()
    page.evaluate("document.fonts.ready")
    measured = page.evaluate(MEASURE, OVERLAYS)
    screenshot(page, name)
    assert set(measured["shown"]) >= set(OVERLAYS), measured
    assert measured["videoShare"] >= 0.6, f"the video itself shrank: {measured}"
    assert measured["visible"] >= 0.5, f"overlays cover too much of the video: {measured}"
    assert measured["overlaps"] == [], f"overlays cover each other at {viewport}: {measured}"
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
    if small:
        poll.click()
        expect(poll).to_have_attribute("aria-expanded", "true")
        expect(option).to_be_visible()
        assert page.evaluate(MEASURE, OVERLAYS)["overlaps"] == []
        poll.click()
        expect(option).to_be_hidden()
    # Hide the overlays for a clean view of the video, then bring them back.
    page.get_by_role("button", name="Hide overlays").click()
    for hidden in ("#chat", "#poll-panel", "#cards"):
        expect(page.locator(hidden)).to_be_hidden()
    assert page.evaluate(MEASURE, OVERLAYS)["visible"] >= 0.85
    page.get_by_role("button", name="Show overlays").click()
    expect(card).to_be_visible()
    expect(page.locator("#chat")).to_be_visible()


def test_full_screen_and_picture_in_picture_controls(
    show_with_poll: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = open_page(browser, contexts, show_with_poll.page("watch"), PHONE)
    full = page.get_by_role("button", name="Full screen")
    full.click()
    expect(page.get_by_role("button", name="Exit full screen")).to_be_visible()
    assert page.evaluate("document.fullscreenElement?.id") == "viewer"
    # The overlays stay with the video in full screen: the viewer element is what fills it.
    expect(page.get_by_role("article", name="Merino crew sweater")).to_be_visible()
    page.get_by_role("button", name="Exit full screen").click()
    expect(full).to_be_visible()
    assert page.evaluate("document.fullscreenElement") is None
    # Picture-in-picture needs a playing video: offered, but off until the host is live.
    pip = page.get_by_role("button", name="Picture in picture")
    if page.evaluate("document.pictureInPictureEnabled"):
        expect(pip).to_be_disabled()
    else:
        expect(pip).to_be_hidden()


def test_closed_drawer_is_out_of_the_tab_order_and_esc_returns_focus(
    show_with_poll: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = open_page(browser, contexts, show_with_poll.page("watch"), PHONE)
    expect(page.get_by_role("article", name="Merino crew sweater")).to_be_visible()
    page.locator("body").focus()
    visited: list[str] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        where = page.evaluate("""() => ({
            inDrawer: !!document.activeElement.closest('#cart'),
            what: document.activeElement.id
                || document.activeElement.textContent.trim().slice(0, 20),
            page: document.scrollingElement.scrollLeft,
            main: document.getElementById('viewer').scrollLeft })""")
        visited.append(where["what"])
        assert not where["inDrawer"], f"Tab moved into the closed drawer after {visited}"
        assert where["page"] == 0 and where["main"] == 0, f"the page scrolled sideways: {where}"
    assert "open-cart" in visited and "chat-input" in visited, visited
    drawer_left = page.evaluate("document.getElementById('cart').getBoundingClientRect().left")
    assert drawer_left >= PHONE["width"] - 1, "the closed drawer is on screen"

    opener = page.locator("#open-cart")
    opener.focus()
    page.keyboard.press("Enter")
    drawer = page.locator("#cart")
    expect(drawer).to_have_class(re.compile(r"\bopen\b"))
    expect(opener).to_have_attribute("aria-expanded", "true")
    focus_in_drawer = "document.activeElement.closest('#cart') !== null"
    assert page.evaluate(focus_in_drawer), "opening the drawer left the focus behind"
    expect(page.get_by_role("heading", name="Your cart")).to_be_focused()
    page.keyboard.press("Tab")  # the drawer's header: "My orders", then "Close"
    assert page.evaluate(focus_in_drawer)
    expect(page.locator("#open-orders")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate(focus_in_drawer)
    expect(page.get_by_role("button", name="Close")).to_be_focused()
    expect(page.get_by_role("button", name="Close")).to_be_in_viewport(ratio=1)
    page.wait_for_timeout(250)  # the slide-in (0.2 s), for the screenshot
    screenshot(page, "drawer_keyboard")
    page.keyboard.press("Escape")
    expect(drawer).not_to_have_class(re.compile(r"\bopen\b"))
    expect(opener).to_be_focused()
    expect(opener).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Shift+Tab")
    assert not page.evaluate(focus_in_drawer)
    # The drawer opened by other code (a buy that needs a card) is reachable too, and
    # closes with its Close button, giving focus back to the page.
    page.evaluate("document.getElementById('cart').classList.add('open')")
    expect(page.get_by_role("button", name="Close")).to_be_visible()
    page.get_by_role("button", name="Close").click()
    expect(drawer).not_to_have_class(re.compile(r"\bopen\b"))
    assert page.evaluate("document.getElementById('cart').inert") is True


UNNAMED = """() => [...document.querySelectorAll('input, select, textarea')].filter((e) => {
    const named = [...(e.labels || [])].some((l) => l.textContent.trim())
        || (e.getAttribute('aria-label') || '').trim()
        || (e.getAttribute('aria-labelledby') || '').split(/\\s+/)
            .some((id) => document.getElementById(id)?.textContent.trim());
    return !named;
}).map((e) => e.outerHTML)"""

# A visible label (not clipped to a pixel) or, for an empty field, a visible placeholder.
NO_VISIBLE_TEXT = """() => [...document.querySelectorAll('input, textarea')]
    .filter((e) => e.checkVisibility())
    .filter((e) => {
        const seen = (l) => {
            const r = l.getBoundingClientRect();
            return l.checkVisibility() && r.width > 4 && r.height > 4;
        };
        return !([...(e.labels || [])].some(seen) || (e.placeholder.trim() && !e.value));
    }).map((e) => e.outerHTML)"""


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_field_has_a_name_and_visible_text(
    show_with_poll: Demo, browser: Browser, contexts: list[BrowserContext], viewport: dict[str, int]
) -> None:
    viewer = open_page(browser, contexts, show_with_poll.page("watch"), viewport)
    expect(viewer.get_by_role("article", name="Merino crew sweater")).to_be_visible()
    assert viewer.evaluate(UNNAMED) == []
    assert viewer.evaluate(NO_VISIBLE_TEXT) == []
    viewer.get_by_role("button", name=re.compile(r"^Cart \d")).click()
    expect(viewer.get_by_role("heading", name="Your cart")).to_be_visible()
    assert viewer.evaluate(UNNAMED) == []
    assert viewer.evaluate(NO_VISIBLE_TEXT) == []
    console = open_page(
        browser, contexts, show_with_poll.page("moderate", show_with_poll.moderator_token), viewport
    )
    expect(console.locator("#chat li").first).to_be_visible()
    assert console.evaluate(UNNAMED) == []
    assert console.evaluate(NO_VISIBLE_TEXT) == []
