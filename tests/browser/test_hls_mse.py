"""The HLS packager's fMP4 (H.264 and Opus in one init segment and its media segments)
plays in real Chromium's Media Source Extensions, as hls.js feeds it."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Browser

from signaling import fmp4
from signaling.hls import HlsPackager, Segment
from signaling.relay import ShowRelay
from tests.signaling.test_hls import FPS, Feed

PLAY = """async ([type, parts]) => {
  const result = {supported: MediaSource.isTypeSupported(type)};
  const source = new MediaSource();
  const video = document.createElement('video');
  video.muted = true;
  document.body.appendChild(video);
  video.src = URL.createObjectURL(source);
  await new Promise(resolve => source.addEventListener('sourceopen', resolve, {once: true}));
  const buffer = source.addSourceBuffer(type);
  for (const part of parts) {
    const bytes = Uint8Array.from(atob(part), c => c.charCodeAt(0));
    await new Promise((resolve, reject) => {
      buffer.addEventListener('updateend', resolve, {once: true});
      buffer.addEventListener('error', () => reject(new Error('append failed')), {once: true});
      buffer.appendBuffer(bytes);
    });
  }
  const ranges = buffer.buffered;
  result.buffered = Array.from({length: ranges.length}, (_, i) => [ranges.start(i), ranges.end(i)]);
  await video.play();
  await new Promise(resolve => setTimeout(resolve, 1200));
  result.time = video.currentTime;
  result.size = [video.videoWidth, video.videoHeight];
  result.error = video.error && video.error.message;
  return result;
}"""


def _segments() -> list[Segment]:
    made: list[Segment] = []

    def write(segment: Segment) -> bool:
        made.append(segment)
        return True

    async def feed() -> None:
        source = Feed(ShowRelay("show1", 120, 0.0))
        source.attach("h264", gop=15)
        source.relay.add_tap(HlsPackager(source.relay, write, source.clock))
        await source.run(3 * FPS + 1)

    # (in a thread of its own: Playwright's sync API runs an event loop in this one)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, feed()).result(timeout=60)
    return made


def test_segments_play_in_chromium_mse(browser: Browser) -> None:
    segments = _segments()
    init = segments[0].init
    assert init is not None and len(segments) == 3
    media = [fmp4.media_segment(n, s.video, s.audio) for n, s in enumerate(segments, 1)]
    at = init.find(b"avcC")
    profile = init[at + 5 : at + 8].hex()  # profile, compatibility, level: as hls.js reads them
    mime = f'video/mp4; codecs="avc1.{profile},opus"'
    page = browser.new_page()
    try:
        page.goto("data:text/html,<body></body>")
        parts = [base64.b64encode(part).decode() for part in [init, *media]]
        result = page.evaluate(PLAY, [mime, parts])
    finally:
        page.close()
    assert result["supported"] is True and result["error"] is None, result
    # Both tracks buffered (Chromium reports where audio and video overlap) for 3 s.
    ((start, end),) = result["buffered"]
    assert start == 0 and abs(end - 3.0) < 0.03, result
    assert result["size"] == [320, 240] and result["time"] > 0.5, result
