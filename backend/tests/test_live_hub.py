"""A slow WebSocket client loses its own oldest events, is told how many, and holds up no one."""

from __future__ import annotations

import asyncio
import json

from tasklens.event_stream import InProcessEventStream
from tasklens.live import LiveHub


def event(i: int) -> dict[str, object]:
    return {"type": "task_event", "task_name": "t", "status": "success", "data": {"i": i}}


async def test_a_slow_client_drops_its_oldest_events_and_is_told() -> None:
    bus = InProcessEventStream()
    hub = LiveHub(bus, max_buffered_per_client=100)
    await hub.start()
    await asyncio.sleep(0)  # let the hub subscribe
    slow, fast = hub.connect(), hub.connect()
    received: list[str] = []

    async def read_fast() -> None:
        while len(received) < 1_000:
            received.extend(await fast.next_frames())

    reader = asyncio.create_task(read_fast())
    for start in range(0, 1_000, 50):
        await bus.publish([event(i) for i in range(start, start + 50)])
        await asyncio.sleep(0)  # the fast reader keeps up between batches
    await asyncio.wait_for(reader, 5)
    await hub.stop()

    assert [json.loads(f)["data"]["i"] for f in received] == list(range(1_000))
    frames = [json.loads(f) for f in await slow.next_frames()]
    assert frames[0] == {"type": "events_dropped", "count": 900}
    assert [f["data"]["i"] for f in frames[1:]] == list(range(900, 1_000))
