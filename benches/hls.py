"""``liveshop bench hls``: N HLS viewers of one show through a caching nginx.

Everything runs on 127.0.0.1 in separate processes:

- the origin. ``--origin app`` (the default): the server (SignalingService's routes, as
  ``liveshop bench relay`` serves them) packaging a WHIP publisher's H.264 (640x480, 30 fps,
  about 1.5 Mbit/s, a keyframe every 30 frames: 1 s segments) into the HLS contract's
  ``/hls/{show}/index.m3u8``, ``init-{n}.mp4`` and ``{sequence}.m4s``. ``--origin standin``:
  the bench's own stand-in (the same synthetic pictures muxed by ffmpeg's hls muxer into
  fMP4, served with the contract's paths and cache headers), for when the app cannot.
- Debian's nginx, a caching reverse proxy with a config of its own in a temporary folder
  (``benches.hls_nginx``): one origin request per segment however many viewers miss it at
  once (``proxy_cache_lock``), the origin's Cache-Control honoured.
- viewer processes (asyncio, a lean HTTP/1.1 keep-alive client): each viewer behaves like a
  player: it polls the playlist every half target duration, fetches the init segment once,
  starts three segments from the live edge and fetches every new segment once, in order.
  Starts are staggered over ``--ramp`` seconds.
- Chromium (Debian's, driven by Playwright) playing the playlist with hls.js through nginx:
  every presented frame's index is read from its pixels and compared with the wall time
  the publisher sent that frame (glass to glass).

Origin requests are read from nginx's access log (a request that reached the origin has an
upstream address). The last line printed is one JSON object with the figures; every process
the bench starts is stopped, on error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benches.hls_nginx import origin_requests, running_nginx
from benches.processes import free_ports, redis_url_for, spawn, stop

SHOW_ENV = "LIVESHOP_BENCH_HLS_SHOW"  # the show's id, set by the bench for its processes


def show_id() -> str:
    return os.environ.get(SHOW_ENV, "bench")


FPS = 30
WIDTH, HEIGHT = 640, 480
REQUEST_TIMEOUT_S = 10.0  # a request not answered by then is a failure
ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


def box_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# -- the publisher's send times ---------------------------------------------------------------


class SendTimes:
    """Frame index -> wall time it was sent, written now and then to a JSON file (atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: dict[int, float] = {}
        self._written = 0.0

    def record(self, index: int, at: float) -> None:
        self.sent[index] = at
        if at - self._written > 1.0:
            self.flush()

    def flush(self) -> None:
        self._written = time.time()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.sent))
        tmp.replace(self.path)


def read_send_times(path: Path) -> dict[int, float]:
    with contextlib.suppress(OSError, ValueError):
        return {int(k): float(v) for k, v in json.loads(path.read_text()).items()}
    return {}


# -- the stand-in origin --------------------------------------------------------------------


