"""``liveshop bench relay --loss PCT --rate MBIT``: what viewers see behind an impaired link.

The relay server and the publisher run in one network namespace, the viewers in another
(``benches.netns.ImpairedLink``): the server -> viewer direction loses ``--loss`` percent
of its SRTP and goes through a ``--rate`` Mbit/s ``tc tbf`` bottleneck; the publisher's
path is loopback. The publisher is ``benches.relay``'s (640x480 H.264, about 1.5 Mbit/s,
a keyframe every ``--gop`` frames, keyframe requests ignored as OBS does; each frame
carries its send time).

Viewers are aiortc peers that do everything a player does before decoding: their
receivers send NACKs (again every ``RENACK_S`` while a packet is missing, as libwebrtc's
NACK module does for Chromium and Safari), PLIs and REMB, their jitter buffers reassemble
the frames; a viewer that gets frames it cannot show asks for a keyframe (a PLI after
``PLI_WAIT_S``, again every ``PLI_WAIT_S`` while it still cannot, as libwebrtc does). A frame
counts as *shown* when it could be decoded: a keyframe, or the frame right after a shown
one (H.264 baseline from x264 refers to the previous frame only). Figures per viewer:

- ``stall_max_ms``: the longest time between two shown frames after the first;
- ``first_frame_ms``: from the WHEP POST to the first shown frame;
- ``live_ms``: from the POST to the first shown frame less than 300 ms old (the viewer is
  live), or null if it never was.

Early viewers join as the publisher starts; late joiners ``--late-at`` seconds into its
first group of pictures (6 s of 10 s by default). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
import sys
import time
from typing import Any

from benches import netns
from benches.relay import _offer, _prefer_h264, _publish, _stop, _wait_line

LIVE_S = 0.3
RENACK_S = 0.05
# A player that cannot decode asks for a keyframe, again while it still cannot (libwebrtc
# waits 200 ms for a decodable frame before each request).
PLI_WAIT_S = 0.2


class ShowingViewer:
    """A WHEP viewer whose receiver works as a player's does; it reads what it could show."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.began = 0.0
        self.shown: list[tuple[float, float]] = []  # (monotonic arrival, age in seconds)
        self.frames = 0
        self.breaks: list[int] = []  # frames skipped where the picture broke
        self.keyframe_requests = 0
        self.first_keyframe_sent: float | None = None
        self.pc: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, url: str, address: str) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        from signaling.aiortc_hooks import receive_encoded

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        _prefer_h264(transceiver)
        receive_encoded(transceiver.receiver)  # frames as the jitter buffer completes them
        self.began = time.monotonic()
        await _offer(url, self.pc, [address])
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch(transceiver.receiver)),
            loop.create_task(self._nack_again(transceiver.receiver)),
        ]

    async def _nack_again(self, receiver: Any) -> None:
        """NACK what is still missing every ``RENACK_S``, as libwebrtc's players do (aiortc
        NACKs a packet only when a new gap shows, and forgets it 128 packets later)."""
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(RENACK_S)
                nacks = receiver._RTCRtpReceiver__nack_generator  # bench-only private hook
                ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams), None)
                if nacks.missing and ssrc is not None:
                    await receiver._send_rtcp_nack(ssrc, sorted(nacks.missing))

    async def _watch(self, receiver: Any) -> None:
        from benches.synthetic import read_sei_index, read_sei_timestamp
        from signaling.media import h264_is_keyframe

        track = receiver.track
        previous: int | None = None
        stuck_since: float | None = None  # when a frame first could not be shown
        with contextlib.suppress(Exception):
            while True:
                packet = await track.recv()
                now = time.monotonic()
                data = bytes(packet)
                self.frames += 1
                keyframe = h264_is_keyframe(data)
                index = read_sei_index(data)
                if index is None:
                    continue
                if keyframe or (previous is not None and index == previous + 1):
                    previous, stuck_since = index, None
                    sent = read_sei_timestamp(data)
                    age = time.time() - sent if sent is not None else float("nan")
                    if keyframe and self.first_keyframe_sent is None and sent is not None:
                        self.first_keyframe_sent = sent
                    self.shown.append((now, age))
                else:
                    if previous is not None:
                        self.breaks.append(index - previous)
                    previous = None  # broken until the next keyframe
                    if stuck_since is None:
                        stuck_since = now
                    elif now - stuck_since >= PLI_WAIT_S:
                        stuck_since = now
                        await self._ask_for_keyframe(receiver)

    async def _ask_for_keyframe(self, receiver: Any) -> None:
        """A PLI, as a player that cannot decode sends (aiortc's receiver does not: its
        jitter buffer hands on a frame whose first packet was lost as a broken one)."""
        ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams), None)  # bench-only hook
        if ssrc is not None:
            self.keyframe_requests += 1
            await receiver._send_rtcp_pli(ssrc)

    def figures(self) -> dict[str, Any]:
        shown = self.shown
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(shown)]
        worst = max(range(len(gaps)), key=gaps.__getitem__) if gaps else None
        live = next((t for t, age in shown if age < LIVE_S), None)
        return {
            "viewer": self.name,
            "shown": len(shown),
            "frames": self.frames,
            "first_frame_ms": round((shown[0][0] - self.began) * 1000) if shown else None,
            "stall_max_ms": round(max(gaps) * 1000) if gaps else None,
            "live_ms": None if live is None else round((live - self.began) * 1000),
            "age_end_ms": round(shown[-1][1] * 1000) if shown else None,
            "breaks": self.breaks[:5],
            "keyframe_requests": self.keyframe_requests,
            "stall_at_ms": None if worst is None else round((shown[worst][0] - self.began) * 1000),
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.shield(self.pc.close())


async def _view(url: str, address: str, name: str, join_at: float, until: float) -> None:
    """One viewer (in its own namespace) that joins ``join_at`` s after it starts."""
    start = time.monotonic()
    await asyncio.sleep(join_at)
    joined = time.time()
    viewer = ShowingViewer(name)
    await viewer.start(url, address)
    await asyncio.sleep(max(0.0, start + until - time.monotonic()))
    figures = viewer.figures()
    if viewer.first_keyframe_sent is not None:
        figures["joined_into_gop_s"] = round(joined - viewer.first_keyframe_sent, 2)
    print(json.dumps(figures), flush=True)
    await viewer.close()


def _wait_port(address: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("the bench server did not start")


def _stats(link: netns.ImpairedLink, port: int) -> dict[str, int]:
    script = (
        "import sys,urllib.request;"
        f"sys.stdout.write(urllib.request.urlopen('http://{link.server_address}:{port}"
        "/bench/stats', timeout=10).read().decode())"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        link.command("server", [sys.executable, "-c", script]),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    stats: dict[str, int] = json.loads(out.stdout)
    return stats


def run(
    *,
    loss_pct: float,
    rate_mbit: float | None,
    gop: int = 300,
    bitrate: int = 1_500_000,
    early: int = 2,
    late: int = 2,
    late_at: float = 6.0,
    watch_s: float = 8.0,
) -> dict[str, Any]:
    """One condition: the figures of every viewer and the server's counters."""
    port = 8931
    names = [f"early{i}" for i in range(early)] + [f"late{i}" for i in range(late)]
    with netns.ImpairedLink(loss_pct=loss_pct, rate_mbit=rate_mbit, viewers=len(names)) as link:
        started: list[subprocess.Popen[str]] = []
        try:
            module = [sys.executable, "-m", "benches.relay_network"]
            addresses = ",".join(link.server_addresses)
            server = subprocess.Popen(  # noqa: S603 - our own module
                link.command("server", [*module, "_serve", str(port), addresses]),
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(server)
            publish = [
                *module,
                "_publish",
                f"http://{link.server_address}:{port}/whip/bench",
                str(late_at + watch_s + 30),
                *(str(gop), str(bitrate), link.server_address, str(port)),
            ]
            publisher = subprocess.Popen(  # noqa: S603 - our own module
                link.command("server", publish), stdout=subprocess.PIPE, text=True
            )
            started.append(publisher)
            _wait_line(publisher, "published")
            views = []
            for k, name in enumerate(names):
                join_at = late_at if name.startswith("late") else 0.0
                url = f"http://{link.server_addresses[k]}:{port}/whep/bench"
                view = [*module, "_view", url, link.viewer_addresses[k], name]
                view += [str(join_at), str(late_at + watch_s)]
                process = subprocess.Popen(  # noqa: S603 - our own module
                    link.command("viewer", view, k), stdout=subprocess.PIPE, text=True
                )
                started.append(process)
                views.append(process)
            figures = [json.loads(_wait_line(process, "{")) for process in views]
            result: dict[str, Any] = {
                "early": [f for f in figures if f["viewer"].startswith("early")],
                "late": [f for f in figures if f["viewer"].startswith("late")],
            }
            result["server"] = _stats(link, port)
            publisher.terminate()
            assert publisher.stdout is not None
            kbps = [line.split()[1] for line in publisher.stdout if line.startswith("kbps ")]
            result["publisher_kbps"] = float(kbps[-1]) if kbps else None
        finally:
            for process in reversed(started):
                _stop(process)
    result["link"] = link.describe()
    result["keyframe_interval_s"] = gop / 30
    viewers = result["early"] + result["late"]
    result["stall_max_ms"] = max((v["stall_max_ms"] or 0) for v in viewers)
    result["early_stall_max_ms"] = max((v["stall_max_ms"] or 0) for v in result["early"])
    result["late_stall_max_ms"] = max((v["stall_max_ms"] or 0) for v in result["late"])
    lives = [v["live_ms"] for v in result["late"]]
    result["late_live_max_ms"] = None if None in lives or not lives else max(lives)
    firsts = [v["first_frame_ms"] for v in result["late"]]
    result["late_first_frame_max_ms"] = None if None in firsts or not firsts else max(firsts)
    result["viewers_without_picture"] = sum(1 for v in viewers if not v["shown"])
    return result


def main(args: argparse.Namespace) -> int:
    reason = netns.available()
    if reason is not None:
        print(json.dumps({"error": f"cannot make the impaired link: {reason}"}))
        return 2
    result = run(
        loss_pct=args.loss or 0.0,
        rate_mbit=args.rate,
        gop=args.gop,
        bitrate=args.bitrate,
        early=max(1, min(args.viewers, 4)),
        late=max(1, min(args.late_joiners, 4)),
        late_at=args.gop / 30 * 0.6,
        watch_s=max(8.0, args.window),
    )
    print(json.dumps(result))
    return 0


def _child(argv: list[str]) -> int:
    from benches.relay import serve

    if argv[0] == "_serve":
        return serve(int(argv[1]), "relay", argv[2])
    if argv[0] == "_publish":
        _wait_port(argv[5], int(argv[6]))
        asyncio.run(_publish(argv[1], float(argv[2]), int(argv[3]), int(argv[4]), [argv[5]]))
        return 0
    if argv[0] == "_view":
        asyncio.run(_view(argv[1], argv[2], argv[3], float(argv[4]), float(argv[5])))
        return 0
    raise SystemExit(f"unknown child {argv[0]}")


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
