"""The hub: a slow client loses its own oldest events and is told; every event is serialised
once for all clients; the socket caps per process and per token."""

from __future__ import annotations

import asyncio
import json
import time

from tasklens.live import FRAMES_PER_TURN, Batch, Frame, LiveClient, LiveHub
from tasklens.tracking.event_stream import InProcessEventStream


def event(i: int) -> dict[str, object]:
    return {"type": "task_event", "task_name": "t", "status": "success", "data": {"i": i}}


async def next_frames(client: LiveClient) -> list[Frame]:
    """What the client's sender writes next, frame by frame."""
    return [frame for batch in await client.next_batches() for frame in batch.frames]


async def test_a_slow_client_drops_its_oldest_events_and_is_told() -> None:
    bus = InProcessEventStream()
    hub = LiveHub(bus, max_buffered_per_client=100, broadcast_interval=0)
    await hub.start()
    await asyncio.sleep(0)  # let the hub subscribe
    slow, fast = hub.connect("slow"), hub.connect("fast")
    assert slow is not None and fast is not None
    received: list[str] = []

    async def read_fast() -> None:
        while len(received) < 1_000:
            received.extend(f.text for f in await next_frames(fast))

    reader = asyncio.create_task(read_fast())
    for start in range(0, 1_000, 50):
        await bus.publish([event(i) for i in range(start, start + 50)])
        await asyncio.sleep(0)  # the fast reader keeps up between batches
    await asyncio.wait_for(reader, 5)
    await hub.stop()

    assert [json.loads(f)["data"]["i"] for f in received] == list(range(1_000))
    frames = [json.loads(f.text) for f in await next_frames(slow)]
    assert frames[0]["type"] == "events_dropped"
    dropped = frames[0]["count"]
    kept = [f["data"]["i"] for f in frames[1:]]
    # whole broadcast rounds go (each of one or a few 50-event publishes here): the newest
    # 100 stay, and a round's worth more at most; the oldest are dropped and counted
    assert 100 <= len(kept) < 100 + 200
    assert kept == list(range(dropped, 1_000))


async def test_each_event_is_serialised_once_for_all_clients() -> None:
    hub = LiveHub(InProcessEventStream())
    clients = [hub.connect(f"viewer-{i}") for i in range(3)]
    hub.broadcast([{**event(i), "id": f"{i:013d}-000000-00000"} for i in range(10)])
    batches = [await c.next_batches() for c in clients if c is not None]
    assert len(batches) == 3 and all(len(each) == 1 for each in batches)
    first_batch = batches[0][0]
    for [other_batch] in batches[1:]:  # one batch, one joined write, for every client
        assert other_batch is first_batch
        assert other_batch.wire is first_batch.wire
    got = [[frame for batch in each for frame in batch.frames] for each in batches]
    assert all(len(frames) == 10 for frames in got)
    for first, *others in zip(*got, strict=True):
        for other in others:  # the very same objects: one JSON text, one WebSocket frame
            assert other is first
            assert other.wire is first.wire
            assert other.payload is first.payload
    assert got[0][0].wire.endswith(got[0][0].payload)  # an unmasked text frame
    assert got[0][0].wire[0] == 0x81  # FIN + text
    assert first_batch.wire == b"".join(frame.wire for frame in got[0])


def test_the_hub_caps_sockets_per_process_and_per_token() -> None:
    hub = LiveHub(InProcessEventStream(), max_clients=3, max_clients_per_token=2)
    a1, a2 = hub.connect("alice"), hub.connect("alice")
    assert a1 is not None and a2 is not None
    assert hub.connect("alice") is None  # alice's cap
    b1 = hub.connect("bob")
    assert b1 is not None
    assert hub.connect("carol") is None  # the process's cap
    hub.disconnect(a1)
    hub.disconnect(a1)  # twice: counted once
    assert hub.client_count == 2
    assert hub.connect("alice") is not None
    assert hub.connect("alice") is None


async def test_with_few_clients_each_event_goes_at_once_not_after_an_interval() -> None:
    """A round to one client takes a fraction of a millisecond, and so does the pause after
    it: an event published right after the last one was received goes at once. Waiting out
    a fixed 50 ms interval each time would take 40 x 50 ms."""
    bus = InProcessEventStream()
    hub = LiveHub(bus, broadcast_interval=0.05)
    await hub.start()
    client = hub.connect("viewer")
    assert client is not None
    started = time.monotonic()
    for i in range(40):
        await bus.publish([event(i)])
        frames = await asyncio.wait_for(next_frames(client), 10)
        assert [json.loads(f.text)["data"]["i"] for f in frames] == [i]
    elapsed = time.monotonic() - started
    await hub.stop()
    assert elapsed < 40 * 0.05 / 2, elapsed


