"""`GET /api/v1/ws`: every lifecycle event, live. Token as `?token=` or a first message."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from tasklens.live import LiveClient
from tasklens.runtime import Runtime
from tasklens.tokens import Principal

router = APIRouter(tags=["live"])
AUTH_TIMEOUT_SECONDS = 5.0


async def _authenticate(websocket: WebSocket, runtime: Runtime) -> Principal | None:
    token = websocket.query_params.get("token")
    if token is None:
        with contextlib.suppress(TimeoutError, ValueError, WebSocketDisconnect):
            first = json.loads(
                await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
            )
            token = first.get("token") if isinstance(first, dict) else None
    return await runtime.tokens.authenticate(token if isinstance(token, str) else None)


async def _send_loop(websocket: WebSocket, client: LiveClient) -> None:
    while True:
        for frame in await client.next_frames():
            await websocket.send_text(frame)


async def _receive_loop(websocket: WebSocket, client: LiveClient) -> None:
    """Answers pings; anything else a client sends is ignored, malformed or not."""
    while True:
        text = await websocket.receive_text()
        with contextlib.suppress(ValueError):
            message = json.loads(text)
            if isinstance(message, dict) and message.get("type") == "ping":
                client.offer([json.dumps({"type": "pong"})])


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    principal = await _authenticate(websocket, runtime)
    if principal is None:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "missing or invalid token")
        return
    client = runtime.hub.connect()
    client.offer(
        [json.dumps({"type": "hello", "name": principal.name, "role": principal.role.value})]
    )
    tasks = [
        asyncio.create_task(_send_loop(websocket, client)),
        asyncio.create_task(_receive_loop(websocket, client)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        runtime.hub.disconnect(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(
                asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError
            ):
                await task
