"""A real webhook receiver for the tests: a small HTTP/1.1 server on 127.0.0.1 (plain
asyncio), started and stopped by the test. ``answer`` decides per request: a status to
answer with, or ``HANG`` to sit on the request past any sender's timeout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

HANG = -1


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status sent back, or HANG


Answer = Callable[["Received"], int]


@dataclass
class Receiver:
    port: int
    answer: Answer
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def ids(self, status: int | None = None) -> list[str]:
        """The webhook-id of each request (answered ``status`` only, when given)."""
        return [
            r.headers["webhook-id"] for r in self.requests if status is None or r.answered == status
        ]


async def _read(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return path, headers, body


@contextlib.asynccontextmanager
async def receiving(answer: Answer) -> AsyncIterator[Receiver]:
    box: list[Receiver] = []
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                got = await _read(reader)
                if got is None:
                    return
                path, headers, body = got
                status = answer(Received(path, headers, body, 0))
                box[0].requests.append(Received(path, headers, body, status))
                if status == HANG:
                    await asyncio.sleep(30)  # past any test's timeout: the sender gives up
                    return
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok".encode("latin-1")
                )
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    box.append(Receiver(port, answer))
    try:
        yield box[0]
    finally:
        server.close()
        for task in list(handlers):  # (Python 3.11's server has no close_clients)
            task.cancel()
        if handlers:
            await asyncio.wait(list(handlers), timeout=5)
        await server.wait_closed()


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check written from the spec, apart from the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for part in headers["webhook-signature"].split(" "):
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
            return True
    return False
