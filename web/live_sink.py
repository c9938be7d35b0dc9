"""live's fast way to the wire under uvicorn: frames written straight to its protocol.

``DirectSink`` is a ``live.outbox.Sink`` for uvicorn's websockets (sans-I/O) protocol,
reached through the raw ASGI ``send`` (``web/live_ws.py`` keeps it in the scope). It knows
that server's protocol class by name and writes to its internals, which is why it lives
in the web layer, beside the server it is tied to, and not in live. A server frame is
unmasked, so the bytes are the same for every socket: one ``transport.write`` of pre-built
bytes per socket, no task switch, no per-socket encoding. Measured on this box: about 3 us
per socket, against about 40 us for an awaited ASGI ``websocket.send``. With any other
server ``web/live_ws.py`` uses live's ``AsgiSink``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from live.outbox import Frame


class DirectSink:
    """Writes pre-built frame bytes to uvicorn's websockets sans-I/O protocol's transport."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @staticmethod
    def of(raw_send: object) -> DirectSink | None:
        protocol = getattr(raw_send, "__self__", None)
        if protocol is None or type(protocol).__name__ != "WebSocketsSansIOProtocol":
            return None
        for name in ("transport", "conn", "writable", "close_sent"):
            if not hasattr(protocol, name):
                return None
        return DirectSink(protocol)

    def _open(self) -> bool:
        p = self._protocol
        return not p.close_sent and not p.transport.is_closing() and p.conn.close_sent is None

    def writable(self) -> bool:
        return bool(self._protocol.writable.is_set()) and self._open()

    def write_now(self, frame: Frame) -> None:
        self._protocol.transport.write(frame.wire)

    async def send(self, frame: Frame) -> None:
        await self._protocol.writable.wait()
        if not self._open():
            raise ConnectionError("socket closed")
        self._protocol.transport.write(frame.wire)

    async def close(self, code: int, reason: str) -> None:
        p = self._protocol
        if not self._open():
            return
        if p.writable.is_set():
            # The server's own close: close frame, disconnect event, close timer.
            with contextlib.suppress(Exception):
                await p.send({"type": "websocket.close", "code": code, "reason": reason})
            return
        # It does not read now: queue the close frame after what it has not read yet, and
        # drop the connection if it still has not taken them after the close timeout.
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        p.close_timer = asyncio.get_running_loop().call_later(p.close_timeout, p.transport.abort)
