"""uvicorn's WebSocket protocol with two ASGI extensions the live hub needs at scale.

- `tasklens.frames`: a `websocket.send` message may carry, under this key, a list of byte
  strings of WebSocket frames already built (live.Batch.wire) instead of one text: written as
  they are, the same objects for every client, with no copy or join per client. Offered
  only on a connection without extensions (permessage-deflate is off in `tasklens serve`:
  compressing per client was the main cost). Its value holds `write`: writes one such byte
  string at once, in the caller's turn, and says whether it did (not when the transport's
  buffer is past its high-water mark or the connection is closing): the hub writes a
  broadcast to a client that keeps up itself, without waking the client's sender.
- `tasklens.abort`: a `websocket.close` message with this key cuts the connection at once,
  with a TCP reset. A client that stopped reading would never take the close frame either:
  a plain close would keep its socket, and the kernel the megabytes queued for it, until it
  did.

Each socket's kernel send buffer is capped (SEND_BUFFER_BYTES) rather than autotuned up to
4 MiB: that is what a client that stopped reading makes the kernel hold, and how much it must
fill before the send timeout starts counting.

The route falls back to plain sends and closes where the extension is missing (another ASGI
server, a test client).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any, cast

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

FRAMES = "tasklens.frames"
ABORT = "tasklens.abort"


SEND_BUFFER_BYTES = 256 * 1024


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:  # not the kernel's autotuned megabytes for a client that stalls
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None and not self.conn.extensions:
            scope["extensions"][FRAMES] = {"write": self.write_now}
            scope["extensions"][ABORT] = {}

    def write_now(self, wire: bytes) -> bool:
        """Writes `wire` (prebuilt frames) when the transport takes it without waiting."""
        if not self.writable.is_set() or self.disconnected or self.close_sent:
            return False
        if self.transport.is_closing():
            return False
        self.transport.write(wire)
        return True

    async def send(self, message: ASGISendEvent) -> None:
        extra = cast(dict[str, Any], message)
        if message["type"] == "websocket.send" and FRAMES in extra:
            await self.writable.wait()  # the transport's buffer is below its high-water mark
            if self.disconnected or self.close_sent or self.transport.is_closing():
                raise ClientDisconnected()
            for wire in extra[FRAMES]:
                self.transport.write(wire)
            return
        if message["type"] == "websocket.close" and extra.get(ABORT):
            if not self.close_sent:
                self.close_sent = True
                self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # linger 0: reset, and drop what the kernel still holds
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        await super().send(message)
