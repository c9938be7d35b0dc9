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
from signaling.http import read_sdp, with_errors
from signaling.service import SignalingService

log = logging.getLogger("liveshop.video")

CLAIM_TTL_S = 15
RENEW_EVERY_S = 5.0
FORWARD_TIMEOUT_S = 15.0  # a WHEP answer under load takes well under a second
FORWARD_CONCURRENCY = 32  # each waiting forward holds a Redis connection (BLPOP)
INBOX_BLOCK_S = 1

_OWNER = "liveshop:video:owner:"
_INBOX = "liveshop:video:inbox:"
_REPLY = "liveshop:video:reply:"

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
T = TypeVar("T")


def _unavailable(message: str) -> SignalingError:
    return SignalingError("video_unavailable", message)


class VideoPlacement:
    """Made with the app; ``start(redis)`` once Redis is open (until then, and after
    ``close``, every request is served by this process)."""

    def __init__(self, video: SignalingService, max_forwards: int = FORWARD_CONCURRENCY) -> None:
        self.redis: aioredis.Redis | None = None
        self.video = video
        self.process_id = secrets.token_hex(8)
        self.forwarded = 0  # requests this process handed to another owner
        self.served_for_others = 0
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
            # Counted as served here from before the owner is looked up, so that a renewal
            # running meanwhile cannot give up the claim this request relies on.
            self._in_flight[show_id] += 1
            try:
                owner = None
                if self.redis is not None:
                    try:
                        owner = await self.owner(show_id, claim=request.method == "POST")
                    except Exception as exc:
                        log.warning("video placement unavailable: %r", exc, extra={"show": show_id})
                        if show_id not in self.video.shows_in_use():
                            # Not knowing who serves the show, serving it here could split it.
                            raise _unavailable("The video service is busy; try again.") from None
                if owner is None:
                    return await endpoint(request)
            finally:
                self._done(show_id)
            body = await read_sdp(request) if request.method == "POST" else b""
            return await self.forward(owner, request, body)

        # (errors in signaling's one JSON shape, and CORS headers on every answer)
        return with_errors(placed)

    async def _serve(self, show_id: str, answer: Awaitable[T]) -> T:
        """Serve a request here; the show counts as served (its claim is kept) meanwhile."""
        self._in_flight[show_id] += 1
        try:
            return await answer
        finally:
            self._done(show_id)

    def _done(self, show_id: str) -> None:
        self._in_flight[show_id] -= 1
        if self._in_flight[show_id] <= 0:
            del self._in_flight[show_id]

    def _serving(self) -> set[str]:
        """Shows with peers or a relay here, and claimed shows with a request in progress
        (a request on its way to another owner does not make this process claim its show)."""
        return self.video.shows_in_use() | (set(self._in_flight) & self._owned)

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
        meanwhile is ended here, so that its clients reconnect to that process."""
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
        owner = None
        if self.redis is not None:
            try:
                owner = await self.owner(show_id, claim=False)
            except Exception as exc:
                log.warning("video placement unavailable: %r", exc, extra={"show": show_id})
        if owner is None or self.redis is None:
            await self._run_control({**message, "show_id": show_id})
            return
        inbox = _INBOX + owner
        payload = {
            **message,
            "show_id": show_id,
            "id": secrets.token_hex(12),
            "deadline": time.time() + FORWARD_TIMEOUT_S,
        }
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(inbox, json.dumps(payload))
                pipe.expire(inbox, int(FORWARD_TIMEOUT_S) + 5)
                await pipe.execute()
        except Exception as exc:
            log.warning("video control not sent: %r", exc, extra={"owner": owner})

    async def _run_control(self, message: dict[str, Any]) -> None:
        show_id = str(message["show_id"])
        if message["control"] == "end_show":
            await self.video.end_show(show_id)
        elif message["control"] == "remove_viewer":
            await self.video.remove_viewer(show_id, str(message["identity"]))

    # -- forwarding ----------------------------------------------------------------------------

    async def forward(self, owner: str, request: Request, body: bytes) -> Response:
        """Hand ``request`` (its ``body`` read already) to ``owner``; return its answer."""
        assert self.redis is not None
        request_id = secrets.token_hex(12)
        inbox = _INBOX + owner
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
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(inbox, json.dumps(message))
                pipe.expire(inbox, int(FORWARD_TIMEOUT_S) + 5)
                await pipe.execute()
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
            # (the ASGI transport has no timeout of its own; a request cut short here is
            # cleaned up by the signaling service, which closes its peer connection)
            async with asyncio.timeout(left_s):
                response = await self._serve(
                    show_id,
                    self._local.request(
                        message["method"],
                        message["path"],
                        headers=[(name, value) for name, value in message["headers"]],
                        content=base64.b64decode(message["body"]),
                    ),
                )
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
            loop.create_task(self._renew(), name="video-claims"),
        ]

    async def close(self) -> None:
        self._closing = True
        await stop_tasks(self._tasks)
        await stop_tasks(list(self._handlers))
        self._tasks = []
        redis, self.redis = self.redis, None
        if redis is not None:
            with contextlib.suppress(Exception):
                for show_id in list(self._owned):
                    await redis.eval(_RELEASE, 1, _OWNER + show_id, self.process_id)
        self._owned.clear()
        await self._local.aclose()
