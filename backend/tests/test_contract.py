"""specs/openapi.json is the API contract: it must match what the app serves, and the live
WebSocket's frames, which OpenAPI cannot describe by itself, are in it too and match what a
real server sends."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets
from pydantic import TypeAdapter
from support import OPERATOR_TOKEN, Stack, seen_live

from tasklens.api.app import openapi_document
from tasklens.api.live_messages import LiveAuth, LiveServerMessage, LiveTaskEvent
from tasklens.live import Batch, Frame, LiveClient

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"
SERVER_FRAME = TypeAdapter(LiveServerMessage)


def test_the_checked_in_contract_matches_the_app() -> None:
    assert json.loads(SPEC.read_text()) == json.loads(openapi_document()), (
        "specs/openapi.json is stale: run `./dev openapi` and commit it"
    )


def test_the_contract_describes_the_websocket_messages() -> None:
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    socket = spec["x-websocket"]["/api/v1/ws"]
    assert socket["server"] == {"$ref": "#/components/schemas/LiveServerMessage"}
    assert socket["client"] == {"$ref": "#/components/schemas/LiveClientMessage"}
    mapping = schemas["LiveServerMessage"]["discriminator"]["mapping"]
    assert sorted(mapping) == ["events_dropped", "hello", "pong", "resync", "task_event"]
    for ref in mapping.values():  # every frame type resolves to a schema in the document
        assert ref.removeprefix("#/components/schemas/") in schemas
    event = schemas["LiveTaskEvent"]
    assert event["properties"]["status"] == {"$ref": "#/components/schemas/TaskStatus"}
    assert set(event["required"]) == {"type", "id", "task_name", "status", "timestamp", "data"}


async def _frames_until(socket: Any, done: Any, timeout: float = 30) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not frames or not done(frames[-1]):
            frames.append(json.loads(await socket.recv()))
    return frames


async def test_every_frame_a_real_server_sends_is_in_the_contract(embedded: Stack) -> None:
    api = embedded.start_api()
    async with websockets.connect(api.ws_url(token=None)) as socket:
        await socket.send(LiveAuth(token=OPERATOR_TOKEN).model_dump_json())
        frames = await _frames_until(socket, lambda f: f["type"] == "hello")
        [task_id] = api.enqueue("demo.quick", n=1)
        frames += await _frames_until(
            socket, lambda f: f["type"] == "task_event" and f["status"] == "success"
        )
        await socket.send(json.dumps({"type": "ping"}))
        frames += await _frames_until(socket, lambda f: f["type"] == "pong")
    async with websockets.connect(api.ws_url() + "&since=not-an-id") as socket:
        frames += await _frames_until(socket, lambda f: f["type"] == "resync")

    parsed = [SERVER_FRAME.validate_python(frame).root for frame in frames]
    assert {type(message).__name__ for message in parsed} == {
        "LiveHello",
        "LiveTaskEvent",
        "LivePong",
        "LiveResync",
    }
    events = [m for m in parsed if isinstance(m, LiveTaskEvent) and m.data.task_id == task_id]
    assert [e.status for e in events] in seen_live("pending", "running", "success")


async def test_the_drop_notice_of_a_slow_client_is_in_the_contract() -> None:
    client = LiveClient("slow", max_buffered=2)
    for i in range(5):
        client.offer(Batch([Frame(str(i), b"{}")]))
    notice = (await client.next_batches())[0].frames[0]
    message = SERVER_FRAME.validate_json(notice.text).root
    assert message.type == "events_dropped"
    assert message.model_dump() == {"type": "events_dropped", "count": 3}
