"""`GET /api/v1/ws`: every lifecycle event, live. Token as `?token=` or a first message.

A client address past TASKLENS_AUTH_FAILURE_LIMIT failed token attempts gets a 429 with
Retry-After instead of the handshake (`?token=`), or 1008 (a first-message token).

Every `task_event` frame has an `"id"` (event_stream.py). A client that reconnects with
`?since=<last id>` (or `"since"` next to `"token"` in its first message) first gets every
retained event after that id, then the live ones; when that id is no longer retained, or
is garbled, it gets one `{"type": "resync"}` frame instead: refetch from the REST log.
Frames come in this order: `hello`, then `resync` or the replay, then live events.
A client without a `since` may ask for `?backfill=<n>` (or `"backfill": n`, 0 to 500): the
newest n retained events come where a replay would, so a dashboard opens on what just
happened; a `since` wins over it. Any other backfill closes the socket with 1008, naming it.

A process serves at most TASKLENS_WS_MAX_CONNECTIONS sockets, TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN
of them per token; past either cap the socket is closed with 1008. A client that does not
take a send within TASKLENS_WS_SEND_TIMEOUT_SECONDS (up to a quarter more: it stopped
reading) is cut off, so it holds no buffer and no sender of this process any longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from tasklens.api.deps import client_address
from tasklens.api.live_messages import MAX_BACKFILL
from tasklens.api.ws_protocol import ABORT, FRAMES
from tasklens.auth_throttle import Throttled
from tasklens.live import Batch, LiveClient
from tasklens.rate_limit import retry_after_header
from tasklens.runtime import Runtime
from tasklens.tokens import Principal

router = APIRouter(tags=["live"])
AUTH_TIMEOUT_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024  # a client only ever sends a token, a `since` and pings
FLOOD_RATE = 20.0  # messages per second, sustained
FLOOD_BURST = 100


class _Hello:
    """What the client said on connecting: its token's principal, the `since` it resumes
    from and the backfill it asks for (None: neither), as sent (checked by the route)."""

    __slots__ = ("backfill", "principal", "since")

    def __init__(self, principal: Principal | None, since: object, backfill: object) -> None:
        self.principal, self.since, self.backfill = principal, since, backfill


async def _authenticate(websocket: WebSocket, runtime: Runtime) -> _Hello:
    """Accepts the socket. Throttled past the failed-attempt limit (auth_throttle.py). A
    `?token=` is checked before the handshake, so that a throttled address can get a plain
    429."""
    address = client_address(websocket)
    token: object = websocket.query_params.get("token")
    since: object = websocket.query_params.get("since")
    backfill: object = _query_number(websocket.query_params.get("backfill"))
    if token is not None:
        principal = await runtime.throttle.authenticate(address, str(token))
        await websocket.accept()
        return _Hello(principal, since, backfill)
    await websocket.accept()
    with contextlib.suppress(TimeoutError, ValueError, KeyError, WebSocketDisconnect):
        first = json.loads(await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS))
        if isinstance(first, dict):
            token, since = first.get("token"), first.get("since", since)
            backfill = first.get("backfill", backfill)
    principal = await runtime.throttle.authenticate(
        address, token if isinstance(token, str) else None
    )
    return _Hello(principal, since, backfill)


def _query_number(value: str | None) -> object:
    """A query parameter's digits as the number a first message would send; else as is."""
    if value is not None and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    return value


