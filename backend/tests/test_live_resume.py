"""Event ids and resume: a client that lost its WebSocket (its API process was killed)
reconnects to another one with its last event id and misses nothing, gets nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import websockets
from support import OPERATOR_TOKEN, Api, LiveEvents, Stack, seen_live, wait_for


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_client_resumes_on_another_api_process_without_loss_or_repeat(
    distributed: Stack,
) -> None:
    api_a = distributed.start_api("api-a")
    api_b = distributed.start_api("api-b")
    distributed.start_worker()
    async with LiveEvents(api_b.ws_url()) as witness, LiveEvents(api_a.ws_url()) as client:
        first = api_b.enqueue("demo.quick", count=5, n=1)
        await wait_until(
            lambda: all(client.statuses(t).count("success") == 1 for t in first),
            30,
            "the first tasks' events on api-a",
        )
        api_a.process.kill_hard()
        await wait_until(lambda: client.closed, 10, "the socket to api-a to drop")
        last_seen = client.event_ids()[-1]

        missed = api_b.enqueue("demo.quick", count=20, n=2)  # while the client is away
        await wait_until(
            lambda: all(witness.statuses(t).count("success") == 1 for t in missed),
            30,
            "the missed tasks to finish",
        )
        url = api_b.ws_url() + f"&since={last_seen}"
        async with LiveEvents(url) as resumed:
            later = api_b.enqueue("demo.quick", count=5, n=3)
            await wait_until(
                lambda: all(resumed.statuses(t).count("success") == 1 for t in later),
                30,
                "the later tasks' events after the resume",
            )
    ids = client.event_ids() + resumed.event_ids()
    assert len(ids) == len(set(ids))  # nothing twice
    assert ids == sorted(ids)  # ids increase across both API processes
    assert "resync" not in [f.get("type") for f in resumed.frames]
    # Everything the witness (connected all along) saw after last_seen, the client has too.
    expected = [i for i in witness.event_ids() if i > last_seen]
    assert resumed.event_ids()[: len(expected)] == expected
    for task_id in missed + later:  # pending comes from the API, the rest from the worker
        seen = sorted(resumed.statuses(task_id))
        assert seen in [sorted(s) for s in seen_live("pending", "running", "success")]


async def test_resume_in_the_embedded_mode_and_resync_when_the_id_is_not_retained(
    embedded: Stack,
) -> None:
    api: Api = embedded.start_api()
    async with LiveEvents(api.ws_url()) as first:
        [one] = api.enqueue("demo.quick", n=1)
        await first.wait_status(one, "success")
    last_seen = first.event_ids()[-1]
    [two] = api.enqueue("demo.quick", n=2)
    wait_for(lambda: api.task(two).get("status") == "success", timeout=20, what="task two")

    async with LiveEvents(api.ws_url() + f"&since={last_seen}") as resumed:
        await resumed.wait_status(two, "success")
    assert resumed.frames[0]["type"] == "hello"
    assert resumed.statuses(two) in seen_live("pending", "running", "success")
    assert not set(resumed.event_ids()) & set(first.event_ids())

    # The same resume with the token and `since` in the first message instead of the URL.
    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send(json.dumps({"token": OPERATOR_TOKEN, "since": last_seen}))
        frames: list[dict[str, Any]] = []
        while len([f for f in frames if f.get("type") == "task_event"]) < len(resumed.event_ids()):
            frames.append(json.loads(await asyncio.wait_for(socket_.recv(), 5)))
    assert frames[0]["type"] == "hello"
    assert [f["id"] for f in frames[1:]] == resumed.event_ids()

    for since in ("0000000000001-000000-00000", "garbled", ""):
        async with LiveEvents(api.ws_url() + f"&since={since}") as stale:
            await wait_until(lambda: len(stale.frames) >= 2, 5, "the resync frame")
        assert [f["type"] for f in stale.frames[:2]] == ["hello", "resync"]
        assert not stale.event_ids()


async def test_a_new_client_is_backfilled_with_the_newest_events_then_gets_live_ones(
    embedded: Stack,
) -> None:
    api: Api = embedded.start_api()
    async with LiveEvents(api.ws_url()) as witness:  # no backfill asked: none sent
        done = api.enqueue("demo.quick", count=3, n=1)
        for task_id in done:
            await witness.wait_status(task_id, "success")
    newest = witness.event_ids()[-4:]
    assert [f["type"] for f in witness.frames][:1] == ["hello"]

    async with LiveEvents(api.ws_url() + "&backfill=4") as backfilled:
        await wait_until(lambda: len(backfilled.event_ids()) >= 4, 5, "the backfill")
        [later] = api.enqueue("demo.quick", n=2)
        await backfilled.wait_status(later, "success")
    assert backfilled.frames[0]["type"] == "hello"
    assert backfilled.event_ids()[:4] == newest  # oldest first, as they happened
    assert backfilled.statuses(later) in seen_live("pending", "running", "success")
    ids = backfilled.event_ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 4 + len(backfilled.statuses(later))

    # In the first message, as the dashboard asks; a `since` wins over it.
    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send(json.dumps({"token": OPERATOR_TOKEN, "backfill": 2}))
        frames = [json.loads(await asyncio.wait_for(socket_.recv(), 5)) for _ in range(3)]
    assert frames[0]["type"] == "hello"
    assert [f["id"] for f in frames[1:]] == ids[-2:]
    async with LiveEvents(api.ws_url() + f"&since={ids[-2]}&backfill=50") as resumed:
        await wait_until(lambda: len(resumed.event_ids()) >= 1, 5, "the replay")
        await asyncio.sleep(0.3)
    assert resumed.event_ids() == ids[-1:]


async def test_a_bad_backfill_closes_the_socket_naming_it(embedded: Stack) -> None:
    api: Api = embedded.start_api()
    for bad in ("-1", "501", "ten", "1e3"):
        async with websockets.connect(api.ws_url() + f"&backfill={bad}") as socket_:
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(socket_.recv(), 5)
        assert socket_.close_code == 1008
        assert socket_.close_reason == "backfill: a whole number from 0 to 500"
    for bad_json in (True, 2.5, "50", -3, 501, [1]):
        async with websockets.connect(api.ws_url(token=None)) as socket_:
            await socket_.send(json.dumps({"token": OPERATOR_TOKEN, "backfill": bad_json}))
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(socket_.recv(), 5)
        assert socket_.close_code == 1008, bad_json
        assert socket_.close_reason == "backfill: a whole number from 0 to 500"