async def test_a_heavy_stream_to_many_clients_is_coalesced_into_rounds() -> None:
    """Each round to 300 clients is handed out over several turns of the loop, then the hub
    pauses as long as the round took: the stream entries published meanwhile (one per turn
    here) go together in the next round, so a client wakes far fewer times than entries."""
    bus = InProcessEventStream()
    hub = LiveHub(bus, broadcast_interval=0.05)
    await hub.start()
    clients = [hub.connect(f"viewer-{i}") for i in range(300)]
    received: list[list[str]] = [[] for _ in clients]
    wakes = [0] * len(clients)

    async def read(n: int, client: LiveClient | None) -> None:
        assert client is not None
        while len(received[n]) < 400:
            received[n].extend(f.text for f in await next_frames(client))
            wakes[n] += 1

    readers = [asyncio.create_task(read(n, c)) for n, c in enumerate(clients)]
    for i in range(400):  # 400 stream entries, each of one event, as fast as they come
        await bus.publish([event(i)])
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*readers), 30)
    await hub.stop()
    for frames in received:
        assert [json.loads(f)["data"]["i"] for f in frames] == list(range(400))
    assert max(wakes) < 100, max(wakes)


async def test_a_client_that_keeps_up_is_written_at_once_in_order() -> None:
    """`direct` stands in for the socket (api/ws_protocol.py's `write_now`): once the hello is
    sent by the client's sender, the hub writes each broadcast itself; while the socket is
    full, or the sender holds frames not yet written, broadcasts wait in the buffer, so
    nothing overtakes and the sender writes them in order."""
    hub = LiveHub(InProcessEventStream())
    client = hub.connect("viewer")
    assert client is not None
    written: list[bytes] = []
    socket_takes_writes = True

    def direct(wire: bytes) -> bool:
        if socket_takes_writes:
            written.append(wire)
        return socket_takes_writes

    client.offer(Batch.notice({"type": "hello"}))
    client.direct = direct
    frames = [Frame(f"{i:013d}-000000-00000", json.dumps(event(i)).encode()) for i in range(6)]
    client.offer(Batch(frames[0:1]))  # the hello is not sent yet: this waits behind it
    assert written == []
    first = await client.next_batches()  # the sender takes both ...
    client.offer(Batch(frames[1:2]))  # ... and, until it has written them, the hub waits
    assert written == []
    client.sent()
    second = await client.next_batches()
    client.sent()
    assert [f.id for b in first + second for f in b.frames] == ["", frames[0].id, frames[1].id]
    client.offer(Batch(frames[2:3]))  # nothing waits: written by the hub itself
    assert written == [frames[2].wire]
    socket_takes_writes = False  # the socket is full: the sender takes over, with its timeout
    client.offer(Batch(frames[3:4]))
    socket_takes_writes = True
    client.offer(Batch(frames[4:5]))  # behind the one waiting, not past it
    assert written == [frames[2].wire]
    assert [f.id for b in await client.next_batches() for f in b.frames] == [
        frames[3].id,
        frames[4].id,
    ]
    client.sent()
    client.offer(Batch(frames[5:6]))
    assert written == [frames[2].wire, frames[5].wire]


async def test_a_burst_is_serialised_over_several_turns_of_the_loop() -> None:
    """Thousands of events at once (every task starting together) are turned into frames a
    few hundred per turn: whatever else the process serves runs between, not after all. Turns
    counted against one event's way through the hub, in the same run."""
    bus = InProcessEventStream()
    hub = LiveHub(bus, max_buffered_per_client=10_000, broadcast_interval=0)
    await hub.start()
    client = hub.connect("viewer")
    assert client is not None
    turns = 0
    done = False

    async def other_work() -> None:  # a request's share of the loop: one step per turn
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    async def turns_until_received(count: int, first: int) -> tuple[int, list[int]]:
        await bus.publish([event(i) for i in range(first, first + count)])
        before = turns
        frames = await asyncio.wait_for(next_frames(client), 10)
        return turns - before, [json.loads(f.text)["data"]["i"] for f in frames]

    ticker = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    one, got_one = await turns_until_received(1, 0)
    slices = 5
    burst, got_burst = await turns_until_received(slices * FRAMES_PER_TURN, 1)
    done = True
    await ticker
    await hub.stop()
    assert got_one == [0]
    assert got_burst == list(range(1, 1 + slices * FRAMES_PER_TURN))
    assert burst >= one + slices - 1, (one, burst)  # a turn between each slice and the next


async def test_a_backfill_is_the_newest_retained_events_then_live_ones_none_twice() -> None:
    bus = InProcessEventStream(retained=100)
    hub = LiveHub(bus, broadcast_interval=0)
    await hub.start()
    await bus.publish([event(i) for i in range(150)])  # the oldest 50 are no longer retained
    await asyncio.sleep(0.01)
    assert [e["data"]["i"] for e in await bus.latest(3)] == [147, 148, 149]
    assert [e["data"]["i"] for e in await bus.latest(1_000)] == list(range(50, 150))
    assert await bus.latest(0) == []

    client = hub.connect("viewer")  # as the route does: connected first, then backfilled
    assert client is not None
    client.offer(Batch.notice({"type": "hello"}))
    await bus.publish([event(150), event(151)])  # live while the backfill is read
    await asyncio.sleep(0.01)
    client.resume(await hub.latest(5))
    await bus.publish([event(152)])
    await asyncio.sleep(0.01)
    frames = [json.loads(f.text) for f in await next_frames(client)]
    await hub.stop()
    assert frames[0]["type"] == "hello"
    assert [f["data"]["i"] for f in frames[1:]] == [147, 148, 149, 150, 151, 152]
