"""The server's edge: how long a client may take to send a request, and how big its head
may be. uvicorn has neither (only an idle timeout after a response, ``timeout_keep_alive``).

``EdgeHttpProtocol`` is uvicorn's httptools protocol with two guards, the HTTP protocol
``liveshop serve`` runs (web/cli.py):

- **a read deadline**: from the moment a connection opens, or a request's first byte
  arrives, its head and body must be in within ``LIVESHOP_REQUEST_READ_TIMEOUT_S``; else
  a connection that sent no whole head gets 408 ``request_timeout`` and is closed, and one
  whose body is late is closed (the app sees the client gone). A connection that never
  sends a byte is closed so too. Between requests uvicorn's keep-alive timeout (5 s)
  applies; a websocket, once upgraded, is no longer timed (it has its pings).
- **a head cap**: a request line and headers over ``LIVESHOP_MAX_HEADER_BYTES`` get 431
  ``header_too_large`` and the connection is closed, before httptools buffers more.

It overrides the protocol's documented asyncio hooks and four of its parser callbacks;
``tests/web/test_edge.py`` pins them against uvicorn's class.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from core.errors import error_body
from web.errors import ApiError

_END_OF_HEAD = b"\r\n\r\n"
LINGER_S = 1.0
"""After a refusal, how long what the client still sends is read and dropped before the
connection closes: closing with unread bytes would reset it, and the client could lose the
answer (a lingering close, as web servers do)."""


class EdgeHttpProtocol(HttpToolsProtocol):
    read_timeout_s: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 16 * 1024

    @classmethod
    def configure(cls, read_timeout_s: float, max_header_bytes: int) -> None:
        """Set the limits (the app factory does, from the settings, in each worker)."""
        cls.read_timeout_s = read_timeout_s
        cls.max_header_bytes = max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._head: int | None = 0  # bytes of the request head so far; None: head is in
        self._tail = b""
        self._refused = False
        super().connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # (lingering: read and dropped)
        if self._head is not None and not self._head_fits(data):
            self._refuse(ApiError("header_too_large", "the request's headers are too large"))
            return
        super().data_received(data)

    def _head_fits(self, data: bytes) -> bool:
        """Count ``data`` into the head; False once the head is over the cap."""
        assert self._head is not None
        seen = self._tail + data
        end = seen.find(_END_OF_HEAD)
        size = self._head + (len(data) if end < 0 else end + len(_END_OF_HEAD) - len(self._tail))
        if size > self.max_header_bytes:
            return False
        self._head, self._tail = (size, seen[-3:]) if end < 0 else (None, b"")
        return True

    # parser callbacks: a request begins (time and measure it), ends (stop timing)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head is None:
            self._head, self._tail = 0, b""
        self._start_deadline()

    def on_message_complete(self) -> None:
        self._stop_deadline()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._stop_deadline()
        super().handle_websocket_upgrade()

    def _start_deadline(self) -> None:
        if self._deadline is None and math.isfinite(self.read_timeout_s):
            self._deadline = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._head is not None and not answering:  # no whole head: nobody else answers
            self._refuse(ApiError("request_timeout", "the request took too long to arrive"))
        else:  # the app waits for the body (or answers the one before): it sees a disconnect
            self.transport.close()

    def _refuse(self, error: ApiError) -> None:
        self._stop_deadline()
        body = json.dumps(error_body(error.code, error.message)).encode()
        content = [STATUS_LINE[error.http_status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()
