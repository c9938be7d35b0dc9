"""``liveshop bench relay``: CPU per viewer of the pass-through relay, against MediaRelay.

Everything runs on 127.0.0.1 in separate processes: the server (uvicorn), one WHIP
publisher (640x480, 30 fps, about 1.5 Mbit/s of H.264 with a 10 s keyframe interval that
ignores keyframe requests, like OBS; every frame carries its send time in an SEI NAL) and
one process with all WHEP viewers. Viewers do not decode: their receivers hand over the
encoded frames (the same hook as the relay's), which they count and read the send time
from. Server CPU is read from /proc/<pid>/stat (utime + stime) over a steady window.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOOPBACK = ["127.0.0.1"]


# -- measuring ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def box_busy_seconds() -> float:
    """CPU time spent busy by the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def udp_receive_buffer_errors() -> int:
    """Datagrams the kernel dropped for a full socket receive buffer, machine-wide: a
    reader (a viewer process, a server) that did not keep up."""
    with open("/proc/net/snmp") as snmp:
        rows = [line.split() for line in snmp if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# -- the server process -----------------------------------------------------------------------


class OpenGate:
    """Anyone may publish or watch; stream states are ignored."""

    async def authorize_publisher(self, show_id: str, bearer: str | None) -> str:
        return bearer or "host"

    async def publisher_allowed(self, show_id: str, identity: str) -> bool:
        return True

    async def authorize_viewer(self, show_id: str, bearer: str | None) -> str:
        return bearer or "viewer"

    async def video_state_changed(self, show_id: str, state: Any) -> None:
        return None

    async def video_health_reported(self, show_id: str, identity: str, health: Any) -> None:
        return None


def _baseline_routes() -> list[Any]:
    """aiortc's MediaRelay: one decode of the host, one encode per viewer."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from signaling.aiortc_hooks import ice_host_addresses

    relay = MediaRelay()
    source: dict[str, Any] = {}
    peers: set[Any] = set()

    async def answer(pc: Any, request: Request) -> Response:
        await pc.setRemoteDescription(
            RTCSessionDescription((await request.body()).decode(), "offer")
        )
        if "track" in source and request.url.path.startswith("/base/whep"):
            pc.addTrack(relay.subscribe(source["track"], buffered=False))
        with ice_host_addresses(LOOPBACK):
            await pc.setLocalDescription(await pc.createAnswer())
        return Response(
            pc.localDescription.sdp,
            201,
            media_type="application/sdp",
            headers={"Location": f"{request.url.path}/{id(pc)}"},
        )

    async def endpoint(request: Request) -> Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.add(pc)
        pc.on("track", lambda track: source.setdefault("track", track))
        return await answer(pc, request)

    return [
        Route("/base/whip/{show_id}", endpoint, methods=["POST"]),
        Route("/base/whep/{show_id}", endpoint, methods=["POST"]),
    ]


def serve(port: int, mode: str, address: str = "127.0.0.1") -> int:
    import uvicorn
    from starlette.applications import Starlette

    from signaling.config import SignalingConfig
    from signaling.service import SignalingService

    if mode == "baseline":
        app = Starlette(routes=_baseline_routes())
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
        return 0
    # (a comma-separated list: every one is an ICE host address; the server then listens on
    # all addresses of its network namespace)
    addresses = address.split(",")
    host = addresses[0] if len(addresses) == 1 else "0.0.0.0"  # noqa: S104 - its own netns
    service = SignalingService(SignalingConfig(ice_host_addresses=addresses), OpenGate())
    # --processes 2: every server shares one Redis and places viewers past its budget on
    # the other (signaling.placement, as the app does)
    redis_url = os.environ.get("LIVESHOP_BENCH_REDIS")
    placement = None
    if redis_url:
        from signaling.placement import VideoPlacement

        placement = VideoPlacement(
            service,
            viewer_budget=int(os.environ["LIVESHOP_BENCH_BUDGET"]),
            secret=os.environ["LIVESHOP_BENCH_SECRET"].encode(),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        import redis.asyncio as aioredis

        from config.runtime import tune_gc  # as `liveshop serve` does

        tune_gc()
        redis = None
        if placement is not None:
            redis = aioredis.Redis.from_url(str(redis_url), decode_responses=True)
            placement.start(redis)
        yield
        if placement is not None:
            await placement.close()
        await service.close()
        if redis is not None:
            await redis.aclose()

    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def stats(request: Request) -> JSONResponse:
        figures: dict[str, Any] = dict(service.stats())
        if placement is not None:
            if request.query_params.get("reset"):  # the window starts: its hops only
                placement.clear_hop_samples()
            edges = placement.edge_stats()
            hops = edges.pop("hop_ms")
            figures.update(
                edges,
                hop_p95_ms=p95(hops) if hops else None,
                hop_p50_ms=statistics.median(hops) if hops else None,
                hop_samples=len(hops),
            )
        return JSONResponse(figures)

    signaling_routes = service.routes() if placement is None else placement.routes()
    routes = [*signaling_routes, Route("/bench/stats", stats)]
    app = Starlette(routes=routes, lifespan=lifespan)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


# -- the publisher process ----------------------------------------------------------------------


async def _offer(
    url: str,
    pc: Any,
    addresses: list[str] | None = None,
    token: str = "bench",  # noqa: S107
) -> None:
    import httpx
    from aiortc import RTCSessionDescription

    from signaling.aiortc_hooks import ice_host_addresses

    with ice_host_addresses(addresses or LOOPBACK):
        await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            url,
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))


def _prefer_h264(transceiver: Any) -> None:
    from aiortc import RTCRtpSender

    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in caps if c.mimeType.lower() == "video/h264"][:1]
    transceiver.setCodecPreferences(h264)


async def _publish(
    url: str,
    seconds: float,
    gop: int,
    bitrate: int,
    addresses: list[str] | None = None,
    token: str = "bench",  # noqa: S107
) -> None:
    """An OBS-like H.264 publisher (keyframe requests ignored, one keyframe per ``gop``
    frames) for ``seconds``; prints "published" once answered, then its rate."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from benches.synthetic import EncodedPatternTrack

    track = EncodedPatternTrack(
        "h264", 640, 480, 30, gop=gop, bitrate=bitrate, timestamps=True, noise=True
    )
    sent = {"bytes": 0}
    recv = track.recv

    async def counting_recv() -> Any:
        packet = await recv()
        sent["bytes"] += packet.size
        return packet

    track.recv = counting_recv  # type: ignore[method-assign]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _prefer_h264(pc.addTransceiver(track, direction="sendonly"))
    await _offer(url, pc, addresses, token)
    print("published", flush=True)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await asyncio.sleep(2)
        kbps = sent["bytes"] * 8 / 1000 / (time.monotonic() - start)
        print(f"kbps {kbps:.1f}", flush=True)
    await pc.close()


# -- the viewers process ------------------------------------------------------------------------


class CountingViewer:
    """A WHEP viewer that only counts, so that one process can hold 150 of them here.

    A *probe* viewer reads each RTP packet after SRTP decryption: its marker bit (end of a
    frame) and the SEI send time (latency); packets never reach aiortc's jitter buffer or
    decoder. Other viewers count RTP packets and frames (marker bits are in the clear
    RTP header) as the datagrams arrive, without decrypting them. The server does the full
    work (packetize, encrypt, send) for every viewer either way. Bench-only private hooks.
    """

    def __init__(self, probe: bool = True) -> None:
        self.probe = probe
        self.frames = 0
        self.packets = 0
        self.latencies: list[float] = []
        self.first_frame_s: float | None = None
        self.answered_s: float | None = None
        self.connected_s: float | None = None
        self.began = 0.0
        self.pc: Any = None

    async def start(self, url: str, h264: bool) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if h264:
            _prefer_h264(transceiver)
        # Bench-only private hook: the DTLS transport hands decrypted RTP to this method.
        transceiver.receiver.transport._handle_rtp_data = self._on_rtp
        self.began = time.monotonic()

        @self.pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        def on_state() -> None:
            if self.pc.connectionState == "connected" and self.connected_s is None:
                self.connected_s = time.monotonic() - self.began

        await _offer(url, self.pc)
        self.answered_s = time.monotonic() - self.began
        if not self.probe:
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.datagram_received = self._fast_path(protocol.datagram_received)

    def _fast_path(self, original: Any) -> Any:
        def datagram_received(data: bytes, addr: Any) -> None:
            # RTP (not RTCP: payload types 192-208), counted without decrypting.
            if len(data) > 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 208:
                self.packets += 1
                if data[1] & 0x80:
                    self.frames += 1
                    if self.first_frame_s is None:
                        self.first_frame_s = time.monotonic() - self.began
                return
            original(data, addr)

        return datagram_received

    async def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        from benches.synthetic import SEI_UUID, read_sei_timestamp

        self.packets += 1
        if SEI_UUID in data:
            sent = read_sei_timestamp(data)
            if sent is not None:
                self.latencies.append(time.time() - sent)
        if len(data) > 1 and data[1] & 0x80:
            self.frames += 1
            if self.first_frame_s is None:
                self.first_frame_s = time.monotonic() - self.began

    async def close(self) -> None:
        await asyncio.shield(self.pc.close())


async def _view(
    url: str,
    count: int,
    late: int,
    window: float,
    settle: float,
    probes: int = 10,
    first_relay: int = 0,
) -> None:
    """``first_relay``: with two servers, about how many viewers the first (the origin)
    takes before the others go to the edge; probes are then spread over both and their
    latencies told apart by start order (with a margin for the concurrent starts)."""
    h264 = True
    spread = max(1, count // probes) if first_relay else 1
    viewers = [CountingViewer(probe=i % spread == 0 and i // spread < probes) for i in range(count)]
    gate = asyncio.Semaphore(8)

    async def start(viewer: CountingViewer) -> None:
        async with gate:
            await viewer.start(url, h264)

    await asyncio.gather(*(start(v) for v in viewers))
    # Every viewer starts with the cached group of pictures (up to a keyframe interval of
    # frames, sent as fast as the server can); measure once those bursts are over.
    await asyncio.sleep(settle)
    packets_before = sum(v.packets for v in viewers)
    marks = [v.frames for v in viewers]
    lat_marks = [len(v.latencies) for v in viewers]
    print("window-start", flush=True)
    started = time.monotonic()
    lags: list[float] = []
    while time.monotonic() - started < window:
        before = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append(time.monotonic() - before - 0.05)
    elapsed = time.monotonic() - started
    print("window-end", flush=True)
    packets_after = sum(v.packets for v in viewers)
    received = [v.frames - m for v, m in zip(viewers, marks, strict=True)]
    latencies = [x for v, m in zip(viewers, lat_marks, strict=True) for x in v.latencies[m:]]
    margin = 16
    on_origin = [
        x
        for i, (v, m) in enumerate(zip(viewers, lat_marks, strict=True))
        if i < first_relay - margin
        for x in v.latencies[m:]
    ]
    on_edge = [
        x
        for i, (v, m) in enumerate(zip(viewers, lat_marks, strict=True))
        if first_relay and i >= first_relay + margin
        for x in v.latencies[m:]
    ]
    expected = 30 * elapsed
    late_viewers = []
    for _ in range(late):  # joiners in the middle of a 10 s group of pictures
        viewer = CountingViewer()
        await viewer.start(url, h264)
        late_viewers.append(viewer)
        await asyncio.sleep(0.4)
    await asyncio.sleep(1.0)
    first = [v.first_frame_s * 1000 for v in late_viewers if v.first_frame_s is not None]
    answered = [v.answered_s * 1000 for v in late_viewers if v.answered_s is not None]
    connected = [v.connected_s * 1000 for v in late_viewers if v.connected_s is not None]
    after_connect = [
        (v.first_frame_s - v.connected_s) * 1000
        for v in late_viewers
        if v.first_frame_s is not None and v.connected_s is not None
    ]
    result = {
        "frozen_viewers": sum(1 for r in received if r < 0.9 * expected),
        "frames_per_viewer_mean": statistics.mean(received) / elapsed if received else 0,
        "packets_out_per_s": (packets_after - packets_before) / elapsed,
        "latency_p95_ms": p95(latencies) * 1000,
        "latency_p50_ms": (statistics.median(latencies) * 1000) if latencies else float("nan"),
        "first_frame_p95_ms": p95(first),
        "late_answer_p95_ms": p95(answered),
        "late_connected_p95_ms": p95(connected),
        "first_frame_after_connect_p95_ms": p95(after_connect),
        "late_joiners": late,
        "late_joiners_without_frame": late - len(first),
        "viewer_process_loop_lag_p95_ms": p95(lags) * 1000,
        "origin_viewers_latency_p95_ms": p95(on_origin) * 1000,
        "edge_viewers_latency_p95_ms": p95(on_edge) * 1000,
    }
    print(json.dumps(result), flush=True)
    await asyncio.gather(*(v.close() for v in viewers + late_viewers))


# -- the orchestrator -----------------------------------------------------------------------------


def _server_stats(port: int, mode: str, reset: bool = False) -> dict[str, Any]:
    if mode == "baseline":
        return {}
    import httpx

    url = f"http://127.0.0.1:{port}/bench/stats" + ("?reset=1" if reset else "")
    stats: dict[str, Any] = httpx.get(url, timeout=10).json()
    return stats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "benches.relay", *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _wait_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"process {process.args!r} ended before printing {prefix!r}")


def _wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("the bench server did not start")


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            _stop(process)


def run_case(
    mode: str,
    viewers: int,
    late: int,
    window: float,
    args: argparse.Namespace,
    processes: int = 1,
    redis_url: str = "",
) -> dict[str, Any]:
    ports = [_free_port() for _ in range(processes)]
    prefix = "/base" if mode == "baseline" else ""
    budget = viewers // 2 + late if processes > 1 else 0
    if processes > 1:
        os.environ.update(
            LIVESHOP_BENCH_REDIS=redis_url,
            LIVESHOP_BENCH_BUDGET=str(budget),
            LIVESHOP_BENCH_SECRET=secrets.token_hex(16),
        )
    with _processes() as started:
        servers = []
        for index, port in enumerate(ports):
            os.environ["LIVESHOP_BENCH_CPU"] = str(index)
            servers.append(_spawn("_serve", str(port), mode))
            started.append(servers[-1])
            _wait_ready(port)
        os.environ.pop("LIVESHOP_BENCH_REDIS", None)
        time.sleep(0.5 if processes > 1 else 0)  # (each has said it is alive)
        base = f"http://127.0.0.1:{ports[0]}{prefix}"
        # the viewers ask the last server: it hands the first to the origin, then serves
        view_base = f"http://127.0.0.1:{ports[-1]}{prefix}"
        publisher = _spawn(
            "_publish", f"{base}/whip/bench", str(window + 60), str(args.gop), str(args.bitrate)
        )
        started.append(publisher)
        _wait_line(publisher, "published")
        time.sleep(1.0)
        settle = str(args.gop / 30 + 2)
        view = _spawn(
            "_view",
            f"{view_base}/whep/bench",
            str(viewers),
            str(late),
            str(window),
            settle,
            str(budget),
        )
        started.append(view)
        _wait_line(view, "window-start")
        stats_start = [_server_stats(port, mode, reset=True) for port in ports]
        cpus0, t0 = [cpu_seconds(server.pid) for server in servers], time.monotonic()
        box0 = box_busy_seconds()
        drops0 = udp_receive_buffer_errors()
        load0 = cpu_seconds(view.pid) + cpu_seconds(publisher.pid)
        _wait_line(view, "window-end")
        cpus1, t1 = [cpu_seconds(server.pid) for server in servers], time.monotonic()
        box1 = box_busy_seconds()
        drops1 = udp_receive_buffer_errors()
        load1 = cpu_seconds(view.pid) + cpu_seconds(publisher.pid)
        stats_all = [_server_stats(port, mode) for port in ports]
        result: dict[str, Any] = json.loads(_wait_line(view, "{"))
        view.wait(60)
        publisher.terminate()
        assert publisher.stdout is not None
        kbps = [line.split()[1] for line in publisher.stdout if line.startswith("kbps ")]
        result["publisher_kbps"] = float(kbps[-1]) if kbps else None
    stats1 = _sum_stats(stats_all)
    stats0 = _sum_stats(stats_start)
    if processes > 1:
        result["per_process_cores"] = [
            round((b - a) / (t1 - t0), 3) for a, b in zip(cpus0, cpus1, strict=True)
        ]
        result["viewers_per_process"] = [s.get("viewers", 0) for s in stats_all]
        result["hop_latency_p95_ms"] = max(
            (s["hop_p95_ms"] for s in stats_all if s.get("hop_samples")), default=float("nan")
        )
        result["hop_latency_p50_ms"] = max(
            (s["hop_p50_ms"] for s in stats_all if s.get("hop_samples")), default=float("nan")
        )
        result["edges"] = sum(s.get("edges", 0) for s in stats_all)
    cpu0, cpu1 = sum(cpus0), sum(cpus1)
    result["udp_receive_buffer_errors"] = drops1 - drops0
    result["viewers_served_at_window_end"] = sum(s.get("viewers", 0) for s in stats_all)
    result["server_cores"] = (cpu1 - cpu0) / (t1 - t0)
    result["server_window"] = {
        "keyframe_skips": stats1.get("viewer_keyframe_skips", 0)
        - stats0.get("viewer_keyframe_skips", 0),
        "frames_dropped": stats1.get("viewer_frames_dropped", 0)
        - stats0.get("viewer_frames_dropped", 0),
        "frames_queued_at_end": stats1.get("viewer_frames_queued", 0),
    }
    result["load_generator_cores"] = (load1 - load0) / (t1 - t0)
    result["other_processes_cores"] = (box1 - box0) / (t1 - t0) - (
        result["server_cores"] + result["load_generator_cores"]
    )
    result["cores_per_viewer"] = result["server_cores"] / viewers
    return result


def _sum_stats(stats: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("viewer_keyframe_skips", "viewer_frames_dropped", "viewer_frames_queued")
    return {key: sum(int(s.get(key, 0)) for s in stats) for key in keys}


def _pin(role: str) -> None:
    """Server on CPU 0, load generators on the others, so they do not take its time. With
    two servers, the second on CPU 1, and the load generators share both."""
    cpus = sorted(os.sched_getaffinity(0))
    if os.environ.get("LIVESHOP_BENCH_PIN") == "2" and len(cpus) >= 2:
        if role == "_serve":
            os.sched_setaffinity(0, {cpus[int(os.environ.get("LIVESHOP_BENCH_CPU", "0"))]})
        return
    if os.environ.get("LIVESHOP_BENCH_PIN") == "1" and len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]} if role == "_serve" else set(cpus[1:]))


def main(argv: list[str]) -> int:
    if argv and argv[0].startswith("_"):
        _pin(argv[0])
    if argv and argv[0] == "_serve":
        return serve(int(argv[1]), argv[2], *argv[3:4])
    if argv and argv[0] == "_publish":  # URL SECONDS GOP BITRATE [ADDRESS [TOKEN]]
        addresses = argv[5:6] or None
        token = argv[6] if len(argv) > 6 else "bench"
        asyncio.run(_publish(argv[1], float(argv[2]), int(argv[3]), int(argv[4]), addresses, token))
        return 0
    if argv and argv[0] == "_view":  # URL COUNT LATE WINDOW SETTLE [FIRST_RELAY]
        first_relay = int(argv[6]) if len(argv) > 6 else 0
        asyncio.run(
            _view(
                argv[1],
                int(argv[2]),
                int(argv[3]),
                float(argv[4]),
                float(argv[5]),
                first_relay=first_relay,
            )
        )
        return 0

    parser = argparse.ArgumentParser(prog="liveshop bench relay", description=__doc__)
    parser.add_argument("--viewers", type=int, default=150)
    parser.add_argument("--late-joiners", type=int, default=10)
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--gop", type=int, default=300, help="publisher keyframe interval")
    parser.add_argument("--bitrate", type=int, default=1_500_000)
    parser.add_argument(
        "--loss",
        type=float,
        default=None,
        help="percent of server -> viewer RTP lost, on an impaired link (benches.relay_network)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="Mbit/s bottleneck server -> viewer, on an impaired link (benches.relay_network)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        choices=[1, 2],
        default=1,
        help="2: an origin and an edge relay (one core each), sharing Redis",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--baseline-viewers", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server to CPU 0 and the publisher and viewers to the others",
    )
    args = parser.parse_args(argv)
    if args.loss is not None or args.rate is not None:
        from benches import relay_network

        return relay_network.main(args)
    os.environ["LIVESHOP_BENCH_PIN"] = "0" if args.no_pin else str(args.processes)
    if args.processes > 1:
        import tempfile
        from pathlib import Path

        from benches.processes import redis_url_for

        with (
            tempfile.TemporaryDirectory(prefix="liveshop-bench-") as tmp,
            redis_url_for(Path(tmp), args.redis_url) as redis_url,
        ):
            relay = run_case(
                "relay", args.viewers, args.late_joiners, args.window, args, 2, redis_url
            )
    else:
        relay = run_case("relay", args.viewers, args.late_joiners, args.window, args)
    print("relay:", json.dumps(relay), flush=True)
    summary: dict[str, Any] = {
        "viewers": args.viewers,
        "server_cores": round(relay["server_cores"], 3),
        "cores_per_viewer": round(relay["cores_per_viewer"], 5),
        "packets_out_per_s": round(relay["packets_out_per_s"]),
        "first_frame_p95_ms": round(relay["first_frame_p95_ms"], 1),
        "late_answer_p95_ms": round(relay["late_answer_p95_ms"], 1),
        "late_connected_p95_ms": round(relay["late_connected_p95_ms"], 1),
        "first_frame_after_connect_p95_ms": round(relay["first_frame_after_connect_p95_ms"], 1),
        "latency_p95_ms": round(relay["latency_p95_ms"], 1),
        "latency_p50_ms": round(relay["latency_p50_ms"], 1),
        "frozen_viewers": relay["frozen_viewers"],
        "server_window": relay["server_window"],
        "frames_per_viewer_per_s": round(relay["frames_per_viewer_mean"], 2),
        "publisher_kbps": relay["publisher_kbps"],
        "late_joiners": relay["late_joiners"],
        "viewer_process_loop_lag_p95_ms": round(relay["viewer_process_loop_lag_p95_ms"], 1),
        "late_joiners_without_frame": relay["late_joiners_without_frame"],
        "keyframe_interval_s": args.gop / 30,
        "server_pinned_to_one_core": not args.no_pin,
        "load_generator_cores": round(relay["load_generator_cores"], 3),
        "other_processes_cores": round(relay["other_processes_cores"], 3),
        "processes": args.processes,
        "viewers_served_at_window_end": relay["viewers_served_at_window_end"],
        # (the kernel's, machine-wide: a load generator that cannot keep up drops here, and
        # its viewers then lose their ICE consent and are closed after 30 s)
        "udp_receive_buffer_errors": relay["udp_receive_buffer_errors"],
    }
    if args.processes > 1:
        summary.update(
            viewers_per_process=relay["viewers_per_process"],
            per_process_cores=relay["per_process_cores"],
            hop_latency_p95_ms=round(relay["hop_latency_p95_ms"], 1),
            hop_latency_p50_ms=round(relay["hop_latency_p50_ms"], 1),
            origin_viewers_latency_p95_ms=round(relay["origin_viewers_latency_p95_ms"], 1),
            edge_viewers_latency_p95_ms=round(relay["edge_viewers_latency_p95_ms"], 1),
            edges=relay["edges"],
        )
    if not args.no_baseline:
        baseline = run_case("baseline", args.baseline_viewers, 0, args.window, args)
        print("baseline:", json.dumps(baseline), flush=True)
        summary["baseline_viewers"] = args.baseline_viewers
        summary["baseline_cores_per_viewer"] = round(baseline["cores_per_viewer"], 4)
        summary["baseline_frozen_viewers"] = baseline["frozen_viewers"]
        summary["cheaper_than_baseline_x"] = round(
            baseline["cores_per_viewer"] / relay["cores_per_viewer"], 1
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
