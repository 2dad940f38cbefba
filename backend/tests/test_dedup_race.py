"""The deduplication race, made deterministic: a request reads the cache before the running
analysis saves its result and claims after the run freed its claim. The window is held
open by a gate in front of the real Redis coordinator; the run is a real `tasklens worker`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from git_repo import make_repository
from sqlalchemy import text
from support import API_TOKENS, Stack

from tasklens import monitoring
from tasklens.analyses.kinds import AnalysisKind
from tasklens.analyses.periods import Period
from tasklens.analyses.service import Analysis, AnalysisService, Submitted
from tasklens.coordination import Claim, RedisCoordinator
from tasklens.process import serve_runtime
from tasklens.runtime import Runtime
from tasklens.settings import Settings


class GatedCoordinator(RedisCoordinator):
    """Redis claims that wait at a gate while it is shut: the request has read the cache
    and not yet claimed, for as long as the test needs."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(redis_url)
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def claim_unless_finished(
        self, key: str, owner: str, ttl_seconds: int, seen: str | None
    ) -> Claim:
        if not self.open.is_set():
            self.waiting += 1
            await self.open.wait()
        return await super().claim_unless_finished(key, owner, ttl_seconds, seen)


async def _poll(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


class Race:
    def __init__(self, runtime: Runtime, gate: GatedCoordinator, stack: Stack) -> None:
        self.runtime = runtime
        self.gate = gate
        self.stack = stack

    async def submit(self, analysis: Analysis, force: bool = False) -> Submitted:
        return await self.runtime.analyses.submit(analysis, force=force)

    async def status(self, task_id: str) -> str | None:
        async with self.runtime.sessions() as session:
            attempts = await monitoring.task_attempts(session, task_id)
        return str(attempts[-1].status) if attempts else None

    async def wait_success(self, task_id: str) -> None:
        async def done() -> bool:
            return await self.status(task_id) == "success"

        await _poll(f"task {task_id} to succeed", done)

    async def executions(self) -> int:
        """Runs of the analysis task, once every one logged has finished: attempts that
        started, by distinct task id, counted in the PostgreSQL log."""

        async def settled() -> bool:
            async with self.runtime.engine.connect() as conn:
                unfinished = await conn.scalar(
                    text(
                        "SELECT count(*) FROM task_execution_logs "
                        "WHERE task_name = 'analysis.repository' "
                        "AND status IN ('pending', 'running')"
                    )
                )
            return bool(unfinished == 0)

        await asyncio.sleep(1)  # a second kick's pending row reaches the log first
        await _poll("every analysis run to finish", settled)
        async with self.runtime.engine.connect() as conn:
            runs = await conn.scalar(
                text(
                    "SELECT count(DISTINCT task_id) FROM task_execution_logs "
                    "WHERE task_name = 'analysis.repository' AND started_at IS NOT NULL"
                )
            )
        return int(runs or 0)


@pytest.fixture
async def race(tmp_path: Path, postgres_url: str, redis_url: str) -> AsyncIterator[Race]:
    repos = tmp_path / "repos"
    make_repository(repos / "project")
    env = {
        "TASKLENS_DATABASE_URL": postgres_url,
        "TASKLENS_REDIS_URL": redis_url,
        "TASKLENS_API_TOKENS": API_TOKENS,
        "TASKLENS_REPO_ROOTS": str(repos),
        "TASKLENS_REPORT_STALE_AFTER_SECONDS": "3",
    }
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        api_tokens=API_TOKENS.split(","),
        repo_roots=[repos],
        report_stale_after_seconds=3,
    )
    runtime = serve_runtime(settings)
    gate = GatedCoordinator(redis_url)
    runtime.analyses = AnalysisService(
        settings, runtime.engine, gate, runtime.broker, runtime.analyses.refresh_limiter
    )
    await runtime.start()
    stack = Stack(tmp_path, env)
    try:
        yield Race(runtime, gate, stack)
    finally:
        stack.stop_all()
        await gate.close()
        await runtime.stop()


async def _burst_across_the_finish(race: Race, analysis: Analysis) -> list[Submitted]:
    """One request starts the run; three more (one forced) read the cache while it is
    queued and are held before their claim until the run has saved and freed its claim."""
    first = await race.submit(analysis)
    assert (first.status, first.deduplicated, first.cached) == ("pending", False, False)
    race.gate.open.clear()
    late = [
        asyncio.create_task(race.submit(analysis)),
        asyncio.create_task(race.submit(analysis)),
        asyncio.create_task(race.submit(analysis, force=True)),
    ]

    async def all_waiting() -> bool:
        # The two plain ones share one claim (in one process the second waits for the
        # first's answer: analyses/service.py); the forced one claims for itself.
        return race.gate.waiting == len(late) - 1

    await _poll("the late requests to reach their claim", all_waiting)
    worker = race.stack.start_worker()
    await race.wait_success(first.task_id)
    race.gate.open.set()
    answers = [first, *await asyncio.gather(*late)]
    worker.stop()
    race.stack.processes.remove(worker)
    return answers


async def test_requests_that_read_the_cache_before_the_run_saved_join_it(race: Race) -> None:
    repo = race.runtime.settings.repo_roots[0] / "project"
    analysis = race.runtime.analyses.analysis(AnalysisKind.REPOSITORY, str(repo), Period.ALL)

    first, *late = await _burst_across_the_finish(race, analysis)

    assert {a.task_id for a in late} == {first.task_id}, late
    plain, plain_too, forced = late
    assert (plain.status, plain.cached, plain.deduplicated) == ("success", True, False)
    assert (plain_too.status, plain_too.cached) == ("success", True)
    # A forced request that came while the run was going joins it, as it would have had
    # it claimed a moment earlier.
    assert (forced.status, forced.cached, forced.deduplicated) == ("success", False, True)
    race.stack.start_worker()  # a second kick, if any, would run now and be counted
    assert await race.executions() == 1


async def test_a_stale_result_regenerated_during_the_burst_is_not_regenerated_twice(
    race: Race,
) -> None:
    repo = race.runtime.settings.repo_roots[0] / "project"
    analysis = race.runtime.analyses.analysis(AnalysisKind.REPOSITORY, str(repo), Period.ALL)
    worker = race.stack.start_worker()
    original = await race.submit(analysis)
    await race.wait_success(original.task_id)
    worker.stop()
    race.stack.processes.clear()
    await asyncio.sleep(3.5)  # the result is stale now (TASKLENS_REPORT_STALE_AFTER_SECONDS=3)

    regenerated, *late = await _burst_across_the_finish(race, analysis)

    assert regenerated.task_id != original.task_id
    assert {a.task_id for a in late} == {regenerated.task_id}, late
    assert all(a.status == "success" for a in late)
    race.stack.start_worker()
    assert await race.executions() == 2  # the original run and one regeneration
