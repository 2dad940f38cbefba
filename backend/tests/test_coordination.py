"""Claims are atomic across processes and never outlive their TTL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from tasklens.coordination import Coordinator, InProcessCoordinator, RedisCoordinator

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
