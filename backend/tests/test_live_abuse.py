"""WebSocket abuse: malformed, huge and flooding clients and 1,000 idle connections on one
API process; a normal client next to them still gets its events promptly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from support import OPERATOR_TOKEN, Api, LiveEvents, Stack

from tasklens.api.routes.live import MAX_MESSAGE_BYTES

IDLE_CONNECTIONS = 1_000


async def _closed_code(socket_: Any, timeout: float = 10) -> int | None:
    """Reads until the server closes the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.wait_for(socket_.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


async def _open_idle(url: str, count: int) -> list[Any]:
    """`count` connections that never read past their hello, opened 100 at a time."""
    sockets: list[Any] = []

    async def one() -> Any:
        socket_ = await websockets.connect(url, open_timeout=30, max_queue=1)
        assert json.loads(await socket_.recv())["type"] == "hello"
        return socket_

    for start in range(0, count, 100):
        sockets += await asyncio.gather(*(one() for _ in range(min(100, count - start))))
    return sockets


async def test_abusive_and_idle_clients_do_not_hurt_a_normal_one(embedded: Stack) -> None:
    # One token opens them all here: lift its cap (test_live_stall.py tests the caps).
    embedded.env["TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN"] = str(IDLE_CONNECTIONS + 10)
    api: Api = embedded.start_api()
    url = api.ws_url()
    opening = time.monotonic()
    idle = await _open_idle(url, IDLE_CONNECTIONS)
    opened_in = time.monotonic() - opening
    try:
        async with LiveEvents(url) as normal:
            # A huge frame: refused by the server with 1009 (message too big).
            async with websockets.connect(url, max_size=None) as huge:
                await huge.recv()  # hello
                await huge.send("x" * (MAX_MESSAGE_BYTES * 4))
                assert await _closed_code(huge) == 1009

            # A flood of pings: closed with 1008 once past the burst, not answered forever.
            async with websockets.connect(url) as flood:
                await flood.recv()
                with contextlib.suppress(websockets.ConnectionClosed):
                    for _ in range(5_000):
                        await flood.send('{"type": "ping"}')
                assert await _closed_code(flood) == 1008

            # Malformed frames are ignored: the socket stays open and still answers a ping.
            async with websockets.connect(url) as odd:
                await odd.recv()
                for frame in (b"\x00\xff binary", "not json", "[1, 2]", '{"type": 5}', "{" * 5000):
                    await odd.send(frame)
                await odd.send('{"type": "ping"}')
                assert json.loads(await asyncio.wait_for(odd.recv(), 5)) == {"type": "pong"}

            # The normal client gets a task's events promptly, with 1,000 others connected.
            sent = time.monotonic()
            [task_id] = api.enqueue("demo.quick", n=7)
            await normal.wait_status(task_id, "success", timeout=15)
            event_latency = time.monotonic() - sent

        # An unauthenticated socket is closed with a policy violation.
        async with websockets.connect(api.ws_url(token=None)) as anonymous:
            await anonymous.send(json.dumps({"token": "wrong-token-0123456789"}))
            assert await _closed_code(anonymous) == 1008

        assert api.process.popen.poll() is None
        assert httpx.get(api.base_url + "/health", timeout=5).status_code == 200
        assert opened_in < 60, f"{IDLE_CONNECTIONS} connections took {opened_in:.1f}s"
        assert event_latency < 10, f"events took {event_latency:.1f}s to arrive"
        with api.client(OPERATOR_TOKEN) as client:
            assert client.get(f"/api/v1/tasks/{task_id}").json()["status"] == "success"
    finally:
        await asyncio.gather(*(s.close() for s in idle), return_exceptions=True)
