"""One relay per show, whichever process a WHIP or WHEP request reaches.

The host and every viewer of a show must reach the same ``SignalingService``: the relay
holds the host's peer connection and fans its packets out in that process. With several
worker processes behind one port (``liveshop serve --workers N``), or several machines
sharing one Redis, a request may land on any of them. So the first process asked to
publish or play a show claims it in Redis (``SET NX`` with a TTL that it renews while it
has peers or a relay for the show) and serves it; another process hands the request,
unchanged, to the owner through a Redis list and returns the owner's answer. The media
then flows between the peer and the owner directly (its ICE candidates are the owner's).

Only the SDP exchanges travel this way (a few KB, a millisecond or two through Redis),
never media. If the owner dies, its claim runs out within ``CLAIM_TTL_S`` and the next
request (the host reconnecting, a viewer's retry) makes a new owner.

Edges: one process serves about ``viewer_budget`` viewers (one core). The owner is the
show's origin; past its budget a new viewer is placed on an edge relay in another process,
fed by the origin (``feed.py``), and past every relay's budget a new edge is started on a
live process that has none for the show yet. Each process reports, every
``RENEW_EVERY_S``, its viewers of each show it relays (``liveshop:video:relays:{show}``:
process id -> viewers) and that it is alive, with its feed address
(``liveshop:video:processes``, ``liveshop:video:feed:{process}``); a placement counts its
viewer at once. An edge with no viewer for ``edge_idle_s`` lets its feed go. When every
process relaying the show is past its budget and none is left to start an edge, a viewer
is refused with ``503 video_full`` if the show also plays over HLS (the page goes there),
and placed on the least loaded relay otherwise. A viewer's session (its ``DELETE``) is
found where it is served (``liveshop:video:session:{session}``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.aio import cancel_requested, stop_tasks
from signaling.errors import SignalingError, error_response
from signaling.feed import EdgeFeed, FeedServer
from signaling.http import read_sdp, with_errors
from signaling.relay import ShowRelay
from signaling.service import SignalingService

log = logging.getLogger("liveshop.video")

CLAIM_TTL_S = 15
RENEW_EVERY_S = 5.0
FORWARD_TIMEOUT_S = 15.0  # a WHEP answer under load takes well under a second
FORWARD_CONCURRENCY = 32  # each waiting forward holds a Redis connection (BLPOP)
INBOX_BLOCK_S = 1
VIEWER_BUDGET = 250  # viewers one process (one core) serves well at 1.5 Mbit/s
EDGE_IDLE_S = 30.0
EDGE_READY_S = 3.0  # how long a new edge waits for its origin's codec before answering
SESSION_TTL_S = 12 * 3600

_OWNER = "liveshop:video:owner:"
_INBOX = "liveshop:video:inbox:"
_REPLY = "liveshop:video:reply:"
_RELAYS = "liveshop:video:relays:"
_PROCESSES = "liveshop:video:processes"
_FEED = "liveshop:video:feed:"
_SESSION = "liveshop:video:session:"

# Renew a claim while it is ours, or claim again when it ran out (the renewal came late):
# 1 when the show is ours, 0 when another process took it meanwhile. Release only ours.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Request headers handed to the owner (hop-by-hop ones and Host stay behind).
_SKIP_REQUEST = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
_SKIP_RESPONSE = {"content-length", "connection", "transfer-encoding", "date", "server"}

Endpoint = Callable[[Request], Awaitable[Response]]
HasHls = Callable[[str], Awaitable[bool]]
T = TypeVar("T")


def _unavailable(message: str) -> SignalingError:
    return SignalingError("video_unavailable", message)


class VideoPlacement:
    """Made with the app; ``start(redis)`` once Redis is open (until then, and after
    ``close``, every request is served by this process)."""

    def __init__(
        self,
        video: SignalingService,
        max_forwards: int = FORWARD_CONCURRENCY,
        *,
        viewer_budget: int = VIEWER_BUDGET,
        edge_idle_s: float = EDGE_IDLE_S,
        feed_host: str = "127.0.0.1",
        feed_port: int = 0,
        secret: bytes | None = None,
        has_hls: HasHls | None = None,
    ) -> None:
        self.redis: aioredis.Redis | None = None
        self.video = video
        self.process_id = secrets.token_hex(8)
        self.forwarded = 0  # requests this process handed to another owner
        self.served_for_others = 0
        self.viewer_budget = viewer_budget
        self.edge_idle_s = edge_idle_s
        self.refused_full = 0
        self.has_hls = has_hls
        self._feed_host, self._feed_port = feed_host, feed_port
        # (every process of a deployment must share it: the app's signing key)
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.feed = FeedServer(self._secret, self._relay_for_edge, video.release_relay)
        self._edges: dict[str, EdgeFeed] = {}
        self._owned: set[str] = set()  # shows claimed by this process
        self._in_flight: Counter[str] = Counter()  # requests being served here, by show
        self._closing = False
        self._forwarding = asyncio.Semaphore(max_forwards)
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        # The owner answers forwarded requests by calling its own signaling routes.
        self._local = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=video.routes())),
            base_url="http://video.local",
        )

    # -- routes ------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The signaling routes, each first asking who serves the show."""
        routes: list[BaseRoute] = []
        for route in self.video.routes():
            assert isinstance(route, Route)
            routes.append(
                Route(route.path, self._placed(route.endpoint), methods=list(route.methods or ()))
            )
        return routes

    def _placed(self, endpoint: Endpoint) -> Endpoint:
        async def placed(request: Request) -> Response:
            if request.method == "OPTIONS":  # the same answer everywhere
                return await endpoint(request)
            show_id = request.path_params["show_id"]
            session_id = request.path_params.get("session_id")
            if session_id is not None and self.video.has_session(session_id):
                return await endpoint(request)  # (an edge's viewer ending its session)
            playing = request.method == "POST" and request.url.path.startswith("/whep/")
            # Counted as served here from before the owner is looked up, so that a renewal
            # running meanwhile cannot give up the claim this request relies on.
            self._in_flight[show_id] += 1
            try:
                target = None
                if self.redis is not None:
                    try:
                        target = await self._target(show_id, request.method, session_id, playing)
                    except SignalingError:
                        raise
                    except Exception as exc:
                        log.warning("video placement unavailable: %r", exc, extra={"show": show_id})
                        if show_id not in self.video.shows_in_use():
                            # Not knowing who serves the show, serving it here could split it.
                            raise _unavailable("The video service is busy; try again.") from None
                if target is None:
                    if request.method == "POST" and not playing:
                        await self._stop_edge(show_id)  # the host publishes here: the origin
                    response = await endpoint(request)
                    if playing:
                        await self._remember(response.headers.getlist("location"))
                    return response
            finally:
                self._done(show_id)
            body = await read_sdp(request) if request.method == "POST" else b""
            return await self.forward(target, request, body)

        # (errors in signaling's one JSON shape, and CORS headers on every answer)
        return with_errors(placed)

    async def _serve(self, show_id: str, answer: Awaitable[T]) -> T:
        """Serve a request here; the show counts as served (its claim is kept) meanwhile."""
        self._in_flight[show_id] += 1
        try:
            return await answer
        finally:
            self._done(show_id)

    async def _target(
        self, show_id: str, method: str, session_id: str | None, playing: bool
    ) -> str | None:
        """The process to serve a request; None for this one."""
        assert self.redis is not None
        if session_id is not None:
            where = await self.redis.get(_SESSION + session_id)
            if where is not None:
                return None if where == self.process_id else str(where)
        owner = await self.owner(show_id, claim=method == "POST")
        if not playing:
            return owner
        chosen = await self.place_viewer(show_id, owner or self.process_id)
        if chosen == self.process_id:
            if owner is not None:
                await self._ensure_edge(show_id)
            return None
        return chosen

    async def place_viewer(self, show_id: str, origin: str) -> str:
        """The process a new viewer of ``show_id`` is served by (counted there at once):
        the origin while it has room, then the fullest edge with room, then a new edge on
        a live process without one (this process first)."""
        assert self.redis is not None
        budget = self.viewer_budget
        key = _RELAYS + show_id
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.zrangebyscore(_PROCESSES, time.time() - CLAIM_TTL_S, "+inf")
            relays, alive = await pipe.execute()
        live = {str(p) for p in alive} | {self.process_id, origin}
        counts = {str(p): int(n) for p, n in relays.items() if p in live}
        counts.setdefault(origin, 0)
        chosen: str | None = None
        if counts[origin] < budget:
            chosen = origin
        else:
            with_room = [(n, p) for p, n in counts.items() if p != origin and n < budget]
            fresh = sorted(live - set(counts))
            if with_room:
                chosen = max(with_room)[1]
            elif fresh:
                chosen = self.process_id if self.process_id in fresh else fresh[0]
            elif self.has_hls is not None and await self.has_hls(show_id):
                self.refused_full += 1
                raise SignalingError(
                    "video_full",
                    "Every relay of this show is full: watch it over HLS "
                    f"(/hls/{show_id}/index.m3u8).",
                )
            else:
                chosen = min(counts, key=lambda p: counts[p])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, chosen, 1)
            pipe.pexpire(key, CLAIM_TTL_S * 1000)
            await pipe.execute()
        return chosen

    async def _remember(self, locations: list[str]) -> None:
        """Say where a new viewer session is served, for its ``DELETE``."""
        if self.redis is None:
            return
        for location in locations:
            session_id = location.rstrip("/").rsplit("/", 1)[-1]
            try:
                await self.redis.set(_SESSION + session_id, self.process_id, ex=SESSION_TTL_S)
            except Exception as exc:  # its DELETE then reaches the owner, or times out
                log.warning("video session not recorded: %r", exc)

    # -- edges ---------------------------------------------------------------------------

    def _relay_for_edge(self, show_id: str) -> ShowRelay | None:
        """The relay an edge's feed taps: this process's, when it is the show's origin."""
        return self.video.relay(show_id) if show_id in self._owned else None

    async def _origin_feed(self, show_id: str) -> tuple[str, int] | None:
        if self.redis is None:
            return None
        owner = await self.redis.get(_OWNER + show_id)
        if owner is None or owner == self.process_id:
            return None
        where = await self.redis.get(_FEED + str(owner))
        if not where:
            return None
        host, _, port = str(where).rpartition(":")
        return host, int(port)

    async def _ensure_edge(self, show_id: str) -> None:
        """This process relays ``show_id`` as an edge (its feed from the origin started)."""
        edge = self._edges.get(show_id)
        if edge is None:
            relay = self.video.relay(show_id)
            edge = EdgeFeed(show_id, relay, lambda: self._origin_feed(show_id), self._secret)
            self._edges[show_id] = edge
            edge.start()
            log.info("edge relay started", extra={"show": show_id})
        edge.idle_since = None
        await edge.wait_ready(EDGE_READY_S)

    async def _stop_edge(self, show_id: str, *, close_viewers: bool = False) -> None:
        edge = self._edges.pop(show_id, None)
        if edge is None:
            return
        await edge.close()
        if close_viewers:
            await self.video.close_show(show_id)
        self.video.release_relay(show_id)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.hdel(_RELAYS + show_id, self.process_id)
        log.info("edge relay stopped", extra={"show": show_id})

    def edge_stats(self) -> dict[str, Any]:
        """Edges here, their viewers and feeds' reconnects, and the hop's latency samples."""
        hops = [ms for edge in self._edges.values() for ms in edge.hops_ms]
        return {
            "edges": len(self._edges),
            "edge_viewers": sum(self.video.viewer_count(s) for s in self._edges),
            "edge_connects": sum(edge.connects for edge in self._edges.values()),
            "feeds_served": self.feed.edge_count,
            "hop_ms": hops,
        }

    def clear_hop_samples(self) -> None:
        """Start the edges' hop latency samples again (a bench's window starts)."""
        for edge in self._edges.values():
            edge.hops_ms.clear()

    def _done(self, show_id: str) -> None:
        self._in_flight[show_id] -= 1
        if self._in_flight[show_id] <= 0:
            del self._in_flight[show_id]

    def _serving(self) -> set[str]:
        """Shows with peers or a relay here, and claimed shows with a request in progress
        (a request on its way to another owner does not make this process claim its show);
        not the shows relayed here as an edge."""
        in_use = self.video.shows_in_use() | (set(self._in_flight) & self._owned)
        return in_use - set(self._edges)

    # -- ownership ---------------------------------------------------------------------------

    async def owner(self, show_id: str, *, claim: bool) -> str | None:
        """The process that serves ``show_id``'s video; None for this one (also when no
        process does and ``claim`` is false)."""
        assert self.redis is not None
        key = _OWNER + show_id
        current = await self.redis.get(key)
        if current is None and claim:
            if await self.redis.set(key, self.process_id, nx=True, ex=CLAIM_TTL_S):
                self._owned.add(show_id)
                return None
            current = await self.redis.get(key)
        if current == self.process_id:
            self._owned.add(show_id)
        if current is None or current == self.process_id:
            return None
        return str(current)

    async def _renew(self) -> None:
        while not self._closing and not cancel_requested():
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                await self.renew_once()
            except Exception as exc:
                log.warning("video claims not renewed: %r", exc)

    async def renew_once(self) -> None:
        """Keep (or take again) the claim of every show served here, requests being
        answered included; give up the others. A show that another process took
        meanwhile is ended here, so that its clients reconnect to that process. Then say
        this process is alive and how many viewers it relays of each show, and let idle
        edges go."""
        assert self.redis is not None
        await self._claims()
        await self._report()

    async def _report(self) -> None:
        assert self.redis is not None
        now = time.time()
        for show_id, edge in list(self._edges.items()):
            if self.video.viewer_count(show_id) or self._in_flight.get(show_id):
                edge.idle_since = None
            elif edge.idle_since is None:
                edge.idle_since = time.monotonic()
            elif time.monotonic() - edge.idle_since >= self.edge_idle_s:
                await self._stop_edge(show_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(_PROCESSES, {self.process_id: now})
            pipe.zremrangebyscore(_PROCESSES, "-inf", now - 4 * CLAIM_TTL_S)
            if self.feed.port:
                where = f"{self._feed_host}:{self.feed.port}"
                pipe.set(_FEED + self.process_id, where, ex=CLAIM_TTL_S)
            for show_id in (self._owned & self.video.shows_in_use()) | set(self._edges):
                viewers = self.video.viewer_count(show_id) + self._in_flight.get(show_id, 0)
                pipe.hset(_RELAYS + show_id, self.process_id, viewers)
                pipe.pexpire(_RELAYS + show_id, CLAIM_TTL_S * 1000)
            await pipe.execute()

    async def _claims(self) -> None:
        assert self.redis is not None
        serving = self._serving()
        for show_id in serving | self._owned:
            key = _OWNER + show_id
            if show_id not in serving and show_id not in self._serving():  # (looked again)
                await self.redis.eval(_RELEASE, 1, key, self.process_id)
                self._owned.discard(show_id)
            elif await self.redis.eval(_RENEW, 1, key, self.process_id, CLAIM_TTL_S * 1000):
                self._owned.add(show_id)
            else:
                log.warning(
                    "video of a show served by another process too; ending it here",
                    extra={"show": show_id},
                )
                self._owned.discard(show_id)
                await self.video.close_show(show_id)

    # -- control: what the app asks of a show's video, wherever it is served --------------

    async def end_show(self, show_id: str) -> None:
        """The show ended: its video is ended by the process that serves it."""
        await self._control(show_id, {"control": "end_show"})

    async def remove_viewer(self, show_id: str, identity: str) -> None:
        """A viewer removed from the show: their sessions closed where they are served."""
        await self._control(show_id, {"control": "remove_viewer", "identity": identity})

    async def _control(self, show_id: str, message: dict[str, Any]) -> None:
        """Run ``message`` where the show's video is served: its origin and every edge."""
        targets = {self.process_id}
        if self.redis is not None:
            try:
                owner = await self.owner(show_id, claim=False)
                targets = {owner or self.process_id}
                targets |= {str(p) for p in await self.redis.hkeys(_RELAYS + show_id)}
            except Exception as exc:
                log.warning("video placement unavailable: %r", exc, extra={"show": show_id})
        if self.process_id in targets or self.redis is None:
            await self._run_control({**message, "show_id": show_id})
        for target in targets - {self.process_id}:
            payload = {
                **message,
                "show_id": show_id,
                "id": secrets.token_hex(12),
                "deadline": time.time() + FORWARD_TIMEOUT_S,
            }
            try:
                await self._post(target, payload)
            except Exception as exc:
                log.warning("video control not sent: %r", exc, extra={"owner": target})

    async def _run_control(self, message: dict[str, Any]) -> None:
        show_id = str(message["show_id"])
        if show_id in self._edges:
            if message["control"] == "end_show":
                await self._stop_edge(show_id, close_viewers=True)
            elif message["control"] == "remove_viewer":
                await self.video.remove_viewer(show_id, str(message["identity"]))
            return
        if message["control"] == "end_show":
            self.feed.drop_show(show_id)
            await self.video.end_show(show_id)
        elif message["control"] == "remove_viewer":
            await self.video.remove_viewer(show_id, str(message["identity"]))

    # -- forwarding ----------------------------------------------------------------------------

    async def forward(self, owner: str, request: Request, body: bytes) -> Response:
        """Hand ``request`` (its ``body`` read already) to ``owner``; return its answer."""
        assert self.redis is not None
        request_id = secrets.token_hex(12)
        try:
            async with asyncio.timeout(FORWARD_TIMEOUT_S):
                await self._forwarding.acquire()
        except TimeoutError:
            raise _unavailable("The video service is busy; try again.") from None
        try:
            message = {
                "id": request_id,
                "deadline": time.time() + FORWARD_TIMEOUT_S,  # (clocks kept by NTP)
                "method": request.method,
                "path": request.url.path,
                "headers": [
                    [name, value]
                    for name, value in request.headers.items()
                    if name.lower() not in _SKIP_REQUEST
                ],
                "body": base64.b64encode(body).decode(),
            }
            await self._post(owner, message)
            self.forwarded += 1
            # A little longer than the owner may take, so that its answer is not lost;
            # in short BLPOPs (a blocking read longer than the client's socket timeout
            # would fail).
            reply = None
            waited_until = time.monotonic() + FORWARD_TIMEOUT_S + 2
            while reply is None and time.monotonic() < waited_until:
                reply = await self.redis.blpop([_REPLY + request_id], timeout=INBOX_BLOCK_S)
        except Exception as exc:
            log.warning("video request not forwarded: %r", exc, extra={"owner": owner})
            raise _unavailable("The video service is busy; try again.") from None
        finally:
            self._forwarding.release()
        if reply is None:
            raise _unavailable("The process serving this show's video did not answer; try again.")
        answer = json.loads(reply[1])
        response = Response(base64.b64decode(answer["body"]), status_code=answer["status"])
        for name, value in answer["headers"]:  # several Link headers stay several
            if name.lower() not in _SKIP_RESPONSE:
                response.headers.append(name, value)
        return response

    async def _post(self, process_id: str, message: dict[str, Any]) -> None:
        """Put ``message`` in ``process_id``'s inbox (which lives as long as a deadline)."""
        assert self.redis is not None
        inbox = _INBOX + process_id
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(inbox, json.dumps(message))
            pipe.expire(inbox, int(FORWARD_TIMEOUT_S) + 5)
            await pipe.execute()

    async def _serve_inbox(self) -> None:
        """Answer requests other processes forwarded to this one."""
        assert self.redis is not None
        inbox = _INBOX + self.process_id
        # (a cancellation inside BLPOP can be swallowed: core.aio.cancel_requested)
        while not self._closing and not cancel_requested():
            try:
                item = await self.redis.blpop([inbox], timeout=INBOX_BLOCK_S)
            except Exception as exc:
                log.warning("video inbox unreachable: %r", exc)
                await asyncio.sleep(1)
                continue
            if item is None:
                continue
            try:
                message = json.loads(item[1])
                left_s = float(message["deadline"]) - time.time()
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable forwarded video request dropped")
                continue
            if left_s <= 0:
                continue  # its sender has given up: answering would leave a peer behind
            if "control" in message:
                job = self._control_here(message)
            else:
                job = self._answer(message, left_s)
            task = asyncio.get_running_loop().create_task(job)
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _control_here(self, message: dict[str, Any]) -> None:
        try:
            await self._run_control(message)
        except Exception:
            log.exception("video control failed")

    async def _answer(self, message: dict[str, Any], left_s: float) -> None:
        assert self.redis is not None
        try:
            show_id = message["path"].split("/")[2]
            playing = message["method"] == "POST" and message["path"].startswith("/whep/")
            # (the ASGI transport has no timeout of its own; a request cut short here is
            # cleaned up by the signaling service, which closes its peer connection)
            async with asyncio.timeout(left_s):
                if playing and show_id not in self._owned:
                    await self._serve(show_id, self._ensure_edge(show_id))
                response = await self._serve(
                    show_id,
                    self._local.request(
                        message["method"],
                        message["path"],
                        headers=[(name, value) for name, value in message["headers"]],
                        content=base64.b64decode(message["body"]),
                    ),
                )
            if playing:
                await self._remember(response.headers.get_list("location"))
            answer = {
                "status": response.status_code,
                "headers": list(response.headers.multi_items()),
                "body": base64.b64encode(response.content).decode(),
            }
        except Exception:
            log.exception("forwarded video request failed")
            failed = error_response(_unavailable("The video service failed to answer; try again."))
            answer = {
                "status": failed.status_code,
                "headers": list(failed.headers.items()),
                "body": base64.b64encode(bytes(failed.body)).decode(),
            }
        self.served_for_others += 1
        key = _REPLY + str(message.get("id"))
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(key, json.dumps(answer))
                pipe.expire(key, int(FORWARD_TIMEOUT_S) + 5)
                await pipe.execute()
        except Exception as exc:  # its sender will answer 503 when it stops waiting
            log.warning("answer to a forwarded video request lost: %r", exc)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._serve_inbox(), name="video-inbox"),
            loop.create_task(self._start_feed(), name="video-feed"),
        ]

    async def _start_feed(self) -> None:
        """Listen for edges, say this process is alive, then renew every few seconds."""
        try:
            await self.feed.start(self._feed_host, self._feed_port)
        except OSError as exc:  # viewers past this process's budget go to the others
            log.error("edge feed not listening on %s: %r", self._feed_host, exc)
        with contextlib.suppress(Exception):
            await self._report()
        await self._renew()

    async def close(self) -> None:
        self._closing = True
        await stop_tasks(self._tasks)
        await stop_tasks(list(self._handlers))
        self._tasks = []
        for show_id in list(self._edges):
            await self._stop_edge(show_id)
        await self.feed.close()
        redis, self.redis = self.redis, None
        if redis is not None:
            with contextlib.suppress(Exception):
                for show_id in list(self._owned):
                    await redis.eval(_RELEASE, 1, _OWNER + show_id, self.process_id)
                    await redis.hdel(_RELAYS + show_id, self.process_id)
                await redis.zrem(_PROCESSES, self.process_id)
                await redis.delete(_FEED + self.process_id)
        self._owned.clear()
        await self._local.aclose()
