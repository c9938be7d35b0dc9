"""A viewer served by an edge relay plays, in real Chromium: `liveshop demo --workers 2`
with a viewer budget of one per process, so the second viewer is on the other worker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP, Demo, open_page, running_demo, screenshot, wait_until


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(
        tmp_path_factory.mktemp("edge-demo"),
        workers=2,
        settings={"LIVESHOP_VIDEO_VIEWERS_PER_PROCESS": "1"},
    ) as running:
        yield running


def scrape_until(base_url: str, line: str, within_s: float = 20) -> None:
    """Ask /metrics (a new connection each time: either worker answers) until one says
    ``line``."""
    deadline = time.monotonic() + within_s
    while True:
        text = httpx.get(f"{base_url}/metrics", headers={"Connection": "close"}, timeout=5).text
        if f"\n{line}\n" in text:
            return
        assert time.monotonic() < deadline, f"no worker reported {line}"
        time.sleep(0.2)


def playing(page: Page) -> None:
    wait_until(page, "document.getElementById('video').videoWidth > 0", 30)
    first = page.evaluate("document.getElementById('video').currentTime")
    wait_until(page, f"document.getElementById('video').currentTime > {first} + 1", 10)
    expect(page.locator("#stream-msg")).to_be_hidden()


def test_a_viewer_on_an_edge_relay_plays(
    two_workers: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    demo = two_workers
    studio = open_page(browser, contexts, demo.page("studio", demo.host_token), DESKTOP)
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#stream-state")).to_have_text("live", timeout=20_000)
    first = open_page(browser, contexts, demo.page("watch"))  # the origin's one viewer
    playing(first)
    second = open_page(browser, contexts, demo.page("watch"))  # past its budget: the edge
    playing(second)
    # one worker relays the show as an edge, with that viewer; the other feeds it
    scrape_until(demo.base_url, "liveshop_video_edges 1.0")
    scrape_until(demo.base_url, "liveshop_video_edge_feeds 1.0")
    # both keep playing (the edge's picture moves on as the origin's does)
    for page in (first, second):
        now = page.evaluate("document.getElementById('video').currentTime")
        wait_until(page, f"document.getElementById('video').currentTime > {now} + 1", 10)
    screenshot(second, "viewer-on-edge-relay")
    studio.get_by_role("button", name="Stop").click()
