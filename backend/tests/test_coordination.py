"""Claims are atomic across processes and never outlive their TTL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from tasklens.coordination import Claim, Coordinator, InProcessCoordinator, RedisCoordinator

CONTENDER = textwrap.dedent("""
    import asyncio, json, sys
    from tasklens.coordination import RedisCoordinator

    async def main(url, name):
        coordinator = RedisCoordinator(url)
        results = await asyncio.gather(*(
            coordinator.claim("analysis:same", f"{name}-{i}", 30) for i in range(50)))
        await coordinator.close()
        print(json.dumps(results))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def test_100_concurrent_claims_from_two_processes_have_one_winner(redis_url: str) -> None:
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, redis_url, name], stdout=subprocess.PIPE, text=True
        )
        for name in ("api-a", "api-b")
    ]
    results = [r for p in contenders for r in json.loads(p.communicate(timeout=60)[0])]
    winners = [r for r in results if r is None]
    assert len(results) == 100 and len(winners) == 1
    holders = set(results) - {None}
    assert len(holders) == 1  # everyone else was told the same winner
    [holder] = holders
    assert holder.startswith(("api-a-", "api-b-"))


@pytest.fixture(params=["in-process", "redis"])
async def coordinator(request: pytest.FixtureRequest) -> Coordinator:
    if request.param == "redis":
        return RedisCoordinator(request.getfixturevalue("redis_url"))
    return InProcessCoordinator()


async def test_only_the_holder_releases_and_the_ttl_frees_a_lost_claim(
    coordinator: Coordinator,
) -> None:
    assert await coordinator.claim("subject:x", "task-1", ttl_seconds=1) is None
    assert await coordinator.claim("subject:x", "task-2", ttl_seconds=1) == "task-1"
    assert await coordinator.release("subject:x", "task-2") is False  # not its claim
    await asyncio.sleep(1.1)  # task-1's worker died: the claim expires
    assert await coordinator.claim("subject:x", "task-2", ttl_seconds=30) is None
    assert await coordinator.release("subject:x", "task-1") is False  # a late release
    assert await coordinator.claim("subject:x", "task-3", ttl_seconds=30) == "task-2"
    assert await coordinator.release("subject:x", "task-2") is True
    assert await coordinator.claim("subject:x", "task-3", ttl_seconds=30) is None
    await coordinator.close()


async def test_a_claim_is_refused_when_a_run_finished_since_the_caller_looked(
    coordinator: Coordinator,
) -> None:
    key = "analysis:same"
    assert (await coordinator.claim_unless_finished(key, "run-1", 30, seen=None)).won
    assert await coordinator.claim_unless_finished(key, "late", 30, None) == Claim(holder="run-1")
    await coordinator.finish(key, "run-1", remember_seconds=1)
    assert await coordinator.holder(key) is None
    # It read the cache before run-1 saved its result: it is told, not given the key.
    assert await coordinator.claim_unless_finished(key, "late", 30, None) == Claim(
        finished_by="run-1"
    )
    assert await coordinator.holder(key) is None
    # It read the cache after: run-1's result is what it saw, so the key is its.
    assert (await coordinator.claim_unless_finished(key, "run-2", 30, "run-1")).won
    assert (await coordinator.claim_unless_finished(key, "run-2", 30, "run-1")).won  # a retry
    await coordinator.finish(key, "run-1", remember_seconds=1)  # late: frees nobody else's
    assert await coordinator.holder(key) == "run-2"
    assert await coordinator.release(key, "run-2") is True
    await asyncio.sleep(1.1)  # the finisher is remembered only so long
    assert (await coordinator.claim_unless_finished(key, "run-3", 30, None)).won
    await coordinator.close()


async def test_a_failed_run_is_remembered_until_the_next_finishes_or_it_expires(
    coordinator: Coordinator,
) -> None:
    key = "analysis:broken"
    assert (await coordinator.claim_unless_finished(key, "run-1", 30, seen=None)).won
    await coordinator.fail(key, "run-1", remember_seconds=30)
    assert (await coordinator.holder(key), await coordinator.last_failed(key)) == (None, "run-1")
    assert (await coordinator.claim_unless_finished(key, "run-2", 30, seen=None)).won
    await coordinator.fail(key, "late", remember_seconds=30)  # run-2 holds it: not "late"'s
    assert (await coordinator.holder(key), await coordinator.last_failed(key)) == (
        "run-2",
        "run-1",
    )
    await coordinator.finish(key, "run-2", remember_seconds=30)  # a result: failure forgotten
    assert await coordinator.last_failed(key) is None
    await coordinator.fail(key, "run-3", remember_seconds=1)
    await asyncio.sleep(1.1)  # the stale interval passed: reading may run it again
    assert await coordinator.last_failed(key) is None
    await coordinator.close()
