"""The viewer page on HLS, and the studio's codec, in Chromium against ``liveshop demo``.

HLS comes from ffmpeg: numbered frames (``benches.synthetic.pattern``, the frame index in
16 black/white blocks) encoded live into 1 s fMP4 segments with a program date time,
served to the page by Playwright in place of the relay's ``/hls/{show}/index.m3u8`` (the
page does not tell them apart), so these tests pin the page whatever the packager does;
and, where the server packages HLS itself, from the relay, fed by the synthetic H.264 host
(the same numbered frames). Forced to HLS with ``?hls=1`` the page plays hls.js with
rising frame indexes, and a card pinned on the live channel waits for the picture that was
live when it was pinned. The studio prefers H.264 and says when its browser sends VP8.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from benches.processes import spawn, stop
from benches.synthetic import pattern
from tests.browser.conftest import (
    DESKTOP,
    ICE_ADDRESS,
    ROOT,
    Demo,
    open_page,
    screenshot,
    wait_until,
)
from tests.browser.test_show_life import PRODUCT, Show, end_show, new_show, pin, url

FPS = 30
WIDTH, HEIGHT = 320, 240

# Every presented frame: [Date.now(), the index read from its pixels, hls.js playingDate].
FRAME_PROBE = """
window.__frames = [];
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("video");
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 16;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const onFrame = () => {
    if (video.videoWidth >= 320) {  // (the blocks, at the picture's own size)
      ctx.drawImage(video, 0, 0, 320, 16, 0, 0, 320, 16);
      const row = ctx.getImageData(0, 8, 320, 1).data;
      let index = 0;
      for (let bit = 0; bit < 16; bit++) {
        let sum = 0;
        for (let x = bit * 16 + 4; x < bit * 16 + 12; x++) sum += row[x * 4];
        if (sum / 8 > 128) index |= 1 << bit;
      }
      window.__frames.push([Date.now(), index, window.__viewerSync?.picture?.() ?? null]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
});
"""


@contextlib.contextmanager
def live_hls(folder: Path) -> Iterator[Path]:
    """ffmpeg packaging numbered frames, paced at FPS, into a live HLS playlist in
    ``folder`` (1 s fMP4 segments, a keyframe each, EXT-X-PROGRAM-DATE-TIME)."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
        "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
        "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-g",
        str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0", "-f", "hls", "-hls_time",
        "1", "-hls_list_size", "6", "-hls_segment_type", "fmp4", "-hls_flags",
        "program_date_time+delete_segments+independent_segments", str(folder / "index.m3u8"),
    ]  # fmt: skip
    proc = spawn(cmd, stdin=subprocess.PIPE)
    running = threading.Event()
    running.set()

    def feed() -> None:
        assert proc.stdin is not None
        start = time.monotonic()
        index = 0
        while running.is_set():
            frame = pattern(index, WIDTH, HEIGHT)
            data = b"".join(bytes(p) for p in frame.planes)
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            index += 1
            time.sleep(max(0.0, start + index / FPS - time.monotonic()))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 15
        while "#EXTINF" not in _read(folder / "index.m3u8"):
            assert time.monotonic() < deadline, "ffmpeg made no segment"
            time.sleep(0.2)
        yield folder
    finally:
        running.clear()
        feeder.join(5)
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        stop(proc, timeout_s=5)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def serve_hls(page: Page, show_id: str, folder: Path) -> list[str]:
    """The page's /hls/{show_id}/... requests answered from ``folder``; returns their paths."""
    asked: list[str] = []

    def answer(route: Route) -> None:
        name = route.request.url.split(f"/hls/{show_id}/", 1)[-1].split("?")[0]
        asked.append(name)
        path = folder / name
        if "/" in name or not path.is_file():
            route.fulfill(status=404, json={"error": {"code": "hls_not_found", "message": "x"}})
            return
        kind = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp4"
        route.fulfill(status=200, body=path.read_bytes(), headers={"Content-Type": kind})

    page.route(f"**/hls/{show_id}/**", answer)
    return asked


def frames(page: Page) -> list[list[float]]:
    seen: list[list[float]] = page.evaluate("window.__frames")
    return seen


def latency_ms(page: Page) -> float:
    """How far the picture is behind the wall clock (ffmpeg's program date time)."""
    at = page.evaluate("window.__viewerSync.picture?.() ?? null")
    assert at is not None
    return float(page.evaluate("Date.now()")) - float(at)


