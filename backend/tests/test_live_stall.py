"""No WebSocket client can stall an API process: sockets past the caps are closed with 1008,
a client that stops reading is cut off after the send timeout (freeing its slot) while the
others keep getting their events, and no frame is compressed per client."""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, LiveEvents, Stack


async def _hello(url: str) -> Any:
    socket_ = await websockets.connect(url, open_timeout=30)
    assert json.loads(await asyncio.wait_for(socket_.recv(), 30))["type"] == "hello"
    return socket_


async def _refused(url: str) -> tuple[int | None, str]:
    async with websockets.connect(url, open_timeout=30) as socket_:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket_.recv(), 30)
    received = closed.value.rcvd
    return (received.code, received.reason) if received else (None, "")


async def _eventually_connects(url: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        socket_ = await websockets.connect(url, open_timeout=30)
        frame = json.loads(await asyncio.wait_for(socket_.recv(), 30))
        if frame.get("type") == "hello":
            return socket_
        await socket_.close()
        assert time.monotonic() < deadline, "the freed slot never came back"
        await asyncio.sleep(0.2)


async def test_sockets_past_the_caps_are_closed_with_1008(embedded: Stack) -> None:
    embedded.env["TASKLENS_WS_MAX_CONNECTIONS"] = "3"
    embedded.env["TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN"] = "2"
    api: Api = embedded.start_api()
    operator, viewer = api.ws_url(OPERATOR_TOKEN), api.ws_url(VIEWER_TOKEN)
    first, second = await _hello(operator), await _hello(operator)
    try:
        # No per-client compression: the frames are built once for every client.
        assert first.response.headers.get("Sec-WebSocket-Extensions") is None
        code, reason = await _refused(operator)  # the token's cap
        assert (code, reason) == (1008, "too many live connections: close one first")
        third = await _hello(viewer)
        assert (await _refused(viewer))[0] == 1008  # the process's cap
        await first.close()  # frees one slot of the operator token and of the process
        fourth = await _eventually_connects(operator)
        await asyncio.gather(third.close(), fourth.close())
    finally:
        await second.close()


def _stalled_socket(api: Api, token: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads: a tiny receive buffer,
    so what the server sends piles up in the server's buffers."""
    address = urlsplit(api.base_url)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((address.hostname, address.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)  # exactly the response head, nothing after it
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


class _Watched:
    """Whether the server cut a connection, seen without reading what waits in it (SO_ERROR
    is cleared once read, so the first sighting is kept)."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self._reset = False

    @property
    def reset(self) -> bool:
        error = self.raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._reset = self._reset or error in (errno.ECONNRESET, errno.EPIPE)
        return self._reset


def _done(reader: LiveEvents, task_id: str) -> bool:
    return "success" in reader.statuses(task_id)


async def test_a_client_that_stops_reading_is_dropped_and_holds_up_no_one(
    embedded: Stack,
) -> None:
    # Long enough that the test's own reader, busy decoding, is never taken for a stalled one.
    embedded.env["TASKLENS_WS_SEND_TIMEOUT_SECONDS"] = "5"
    embedded.env["TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN"] = "2"
    api: Api = embedded.start_api()
    stalled = _stalled_socket(api, OPERATOR_TOKEN)
    try:
        async with LiveEvents(api.ws_url(OPERATOR_TOKEN)) as reader:
            # The token is at its cap while the stalled socket is served.
            assert (await _refused(api.ws_url(OPERATOR_TOKEN)))[0] == 1008
            started = time.monotonic()
            # 20,000 progress events, ~8 MB, spread over at least 10 s: far more than the
            # kernel buffers between the server and the stalled socket, still coming well after
            # its send timeout. (Sent in half a second, most were dropped from the stalled
            # client's bounded buffer before they reached its socket, which then never filled.)
            task_ids = api.enqueue("demo.slow", count=2, steps=10_000, step_seconds=0.001)
            watched = _Watched(stalled)
            deadline = time.monotonic() + 120
            while not watched.reset or not all(_done(reader, t) for t in task_ids):
                assert time.monotonic() < deadline, (
                    f"reset: {watched.reset}, reader got {len(reader.event_ids())} events"
                )
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            # Its slot is free again: the token can open its second socket.
            await (await _eventually_connects(api.ws_url(OPERATOR_TOKEN))).close()
        assert elapsed < 120
    finally:
        stalled.close()