def _backfill_count(value: object) -> int | None:
    """How many events to backfill (0 for none asked); None when it is not a whole number
    from 0 to MAX_BACKFILL."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BACKFILL:
        return value
    return None


async def _refuse_throttled(websocket: WebSocket, exc: Throttled) -> None:
    """A 429 with Retry-After before the handshake where the server can send one; else 1008."""
    if websocket.client_state == WebSocketState.CONNECTING:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            headers = {"Retry-After": retry_after_header(exc.retry_in)}
            await websocket.send_denial_response(
                JSONResponse({"error": str(exc)}, 429, headers=headers)
            )
            return
        await websocket.accept()
    await websocket.close(status.WS_1008_POLICY_VIOLATION, str(exc))


async def _send_loop(websocket: WebSocket, client: LiveClient, timeout: float) -> None:
    """Returns when a send took longer than `timeout` (up to a quarter more, drawn per
    client): the client is not reading. Clients that stalled together, as a crowd behind one
    proxy does, are then cut off over a spell rather than all in one turn of the loop."""
    prebuilt = FRAMES in websocket.scope.get("extensions", {})
    timeout *= random.uniform(1.0, 1.25)
    while True:
        batches = await client.next_batches()
        try:
            async with asyncio.timeout(timeout):
                if prebuilt:
                    wires = [batch.wire for batch in batches]
                    await websocket.send({"type": "websocket.send", FRAMES: wires})
                else:
                    for batch in batches:
                        for frame in batch.frames:
                            await websocket.send_text(frame.text)
        except TimeoutError:
            return
        client.sent()


async def _drop(websocket: WebSocket) -> None:
    """Closes a client that stopped reading without waiting for it to read the close."""
    reason = "too slow: events were not read in time"
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
        if ABORT in websocket.scope.get("extensions", {}):
            await websocket.send(
                {"type": "websocket.close", "code": 1008, "reason": reason, ABORT: True}
            )
        else:
            async with asyncio.timeout(1):
                await websocket.close(status.WS_1008_POLICY_VIOLATION, reason)


async def _receive_loop(websocket: WebSocket, client: LiveClient) -> None:
    """Answers pings; anything else a client sends is ignored, malformed or binary. A client
    sending faster than FLOOD_RATE messages/s (beyond a burst of FLOOD_BURST) is closed with
    1008: answering a flood would cost the other clients. Frames over MAX_MESSAGE_BYTES are
    refused by the server itself (1009; cli.py)."""
    allowance, last = float(FLOOD_BURST), time.monotonic()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        now = time.monotonic()
        allowance = min(float(FLOOD_BURST), allowance + (now - last) * FLOOD_RATE) - 1
        last = now
        if allowance < 0:
            await websocket.close(status.WS_1008_POLICY_VIOLATION, "too many messages")
            return
        text = message.get("text")
        if not isinstance(text, str):
            continue
        with contextlib.suppress(ValueError):
            parsed = json.loads(text)
            if isinstance(parsed, dict) and parsed.get("type") == "ping":
                client.offer(Batch.notice({"type": "pong"}))


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        hello = await _authenticate(websocket, runtime)
    except Throttled as exc:
        await _refuse_throttled(websocket, exc)
        return
    principal, since = hello.principal, hello.since
    if principal is None:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "missing or invalid token")
        return
    backfill = _backfill_count(hello.backfill)
    if backfill is None:
        await websocket.close(
            status.WS_1008_POLICY_VIOLATION, f"backfill: a whole number from 0 to {MAX_BACKFILL}"
        )
        return
    client = runtime.hub.connect(principal.name)
    if client is None:
        await websocket.close(
            status.WS_1008_POLICY_VIOLATION, "too many live connections: close one first"
        )
        return
    client.offer(
        Batch.notice({"type": "hello", "name": principal.name, "role": principal.role.value})
    )
    if since is not None:  # connected first: live events collect while the replay is read
        client.resume(await runtime.hub.replay(since) if isinstance(since, str) else None)
    elif backfill:  # the same way: live events after the newest backfilled one follow it
        client.resume(await runtime.hub.latest(backfill))
    frames = websocket.scope.get("extensions", {}).get(FRAMES)
    if isinstance(frames, dict) and callable(frames.get("write")):
        client.direct = frames["write"]  # only now: the replay goes first, through the sender
    sender = asyncio.create_task(
        _send_loop(websocket, client, runtime.settings.ws_send_timeout_seconds)
    )
    tasks = [sender, asyncio.create_task(_receive_loop(websocket, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not sender.cancelled() and sender.exception() is None:
            runtime.hub.disconnect(client)
            await _drop(websocket)
    finally:
        runtime.hub.disconnect(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(
                asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError
            ):
                await task