@contextlib.contextmanager
def relay_hls(demo: Demo, show: Show) -> Iterator[None]:
    """A host (``tests/browser/hls_host.py``: numbered H.264 frames, a keyframe a second,
    and Opus audio) publishing to the show, until the relay serves its playlist; skips where
    this server has no HLS packager."""
    playlist = f"{demo.base_url}/hls/{show.show_id}/index.m3u8"
    whip = f"{demo.base_url}/whip/{show.show_id}"
    args = [whip, show.host_token, ICE_ADDRESS, "120"]
    proc = spawn(
        [sys.executable, "-m", "tests.browser.hls_host", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "published", line
        unrouted = httpx.get(f"{demo.base_url}/no-such-route/index.m3u8", timeout=5).text
        deadline = time.monotonic() + 15
        while True:
            resp = httpx.get(playlist, timeout=5)
            if resp.status_code == 200 and "#EXTINF" in resp.text:
                break
            if resp.status_code == 404 and resp.text == unrouted:
                pytest.skip("this server has no HLS packager (GET /hls/... is not routed)")
            assert time.monotonic() < deadline, (resp.status_code, resp.text[:200])
            time.sleep(0.3)
        yield
    finally:
        stop(proc, timeout_s=5)


@pytest.mark.parametrize("source", ["ffmpeg", "relay"])
def test_a_viewer_forced_to_hls_plays_and_cards_wait_for_the_picture(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], tmp_path: Path, source: str
) -> None:
    """ffmpeg's HLS served in the relay's place, or the relay's own (a synthetic host)."""
    show = new_show(demo, f"HLS crowd {source}")
    asked: list[str] = []
    with contextlib.ExitStack() as running:
        page = open_page(browser, contexts, None)
        page.add_init_script(FRAME_PROBE)
        if source == "ffmpeg":
            folder = running.enter_context(live_hls(tmp_path / "hls"))
            asked = serve_hls(page, show.show_id, folder)
        else:
            running.enter_context(relay_hls(demo, show))
            page.on("request", lambda r: asked.append(r.url.rsplit("/", 1)[-1].split("?")[0]))
        page.goto(url(demo, "watch", show).replace(show.show_id, f"{show.show_id}?hls=1"))
        video = page.locator("#video")
        expect(video).to_have_attribute("data-transport", "hls")
        wait_until(page, "window.__frames.length > 30", 20)
        first = page.evaluate("document.getElementById('video').currentTime")
        page.wait_for_timeout(2000)
        assert page.evaluate("document.getElementById('video').currentTime") > first + 1.5
        indexes = [int(f[1]) for f in frames(page)]
        rising = sum(1 for a, b in itertools.pairwise(indexes) if b > a)
        assert rising >= 0.9 * (len(indexes) - 1), indexes[-40:]
        assert indexes[-1] > indexes[0] + 45, (indexes[0], indexes[-1])
        assert "index.m3u8" in asked and len(set(asked)) >= 4, asked  # (segments too)
        assert not page.evaluate("!!document.getElementById('video').srcObject")  # no WHEP
        expect(page.locator("#stream-msg")).to_be_hidden()
        # The picture settles ~2-3 s behind live (two 1 s segments, and the one being made).
        wait_until(page, "window.__viewerSync.picture?.() > 0", 10)
        behind = latency_ms(page)
        assert 1000 <= behind <= 5000, behind
        screenshot(page, f"viewer_hls_{source}")

        # A card pinned now waits for the picture of now: not shown right after the pin...
        card = page.locator(f'#cards .card[aria-label="{PRODUCT}"]')
        pinned_at = time.time() * 1000
        pin(demo, show)
        wait_until(page, "window.__viewerSync.queue.length === 1", 5)
        due = float(page.evaluate("window.__viewerSync.queue[0].due"))
        assert abs(due - pinned_at) < 1000, (due, pinned_at)
        expect(card).to_have_count(0)
        assert float(page.evaluate("window.__viewerSync.picture()")) < due
        # ...and shown once the picture reaches the pin's time (checked every 50 ms).
        deadline = time.monotonic() + 10
        while not card.count():
            assert time.monotonic() < deadline, "the card never appeared"
            picture = float(page.evaluate("window.__viewerSync.picture()"))
            if not card.count():
                assert picture < due + 150, (picture, due)  # (released at the 100 ms tick)
            page.wait_for_timeout(50)
        shown_at = time.time() * 1000
        assert float(page.evaluate("window.__viewerSync.picture()")) >= due
        delay = shown_at - pinned_at
        print("hls latency", round(behind), "ms; card shown", round(delay), "ms after the pin")
        assert abs(delay - behind) < 1500, (delay, behind)
        expect(card).to_be_visible()
        screenshot(page, f"viewer_hls_{source}_card")


def test_mute_and_the_end_of_the_show_on_hls(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    """Unmute works on the HLS picture; the show's end stops it (no more playlist reads)."""
    show = new_show(demo, "HLS to the end")
    with live_hls(tmp_path / "hls") as folder:
        page = open_page(browser, contexts, None)
        asked = serve_hls(page, show.show_id, folder)
        page.goto(url(demo, "watch", show).replace(show.show_id, f"{show.show_id}?hls=1"))
        wait_until(page, "window.__viewerSync.picture?.() > 0", 15)
        page.get_by_role("button", name="Unmute").click()
        assert page.evaluate("document.getElementById('video').muted") is False
        expect(page.get_by_role("button", name="Mute")).to_be_visible()
        end_show(demo, show)
        expect(page.get_by_role("heading", name="The show has ended")).to_be_visible()
        wait_until(page, "document.getElementById('video').readyState === 0", 5)
        reads = len(asked)
        page.wait_for_timeout(2500)
        assert len(asked) == reads, asked[reads:]


def test_a_stalled_hls_picture_holds_nothing_back(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    """A playlist that stops growing (the packager stuck): the picture plays what it has,
    then stops, and an event it never reaches is shown STALL_MS (4 s) after the picture
    stopped rather than never."""
    show = new_show(demo, "HLS stalled")
    with live_hls(tmp_path / "hls") as folder:
        frozen = tmp_path / "frozen"
        frozen.mkdir()
        for path in folder.iterdir():
            (frozen / path.name).write_bytes(path.read_bytes())
        page = open_page(browser, contexts, None)
        serve_hls(page, show.show_id, frozen)
        page.goto(url(demo, "watch", show).replace(show.show_id, f"{show.show_id}?hls=1"))
        expect(page.locator("#video")).to_have_attribute("data-transport", "hls")
        wait_until(page, "window.__viewerSync.picture?.() > 0", 15)
        pin(demo, show)
        card = page.locator(f'#cards .card[aria-label="{PRODUCT}"]')
        wait_until(page, "window.__viewerSync.queue.length === 1", 5)
        due = float(page.evaluate("window.__viewerSync.queue[0].due"))
        pinned = time.monotonic()
        expect(card).to_have_count(0)
        last = 0.0
        while not card.count():
            assert time.monotonic() - pinned < 10, "the card never appeared"
            last = float(page.evaluate("window.__viewerSync.lastPicture ?? 0"))
            page.wait_for_timeout(50)
        assert last < due  # (shown without the picture reaching it: the stall released it)
        assert time.monotonic() - pinned >= 2


def test_a_show_without_hls_stays_on_webrtc(
    demo: Demo, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Not forced, a viewer whose WHEP is answered video_full asks for the playlist; a 404
    (a VP8 host: no HLS) keeps it on WebRTC, and events show at once."""
    show = new_show(demo, "No HLS here")
    page = open_page(browser, contexts, None)
    asked: list[str] = []
    page.route(
        f"**/whep/{show.show_id}",
        lambda route: route.fulfill(
            status=503, json={"error": {"code": "video_full", "message": "full"}}
        ),
    )

    def no_hls(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=404, json={"error": {"code": "hls_not_found", "message": "none"}})

    page.route(f"**/hls/{show.show_id}/**", no_hls)
    page.goto(url(demo, "watch", show))
    wait_until(page, "document.getElementById('video').dataset.transport === 'webrtc'", 10)
    page.wait_for_timeout(500)
    assert asked, "the page never asked for the playlist"
    pin(demo, show)
    expect(page.locator(f'#cards .card[aria-label="{PRODUCT}"]')).to_be_visible(timeout=2000)
    assert page.evaluate("document.getElementById('video').dataset.transport") == "webrtc"


def test_a_full_show_sends_the_viewer_to_hls(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    """Not forced: a WHEP offer answered 503 video_full (every relay past its budget) and a
    show with HLS: the page plays HLS, and asks WHEP no more."""
    show = new_show(demo, "Full house")
    with live_hls(tmp_path / "hls") as folder:
        page = open_page(browser, contexts, None)
        offers: list[str] = []

        def full(route: Route) -> None:
            offers.append(route.request.method)
            route.fulfill(status=503, json={"error": {"code": "video_full", "message": "full"}})

        page.route(f"**/whep/{show.show_id}", full)
        serve_hls(page, show.show_id, folder)
        page.goto(url(demo, "watch", show))
        expect(page.locator("#video")).to_have_attribute("data-transport", "hls")
        wait_until(page, "window.__viewerSync.picture?.() > 0", 15)
        page.wait_for_timeout(3500)  # (WHEP was retried every 3 s before)
        assert offers == ["POST"], offers


def test_a_viewer_whose_webrtc_never_connects_watches_hls(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    """UDP blocked, as on some office networks: the WHEP offer and answer go through, but
    no candidate pair ever works (the offer's and the answer's candidates pointing at
    TEST-NET addresses); 8 s after the answer the page plays HLS instead."""
    show = new_show(demo, "Blocked UDP")
    with live_hls(tmp_path / "hls") as folder:
        page = open_page(browser, contexts, None)

        def blocked(route: Route) -> None:
            if route.request.method != "POST":
                route.continue_()
                return
            offer = re.sub(  # (every candidate's address: field 5 of a=candidate)
                r"^(a=candidate:\S+ \S+ \S+ \S+ )\S+", r"\g<1>192.0.2.2",
                route.request.post_data or "", flags=re.M,
            )  # fmt: skip
            answer = route.fetch(post_data=offer)
            body = answer.text().replace(ICE_ADDRESS, "192.0.2.1")
            route.fulfill(response=answer, body=body)

        page.route(f"**/whep/{show.show_id}", blocked)
        serve_hls(page, show.show_id, folder)
        page.goto(url(demo, "watch", show))
        wait_until(page, "document.getElementById('video').dataset.transport === 'webrtc'", 10)
        opened = time.monotonic()
        expect(page.locator("#video")).to_have_attribute("data-transport", "hls", timeout=15_000)
        assert 6 < time.monotonic() - opened < 12
        wait_until(page, "window.__viewerSync.picture?.() > 0", 15)


NO_H264 = """
const original = RTCRtpTransceiver.prototype.setCodecPreferences;
RTCRtpTransceiver.prototype.setCodecPreferences = function (codecs) {
  return original.call(this, codecs.filter((c) => !/h264/i.test(c.mimeType)));
};
"""


@pytest.mark.parametrize("browser_sends", ["h264", "vp8"])
def test_studio_prefers_h264_and_says_when_it_sends_vp8(
    demo: Demo, browser: Browser, contexts: list[BrowserContext], browser_sends: str
) -> None:
    """Debian's Chromium sends H.264 (OpenH264): the studio puts it first and the relay
    takes it. A browser that cannot (here: its H.264 taken out of the preferences) sends
    VP8, and the host reads why the HLS audience will not see them."""
    show = new_show(demo, f"Codec {browser_sends}")
    studio = open_page(browser, contexts, None, DESKTOP)
    if browser_sends == "vp8":
        studio.add_init_script(NO_H264)
    studio.goto(url(demo, "studio", show, show.host_token))
    go = studio.get_by_role("button", name="Go live")
    expect(go).to_be_enabled()
    go.click()
    expect(studio.locator("#stream-state")).to_have_text("live", timeout=20_000)
    expect(studio.locator("#preview")).to_have_attribute("data-codec", browser_sends)
    note = studio.locator("#codec-note")
    if browser_sends == "h264":
        expect(note).to_be_hidden()
        # ...and the crowd watches the browser host over HLS (where the server packages it)
        playlist = httpx.get(f"{demo.base_url}/hls/{show.show_id}/index.m3u8", timeout=5)
        unrouted = httpx.get(f"{demo.base_url}/no-such-route/index.m3u8", timeout=5)
        if playlist.status_code == 404 and playlist.text == unrouted.text:
            return
        viewer = open_page(browser, contexts, None)
        viewer.goto(url(demo, "watch", show).replace(show.show_id, f"{show.show_id}?hls=1"))
        wait_until(viewer, "window.__viewerSync.picture?.() > 0", 20)
        first = viewer.evaluate("document.getElementById('video').currentTime")
        viewer.wait_for_timeout(2000)
        assert viewer.evaluate("document.getElementById('video').currentTime") > first + 1.5
        assert viewer.evaluate("document.getElementById('video').dataset.transport") == "hls"
        screenshot(viewer, "viewer_hls_from_studio")
    else:
        expect(note).to_be_visible()
        expect(note).to_contain_text("Your browser sends VP8: viewers can watch over WebRTC only")
        expect(note).to_contain_text("needs H.264")
        screenshot(studio, "studio_vp8_note")
