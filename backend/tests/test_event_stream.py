"""The Redis event stream's backfill: the newest events whatever the entries' sizes (one
flush per entry: a quiet worker writes one event per entry, a busy one hundreds)."""

from __future__ import annotations

from tasklens.tracking.event_stream import LATEST_ENTRIES_PER_READ, RedisEventStream


def event(i: int) -> dict[str, object]:
    return {"type": "task_event", "task_name": "t", "status": "success", "data": {"i": i}}


async def test_the_newest_events_across_entries_of_any_size(redis_url: str) -> None:
    stream = RedisEventStream(redis_url)
    try:
        assert await stream.latest(50) == []  # nothing published yet
        await stream.publish([event(0)])
        await stream.publish([event(i) for i in range(1, 4)])
        await stream.publish([event(i) for i in range(4, 604)])  # two entries: 500 + 100
        for i in range(604, 604 + 2 * LATEST_ENTRIES_PER_READ):  # more entries than one read
            await stream.publish([event(i)])
        total = 604 + 2 * LATEST_ENTRIES_PER_READ

        def numbers(events: list[dict[str, object]]) -> list[object]:
            return [e["data"]["i"] for e in events]  # type: ignore[index]

        assert numbers(await stream.latest(1)) == [total - 1]
        assert numbers(await stream.latest(50)) == list(range(total - 50, total))
        assert numbers(await stream.latest(150)) == list(range(total - 150, total))
        everything = await stream.latest(10_000)
        assert numbers(everything) == list(range(total))
        ids = [str(e["id"]) for e in everything]
        assert ids == sorted(ids) and len(set(ids)) == total
        # the same ids a resume gets: a backfilled client may reconnect with the last one
        assert await stream.replay(ids[-3]) == everything[-2:]
        assert await stream.latest(0) == []
    finally:
        await stream.close()