def standin(port: int, folder: Path, sent_file: Path) -> int:
    """Encode numbered pictures in real time into fMP4 HLS (ffmpeg's hls muxer) in
    ``folder`` and serve them with the HLS contract's paths and headers."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {"playlist": 0, "init": 0, "segment": 0}
    stopping = threading.Event()
    threading.Thread(
        target=_standin_encode, args=(folder, SendTimes(sent_file), stopping), daemon=True
    ).start()

    async def playlist(request: Request) -> Response:
        counts["playlist"] += 1
        try:
            body = (folder / "index.m3u8").read_bytes()
        except FileNotFoundError:
            return Response("not live yet", 404)
        return Response(
            body,
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": "public, max-age=1"},
        )

    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        if not re.fullmatch(r"(init-\d+\.mp4|\d+\.m4s)", name):
            return Response("no such file", 404)
        counts["init" if name.endswith(".mp4") else "segment"] += 1
        try:
            body = (folder / name).read_bytes()
        except FileNotFoundError:
            return Response("no such segment", 404)
        return Response(
            body,
            media_type="video/mp4" if name.endswith(".mp4") else "video/iso.segment",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(counts)

    app = Starlette(
        routes=[
            Route("/hls/{show_id}/index.m3u8", playlist),
            Route("/hls/{show_id}/{name}", media),
            Route("/bench/stats", stats),
        ]
    )
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        stopping.set()
    return 0


def _standin_encode(folder: Path, times: SendTimes, stopping: threading.Event) -> None:
    from fractions import Fraction

    import av

    from benches.synthetic import pattern

    out = av.open(
        str(folder / "index.m3u8"),
        "w",
        format="hls",
        options={
            "hls_time": "1",
            "hls_list_size": "6",
            "hls_segment_type": "fmp4",
            "hls_flags": "program_date_time+delete_segments+independent_segments"
            "+temp_file+omit_endlist",
            "hls_fmp4_init_filename": "init-0.mp4",
            "hls_segment_filename": str(folder / "%d.m4s"),
            "hls_delete_threshold": "30",
        },
    )
    stream: Any = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.bit_rate = 1_500_000
    stream.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0",
    }
    noise = os.urandom(WIDTH * HEIGHT * 2)
    start = time.monotonic()
    index = 0
    while not stopping.is_set():
        delay = start + index / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        times.record(index, time.time())
        frame = pattern(index, WIDTH, HEIGHT, noise)
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        for packet in stream.encode(frame):
            out.mux(packet)
        index += 1


# -- the app origin ------------------------------------------------------------------------------


def serve_app(port: int, redis_url: str) -> int:
    """SignalingService's WHIP/WHEP and HLS routes (as ``liveshop bench relay`` serves the
    former), its HLS packager keeping segments in the Redis at ``redis_url``."""
    import redis.asyncio as aioredis
    import uvicorn
    from starlette.applications import Starlette

    from benches.relay import OpenGate
    from signaling.config import SignalingConfig
    from signaling.service import SignalingService

    service: Any = SignalingService(SignalingConfig(ice_host_addresses=["127.0.0.1"]), OpenGate())
    if not hasattr(service, "hls_routes"):
        print("this checkout's SignalingService serves no HLS: use --origin standin", flush=True)
        return 3

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        from config.runtime import tune_gc  # as `liveshop serve` does

        tune_gc()
        redis = aioredis.from_url(redis_url)
        service.start(redis)
        yield
        await service.close()
        await redis.aclose()

    app = Starlette(routes=[*service.routes(), *service.hls_routes()], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


# -- the WHIP publisher (app origin) ------------------------------------------------------------


async def _publish(url: str, sent_file: Path, seconds: float, bitrate: int) -> None:
    """Synthetic H.264 with a keyframe every second and Opus audio (silence: a host always
    sends audio, and the packager's init segment declares it), the video's send times
    written to a file."""
    from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection

    from benches.relay import _offer, _prefer_h264
    from benches.synthetic import EncodedPatternTrack

    track = EncodedPatternTrack(
        "h264", WIDTH, HEIGHT, FPS, gop=FPS, bitrate=bitrate, timestamps=True, noise=True
    )
    times = SendTimes(sent_file)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _prefer_h264(pc.addTransceiver(track, direction="sendonly"))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await _offer(url, pc)
    print("published", flush=True)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await asyncio.sleep(1)
        times.sent = dict(track.sent)
        times.flush()
    await pc.close()


# -- viewers ------------------------------------------------------------------------------------


class HttpError(Exception):
    pass


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time; bodies counted, kept only
    when asked (the playlist)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, int]] | None = None
        self.headers_done = False
        self.status = 0
        self.length = 0
        self.received = 0
        self.keep = False
        self.body = bytearray()
        self.closing = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def request(self, path: str, keep: bool) -> asyncio.Future[tuple[int, bytes, int]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.headers_done, self.received, self.keep = False, 0, keep
        self.buffer.clear()
        self.body = bytearray()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if not self.headers_done:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            rest = bytes(self.buffer[end + 4 :])
            self.buffer.clear()
            self.status = int(head[0].split(" ", 2)[1])
            self.length = -1
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    self.length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    self.closing = True
            if self.length < 0:
                self._fail("no Content-Length")
                return
            self.headers_done = True
            data = rest
        self.received += len(data)
        if self.keep:
            self.body += data
        if self.received >= self.length:
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, bytes(self.body), self.received))

    def _fail(self, why: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(why))
        if self.transport is not None:
            self.transport.close()


class Viewer:
    def __init__(self, host: str, port: int, base: str) -> None:
        self.host, self.port, self.base = host, port, base
        self.client: _Client | None = None
        self.missed = 0
        self.next_seq: int | None = None
        self.init_done = False

    async def get(self, path: str, keep: bool = False) -> tuple[int, bytes]:
        if self.client is None or self.client.lost or self.client.closing:
            if self.client is not None and self.client.transport is not None:
                self.client.transport.close()
            loop = asyncio.get_running_loop()
            _, self.client = await loop.create_connection(_Client, self.host, self.port)
        status, body, _ = await asyncio.wait_for(self.client.request(path, keep), REQUEST_TIMEOUT_S)
        return status, body


def parse_playlist(text: str) -> tuple[float, int, str | None, list[tuple[int, str]]]:
    """(target duration, media sequence, init URI, [(sequence, URI)]) of a media playlist."""
    target, sequence, init = 1.0, 0, None
    uris: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            found = re.search(r'URI="([^"]+)"', line)
            init = found.group(1) if found else None
        elif line and not line.startswith("#"):
            uris.append(line)
    return target, sequence, init, [(sequence + i, uri) for i, uri in enumerate(uris)]


async def _viewers(
    port: int, count: int, ramp: float, since: float, until: float, first: int
) -> dict[str, Any]:
    base = f"/hls/{show_id()}/"
    playlist_ms: list[float] = []
    segment_ms: list[float] = []
    failures: list[str] = []
    totals = {"segments": 0, "playlists": 0, "bytes": 0, "failed_total": 0}
    behind: set[int] = set()
    distinct: set[int] = set()
    lag: list[float] = []

    def failed(at: float, why: str) -> None:
        totals["failed_total"] += 1
        if since <= at < until:
            failures.append(why)

    async def run(number: int) -> None:
        await asyncio.sleep(ramp * number / max(1, count))
        viewer = Viewer("127.0.0.1", port, base)
        while time.time() < until:
            began = time.time()
            t0 = time.perf_counter()
            interval = 0.5
            try:
                status, body = await viewer.get(base + "index.m3u8", keep=True)
            except (OSError, HttpError, TimeoutError) as error:
                failed(began, f"playlist: {error!r}")
                await asyncio.sleep(interval)
                continue
            if since <= began < until:
                playlist_ms.append((time.perf_counter() - t0) * 1000)
                totals["playlists"] += 1
            if status != 200:
                failed(began, f"playlist status {status}")
                await asyncio.sleep(interval)
                continue
            target, media_sequence, init, segments = parse_playlist(body.decode())
            interval = target / 2
            if init is not None and not viewer.init_done:
                with contextlib.suppress(OSError, HttpError, TimeoutError):
                    status, _ = await viewer.get(base + init)
                    viewer.init_done = status == 200
                if not viewer.init_done:
                    failed(time.time(), "init")
            if segments:
                last = segments[-1][0]
                if viewer.next_seq is None:
                    viewer.next_seq = max(media_sequence, last - 2)
                if viewer.next_seq < media_sequence:  # expired before we fetched it
                    viewer.missed += media_sequence - viewer.next_seq
                    if since <= began < until:
                        behind.add(number)
                    viewer.next_seq = media_sequence
                for seq, uri in segments:
                    if seq < viewer.next_seq:
                        continue
                    at = time.time()
                    t1 = time.perf_counter()
                    try:
                        status, _ = await viewer.get(base + uri)
                    except (OSError, HttpError, TimeoutError) as error:
                        failed(at, f"segment: {error!r}")
                        break
                    if status != 200:
                        failed(at, f"segment {uri} status {status}")
                        break
                    viewer.next_seq = seq + 1
                    if since <= at < until:
                        segment_ms.append((time.perf_counter() - t1) * 1000)
                        totals["segments"] += 1
                        distinct.add(seq)
            rest = interval - (time.time() - began)
            if rest > 0:
                await asyncio.sleep(rest)
        if viewer.client is not None and viewer.client.transport is not None:
            viewer.client.transport.close()

    async def watch_lag() -> None:
        while time.time() < until:
            before = time.monotonic()
            await asyncio.sleep(0.05)
            if time.time() >= since:
                lag.append((time.monotonic() - before - 0.05) * 1000)

    cpu0 = time.process_time()
    await asyncio.gather(watch_lag(), *(run(first + i) for i in range(count)))
    return {
        "playlist_ms": playlist_ms,
        "segment_ms": segment_ms,
        "failures": failures[:20],
        "failed": len(failures),
        "behind": sorted(behind),
        "distinct_segments": sorted(distinct),
        "loop_lag_p95_ms": percentile(lag, 0.95),
        "cpu_s": time.process_time() - cpu0,
        **totals,
    }


def viewers_main(argv: list[str]) -> int:
    port, count, first = int(argv[0]), int(argv[1]), int(argv[5])
    ramp, since, until = float(argv[2]), float(argv[3]), float(argv[4])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(_viewers(port, count, ramp, since, until, first))
    out = Path(argv[6])
    out.with_suffix(".tmp").write_text(json.dumps(result))
    out.with_suffix(".tmp").replace(out)
    return 0


# -- the Chromium viewer --------------------------------------------------------------------

PAGE = """<!doctype html>
<meta charset="utf-8"><title>hls bench</title>
<video id="v" muted autoplay playsinline width="640" height="480"></video>
%(load)s
const video = document.getElementById("v");
const canvas = document.createElement("canvas");
canvas.width = 640; canvas.height = 16;
const ctx = canvas.getContext("2d", { willReadFrequently: true });
window.samples = [];
window.hlsErrors = [];
function onFrame(now, meta) {
  ctx.drawImage(video, 0, 0, 640, 480, 0, 0, 640, 480);
  const row = ctx.getImageData(0, 8, 256, 1).data;
  let index = 0;
  for (let bit = 0; bit < 16; bit++) {
    let sum = 0;
    for (let x = bit * 16 + 4; x < (bit + 1) * 16 - 4; x++) sum += row[x * 4];
    if (sum / 8 > 128) index |= 1 << bit;
  }
  const shown = performance.timeOrigin + (meta.expectedDisplayTime || now);
  window.samples.push([index, shown, video.currentTime]);
  video.requestVideoFrameCallback(onFrame);
}
video.requestVideoFrameCallback(onFrame);
const config = JSON.parse(decodeURIComponent(location.hash.slice(1) || "%7B%7D"));
const hls = new Hls(config);
hls.on(Hls.Events.ERROR, (e, data) =>
  window.hlsErrors.push(data.details + (data.fatal ? " fatal" : "")));
hls.loadSource(config.src);
hls.attachMedia(video);
video.play().catch(() => {});
</script>
"""


def viewer_player() -> dict[str, Any]:
    """The viewer page's own hls.js settings (web/static/hls_player.js)."""
    text = (ROOT / "web" / "static" / "hls_player.js").read_text()
    found: dict[str, Any] = json.loads(text.split("HLS_PLAYER = ", 1)[1].split(";", 1)[0])
    return found


# The Chromium pages' hls.js configs: the viewer page's (two target durations behind the
# live edge, playing up to 1.5x fast to get back there after a late start or a stall); and
# hls.js's defaults (three target durations, never faster than real time).
PLAYERS: list[dict[str, Any]] = [viewer_player(), {}]
LOAD_CLASSIC = '<script src="hls.js"></script>\n<script>'
LOAD_MODULE = '<script type="module">\nimport Hls from "./hls.mjs";'


def player_page(hls_script: Path) -> str:
    """The page, for hls.js as a classic script (hls.min.js) or a module (hls.min.mjs)."""
    return PAGE.replace("%(load)s", LOAD_MODULE if hls_script.suffix == ".mjs" else LOAD_CLASSIC)


def hls_js(cache: Path) -> Path:
    """hls.js: the copy the viewer page serves (web/static/vendor), else ``npm pack
    hls.js`` once into ``cache`` (npm's own registry client), nothing from a CDN."""
    for name in ("hls.min.mjs", "hls.min.js"):
        vendored = ROOT / "web" / "static" / "vendor" / name
        if vendored.exists():
            return vendored
    target = cache / "hls.min.js"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("hls.js is needed for the Chromium viewer: install npm")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "pack", "hls.js@1", "--silent", "--pack-destination", work],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        tarball = Path(work) / out.stdout.strip().splitlines()[-1]
        subprocess.run(  # noqa: S603
            ["tar", "-xzf", str(tarball), "-C", work, "package/dist/hls.min.js"],  # noqa: S607
            check=True,
        )
        shutil.copy(Path(work) / "package" / "dist" / "hls.min.js", target)
    return target


