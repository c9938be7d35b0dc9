"""Chromium watching a show behind an impaired link (issue 15): 3% loss, a 4 Mbit/s link.

The test makes the link (``benches/netns.py``): ``liveshop demo`` and an OBS-like publisher
(H.264 at 1.5 Mbit/s with a keyframe every 10 s, keyframe requests ignored) run in a server
namespace; Chromium, in the test's own namespace, reaches them through a veth pair whose
server end drops 3% of the RTP it sends (nftables) or is a 4 Mbit/s bottleneck (tc tbf).

Each page records every video frame Chromium presents (``requestVideoFrameCallback``,
set up before the page's own scripts run). An early viewer opens as the host goes live
and watches 6 s; a late joiner opens 6 s into the host's group of pictures, when the
relay's cache holds 6 s of video to send it, and watches 8 s. Neither may stall: no gap
over 500 ms between two presented frames after its first.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from benches import netns
from benches.processes import spawn, stop
from tests.browser.conftest import ROOT, Demo, open_page, running_demo, screenshot, wait_until

CONDITIONS = {"loss3": (3.0, None), "rate4": (0.0, 4.0)}
GOP_FRAMES = 300  # 10 s at 30 fps
LATE_AT_S = 6.0
EARLY_WATCH_S = 6.0
LATE_WATCH_S = 8.0
STALL_LIMIT_MS = 500
FIRST_FRAME_LIMIT_S = 4.0  # from opening the page: page, WHEP, ICE, DTLS over the link

# Every presented frame: [ms since the page's navigation, presentedFrames, mediaTime].
FRAME_PROBE = """
window.__frames = [];
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("video");
  if (!video || !video.requestVideoFrameCallback) return;
  const onFrame = (now, meta) => {
    window.__frames.push([now, meta.presentedFrames, meta.mediaTime]);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
});
"""


@pytest.fixture(params=list(CONDITIONS))
def impaired(request: pytest.FixtureRequest) -> Iterator[tuple[str, netns.ImpairedLink]]:
    reason = netns.available()
    assert reason is None, f"this test makes network namespaces: {reason}"
    loss, rate = CONDITIONS[request.param]
    with netns.ImpairedLink(loss_pct=loss, rate_mbit=rate, viewer_ns=False) as link:
        yield request.param, link


def _publisher(link: netns.ImpairedLink, demo: Demo) -> subprocess.Popen[str]:
    whip = f"{demo.base_url}/whip/{demo.show_id}"
    args = ["_publish", whip, "60", str(GOP_FRAMES), "1500000", link.server_address]
    proc = spawn(
        link.command("server", [sys.executable, "-m", "benches.relay", *args, demo.host_token]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "published", line
    return proc


def _watch(browser: Browser, contexts: list[BrowserContext], demo: Demo) -> Page:
    page = open_page(browser, contexts, None)
    page.add_init_script(FRAME_PROBE)
    page.goto(demo.page("watch"))
    return page


def _frames(page: Page) -> list[list[float]]:
    frames: list[list[float]] = page.evaluate("window.__frames")
    return frames


def _summary(frames: list[list[float]]) -> dict[str, Any]:
    times = [f[0] for f in frames]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "frames": len(frames),
        "first_frame_s": round(times[0] / 1000, 2) if times else None,
        "stall_max_ms": round(max(gaps, default=0.0)),
        "watched_s": round((times[-1] - times[0]) / 1000, 1) if times else 0.0,
    }


def test_viewers_behind_a_lossy_or_narrow_link_never_stall(
    impaired: tuple[str, netns.ImpairedLink],
    browser: Browser,
    contexts: list[BrowserContext],
    tmp_path: Path,
) -> None:
    condition, link = impaired
    wrap = link.command("server", [])
    with running_demo(
        tmp_path, ice_address=link.server_address, host=link.server_address, wrap=wrap
    ) as demo:
        publisher = _publisher(link, demo)
        try:
            live_at = time.monotonic()
            early = _watch(browser, contexts, demo)
            wait_until(early, "window.__frames.length > 0", FIRST_FRAME_LIMIT_S + 2)
            early.wait_for_timeout(max(0.0, live_at + EARLY_WATCH_S - time.monotonic()) * 1000)
            seen = {"early": _summary(_frames(early))}
            screenshot(early, f"viewer_{condition}_early")
            contexts.remove(early.context)
            early.context.close()  # (the late joiner has the link to itself, as a phone)
            time.sleep(max(0.0, live_at + LATE_AT_S - time.monotonic()))
            late = _watch(browser, contexts, demo)
            wait_until(late, "window.__frames.length > 0", FIRST_FRAME_LIMIT_S + 2)
            late.wait_for_timeout(LATE_WATCH_S * 1000)
            seen["late"] = _summary(_frames(late))
            screenshot(late, f"viewer_{condition}_late")
        finally:
            stop(publisher)
    print(condition, seen)
    for who, figures in seen.items():
        assert figures["first_frame_s"] is not None
        assert figures["first_frame_s"] <= FIRST_FRAME_LIMIT_S, (who, figures)
        assert figures["stall_max_ms"] <= STALL_LIMIT_MS, (who, figures)
        assert figures["frames"] >= 20 * (figures["watched_s"] - 1), (who, figures)
