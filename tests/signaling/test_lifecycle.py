"""Peers, tasks and threads are released when peers leave, fail, and at shutdown;
a slow viewer skips ahead without slowing the others."""

from __future__ import annotations

import asyncio
import itertools
import threading

from benches.synthetic import EncodedPatternTrack
from signaling import VideoState
from signaling.media import EncodedFrame
from signaling.viewer_queue import ViewerQueue

from .support import NOTHING_LEFT, Server, Viewer, end, owned, play, publish, running_server


async def wait_stats(server: Server, key: str, value: int, within: float = 10) -> None:
    async with asyncio.timeout(within):
        while server.service.stats()[key] != value:  # noqa: ASYNC110 - polls service stats
            await asyncio.sleep(0.05)


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-decoder")]


async def test_cleanup_after_leave_failure_and_close() -> None:
    baseline = len(asyncio.all_tasks())
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        polite, rude = await play(server.http), await play(server.http)
        await polite.wait_frames(5)
        await rude.wait_frames(5)
        assert server.service.stats()["peer_connections"] == 3

        assert (await end(server.http, polite)).status_code == 200
        await polite.close()
        await rude.close()  # goes away without a DELETE
        await wait_stats(server, "viewers", 0)

        await host.close()  # the host's connection fails
        await server.gate.wait_state("show1", VideoState.RECONNECTING)
        await wait_stats(server, "tasks", 1)  # the reconnect grace timer
        stats = server.service.stats()
        assert stats["peer_connections"] == 0
        assert stats["publishers"] == 0
    assert owned(server.service.stats()) == NOTHING_LEFT
    async with asyncio.timeout(5):
        while len(asyncio.all_tasks()) > baseline or decoder_threads():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_reconnect_grace_ends_the_stream() -> None:
    async with running_server() as server:
        server.service.reconnect_grace_s = 0.2
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        await host.close()
        await server.gate.wait_state("show1", VideoState.RECONNECTING)
        await server.gate.wait_state("show1", VideoState.OFFLINE)
        await wait_stats(server, "relays", 0)
        await wait_stats(server, "tasks", 0)


async def test_close_with_peers_still_connected() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        viewer = await play(server.http)
        await viewer.wait_frames(3)
        await server.service.close()
        assert server.service.stats()["peer_connections"] == 0
        assert server.service.stats()["tasks"] == 0
        await viewer.close()
        await host.close()


def _session_queue(server: Server, viewer: Viewer) -> ViewerQueue:
    session = server.service._peers.sessions[viewer.location.rsplit("/", 1)[1]]
    assert session.viewer is not None
    return session.viewer.video


async def test_slow_viewer_skips_to_a_keyframe_without_slowing_others() -> None:
    async with running_server(viewer_queue_frames=10) as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        slow, fast = await play(server.http), await play(server.http)
        await slow.wait_frames(5)
        await fast.wait_frames(5)
        queue = _session_queue(server, slow)
        original_get = queue.get

        async def stalled_get() -> EncodedFrame:
            queue.get = original_get  # type: ignore[method-assign]
            await asyncio.sleep(1.5)
            return await original_get()

        queue.get = stalled_get  # type: ignore[method-assign]
        start = len(fast.frames)
        await asyncio.sleep(1.6)
        during = [i for i, _ in fast.frames[start:]]
        assert len(during) >= 30  # 48 at 30 fps; the other viewer's stall does not hold it
        assert during == list(range(during[0], during[0] + len(during)))
        assert queue.skips >= 1

        count = len(slow.frames)
        await slow.wait_frames(count + 10)
        indexes = [i for i, _ in slow.frames]
        gaps = [b for a, b in itertools.pairwise(indexes) if b != a + 1]
        assert gaps and all(index % 30 == 0 for index in gaps)  # resumed at keyframes
        for client in (slow, fast, host):
            await client.close()