def chromium_latency(
    page_url: str, configs: list[dict[str, Any]], seconds: float, sent_file: Path
) -> list[dict[str, Any]]:
    """Play each config's ``src`` with hls.js (that config) in a page of one Chromium, the
    pages at once, for ``seconds`` once they play; glass to glass of every presented frame
    (its pixels' index against its send time), per page."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = []
            for config in configs:
                page = browser.new_page()
                page.goto(page_url + "#" + json.dumps(config))
                pages.append(page)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(p.evaluate("window.samples.length") > 30 for p in pages):
                    break
                time.sleep(0.25)
            started = [p.evaluate("window.samples.length") for p in pages]
            time.sleep(seconds)
            played = [
                (p.evaluate("window.samples")[n:], p.evaluate("window.hlsErrors"))
                for p, n in zip(pages, started, strict=True)
            ]
        finally:
            browser.close()
    sent = read_send_times(sent_file)
    by_bits: dict[int, int] = {}
    for index in sorted(sent):  # the index is drawn with 16 bits: the newest with those
        by_bits[index & 0xFFFF] = index
    results = []
    for config, (samples, errors) in zip(configs, played, strict=True):
        latencies = [
            shown / 1000 - sent[by_bits[int(index)]]
            for index, shown, _ in samples
            if int(index) in by_bits
        ]
        plausible = [x for x in latencies if 0 < x < 60]
        results.append(
            {
                "config": {k: v for k, v in config.items() if k != "src"},
                "frames": len(samples),
                "frames_matched": len(plausible),
                "p50_ms": round(statistics.median(plausible) * 1000, 1) if plausible else None,
                "p95_ms": round(percentile(plausible, 0.95) * 1000, 1) if plausible else None,
                "errors": errors[:10],
                "seconds": round(seconds, 1),
            }
        )
    return results


# -- the orchestrator ---------------------------------------------------------------------------


@contextlib.contextmanager
def _started() -> Iterator[list[subprocess.Popen[Any]]]:
    procs: list[subprocess.Popen[Any]] = []
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            stop(proc, signal.SIGTERM, timeout_s=10)


def _wait_playlist(port: int, proc: subprocess.Popen[Any], timeout: float = 60) -> str:
    import httpx

    url = f"http://127.0.0.1:{port}/hls/{show_id()}/index.m3u8"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the origin exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and len(parse_playlist(response.text)[3]) >= 3:
                return response.text
        time.sleep(0.25)
    raise RuntimeError(f"{url} had no playlist of 3 segments within {timeout} s")


def _wait_listening(port: int, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() == 3:
            raise RuntimeError("this checkout's server packages no HLS yet: try --origin standin")
        if proc.poll() is not None:
            raise RuntimeError(f"the origin exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the origin did not listen within {timeout} s")
        time.sleep(0.1)


def _module(*args: str, **popen: Any) -> subprocess.Popen[Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return spawn([sys.executable, "-m", "benches.hls", *args], env=env, **popen)


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ[SHOW_ENV] = f"bench-hls-{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="liveshop-bench-hls-") as tmp,
        contextlib.ExitStack() as stack,
        _started() as procs,
    ):
        work = Path(tmp)
        origin_port, nginx_port = free_ports(2)
        sent_file = work / "sent.json"
        origin_pids: list[int] = []
        if args.origin == "standin":
            origin = _module("_standin", str(origin_port), str(work / "media"), str(sent_file))
            procs.append(origin)
            origin_pids.append(origin.pid)
        else:
            redis_url = stack.enter_context(redis_url_for(work, os.environ.get("REDIS_URL")))
            server = _module("_serve_app", str(origin_port), redis_url)
            procs.append(server)
            origin_pids.append(server.pid)
            _wait_listening(origin_port, server)
            publisher = _module(
                "_publish",
                f"http://127.0.0.1:{origin_port}/whip/{show_id()}",
                str(sent_file),
                str(args.ramp + args.window + 120),
                str(args.bitrate),
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(publisher)
            origin = server
        print("origin started, waiting for its playlist", flush=True)
        playlist = _wait_playlist(origin_port, origin)
        segment_duration = parse_playlist(playlist)[0]
        static = work / "www"
        static.mkdir()
        if args.chromium:
            script = hls_js(Path.home() / ".cache" / "liveshop-bench")
            shutil.copy(script, static / ("hls.mjs" if script.suffix == ".mjs" else "hls.js"))
            (static / "player.html").write_text(player_page(script))
        with running_nginx(
            work / "nginx", nginx_port, origin_port, args.nginx_workers, static
        ) as nx:
            print(
                f"nginx on {nginx_port} (pid {nx.process.pid}), origin on {origin_port}", flush=True
            )
            start = time.time() + 1.0
            since = start + args.ramp + 2 * segment_duration
            until = since + args.window
            processes = max(1, min(args.processes, args.viewers))
            share = [
                args.viewers // processes + (i < args.viewers % processes) for i in range(processes)
            ]
            viewers = []
            first = 0
            for count in share:
                viewers.append(
                    _module(
                        "_viewers",
                        str(nginx_port),
                        str(count),
                        str(args.ramp),
                        str(since),
                        str(until),
                        str(first),
                        str(work / f"viewers-{first}.json"),
                    )
                )
                first += count
            procs.extend(viewers)
            print(
                f"{args.viewers} viewers in {processes} processes, ramp {args.ramp} s, "
                f"window {args.window} s",
                flush=True,
            )
            time.sleep(max(0.0, since - time.time()))
            nginx_pids = nx.pids()
            load_pids = [v.pid for v in viewers]
            publisher_pids = [p.pid for p in procs if p not in viewers and p.pid not in origin_pids]

            def cpu(pids: list[int]) -> float:
                return sum(cpu_seconds(pid) for pid in pids)

            marks = [cpu(origin_pids), cpu(nginx_pids), cpu(load_pids), cpu(publisher_pids)]
            box0, t0 = box_busy_seconds(), time.monotonic()
            print("window started", flush=True)
            chromium: list[dict[str, Any]] = []
            src = f"http://127.0.0.1:{nginx_port}/hls/{show_id()}/index.m3u8"
            page_url = f"http://127.0.0.1:{nginx_port}/bench/player.html"
            if args.chromium:
                try:
                    chromium = chromium_latency(
                        page_url,
                        [{"src": src, **player} for player in args.players],
                        min(args.chromium_seconds, max(1.0, until - time.time() - 8)),
                        sent_file,
                    )
                except Exception as error:  # reported, not fatal: the HTTP figures stand
                    chromium = [{"error": repr(error)}]
                print(f"chromium: {json.dumps(chromium)}", flush=True)
            time.sleep(max(0.0, until - time.time()))
            elapsed = time.monotonic() - t0
            ends = [cpu(origin_pids), cpu(nginx_pids), cpu(load_pids), cpu(publisher_pids)]
            box = (box_busy_seconds() - box0) / elapsed
            print("window ended", flush=True)
            results = []
            for proc in viewers:
                if proc.wait(60) != 0:
                    raise RuntimeError(f"a viewer process exited with {proc.returncode}")
            results = [json.loads(p.read_text()) for p in sorted(work.glob("viewers-*.json"))]
            if len(results) != len(viewers):
                raise RuntimeError("a viewer process wrote no result")
            time.sleep(1.5)  # nginx flushes its access log every second
            log = origin_requests(nx.access_log.read_text().splitlines(), since, until)
        cores = [(b - a) / elapsed for a, b in zip(marks, ends, strict=True)]
    playlist_ms = [x for r in results for x in r["playlist_ms"]]
    segment_ms = [x for r in results for x in r["segment_ms"]]
    distinct = {s for r in results for s in r["distinct_segments"]}
    summary: dict[str, Any] = {
        "viewers": args.viewers,
        "window": args.window,
        "origin": args.origin,
        "segment_duration_s": segment_duration,
        "origin_requests_per_segment": round(log.origin_requests_per_segment, 3),
        "origin_requests": log.origin,
        "nginx_requests": log.requests,
        "segments_fetched": sum(r["segments"] for r in results),
        "distinct_segments": len(distinct),
        "segment_fetch_p50_ms": round(percentile(segment_ms, 0.5), 1),
        "segment_fetch_p95_ms": round(percentile(segment_ms, 0.95), 1),
        "playlist_fetch_p50_ms": round(percentile(playlist_ms, 0.5), 1),
        "playlist_fetch_p95_ms": round(percentile(playlist_ms, 0.95), 1),
        "failed_requests": sum(r["failed"] for r in results),
        "failed_requests_whole_run": sum(r["failed_total"] for r in results),
        "failures_sample": [f for r in results for f in r["failures"]][:5],
        "nginx_errors": log.errors,
        "behind_viewers": sum(len(r["behind"]) for r in results),
        "nginx_bytes_per_s": round(log.bytes_sent / args.window),
        "nginx_mbit_per_s": round(log.bytes_sent * 8 / args.window / 1e6, 1),
        # (the first player's; every player's figures and hls.js config under "chromium")
        "hls_glass_to_glass_p50_ms": chromium[0].get("p50_ms") if chromium else None,
        "hls_glass_to_glass_p95_ms": chromium[0].get("p95_ms") if chromium else None,
        "hls_player": chromium[0].get("config") if chromium else None,
        "chromium": chromium,
        "origin_cores": round(cores[0], 3),
        "nginx_cores": round(cores[1], 3),
        "nginx_workers": args.nginx_workers,
        "load_generator_cores": round(cores[2], 3),
        "load_generator_processes": len(results),
        "load_generator_loop_lag_p95_ms": round(max(r["loop_lag_p95_ms"] for r in results), 1),
        "publisher_cores": round(cores[3], 3),
        "box_busy_cores": round(box, 3),
        # Chromium, the bench itself and whatever else ran on the machine
        "other_cores": round(box - sum(cores), 3),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
    }
    return summary


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_standin":
        return standin(int(argv[1]), Path(argv[2]), Path(argv[3]))
    if argv and argv[0] == "_serve_app":
        return serve_app(int(argv[1]), argv[2])
    if argv and argv[0] == "_publish":
        asyncio.run(_publish(argv[1], Path(argv[2]), float(argv[3]), int(argv[4])))
        return 0
    if argv and argv[0] == "_viewers":
        return viewers_main(argv[1:])
    parser = argparse.ArgumentParser(prog="liveshop bench hls", description=__doc__)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which viewers start")
    parser.add_argument("--processes", type=int, default=2, help="viewer processes")
    parser.add_argument("--origin", choices=["app", "standin"], default="app")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--bitrate", type=int, default=1_500_000)
    parser.add_argument("--no-chromium", dest="chromium", action="store_false")
    parser.add_argument("--chromium-seconds", type=float, default=10.0)
    parser.add_argument(
        "--player",
        dest="players",
        action="append",
        type=json.loads,
        help="an hls.js config (JSON) for one Chromium page; repeat for more pages at once; the "
        f"first is the headline figure (default: {json.dumps(PLAYERS)})",
    )
    args = parser.parse_args(argv)
    args.players = args.players or PLAYERS
    summary = run(args)
    print(json.dumps(summary), flush=True)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C: its children with it
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
    sys.exit(130)
