"""The alert engine in-process on real PostgreSQL and Redis, with a local webhook receiver:
log rows written as a worker would, the engine's rounds run one by one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_sqlite
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_receiver import SECRET_PATH, Receiver, webhook_receiver

from tasklens.alerts import firings
from tasklens.alerts.engine import AlertEngine
from tasklens.alerts.failure_counts import failure_counts
from tasklens.alerts.measures import Measures, Sources
from tasklens.alerts.webhooks import Notifier
from tasklens.failures.fingerprint import signature
from tasklens.lease import RedisLease, SoleLease
from tasklens.tracking.database import create_engine
from tasklens.tracking.models import TaskExecutionLog, TaskStatus, utcnow
from tasklens.tracking.recorder import build_recorder
from tasklens.tracking.redis_keys import ALERTS_LEASE, LOG_ROWS_DROPPED, LOG_SPILL, WORKERS

FLAKY = "demo.flaky"


def write_file(path: Path, receiver_url: str, *rules: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"webhooks": {"ops": receiver_url}, "rules": list(rules)}))
    return path


def failing_rule(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "flaky-failing",
        "kind": "failure_rate",
        "task_name": FLAKY,
        "window_minutes": 5,
        "threshold": 0.5,
        "min_runs": 5,
        "notify": ["ops"],
        "cooldown_minutes": 10,
    } | overrides


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url, "tasklens")
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def receiver() -> Any:
    with webhook_receiver() as receiver:
        yield receiver


def alert_engine(
    engine: AsyncEngine,
    path: Path,
    redis: Redis | None = None,
    lease_owner: str | None = None,
    notifier: Notifier | None = None,
) -> AlertEngine:
    recorder = build_recorder(str(engine.url), None, engine=engine)
    return AlertEngine(
        path,
        Measures(Sources(engine, redis, "tasklens", recorder)),
        SoleLease() if lease_owner is None else RedisLease(redis, lease_owner, ALERTS_LEASE),  # type: ignore[arg-type]
        notifier or Notifier(first_delay=0.05),
        interval=0.2,
        dashboard_url="http://dash.example:8000",
    )


async def add_runs(engine: AsyncEngine, status: str, count: int, duration_ms: float = 5) -> None:
    now = utcnow()
    rows = [
        TaskExecutionLog(
            task_id=f"{status}-{time.monotonic_ns()}-{i}",
            task_name=FLAKY,
            status=TaskStatus(status),
            created_at=now - timedelta(seconds=1),
            completed_at=now,
            duration_ms=duration_ms,
        ).model_dump(exclude={"id"})
        for i in range(count)
    ]
    async with engine.begin() as conn:
        await conn.execute(TaskExecutionLog.__table__.insert(), rows)  # type: ignore[attr-defined]


async def wait_posts(receiver: Receiver, count: int, timeout: float = 10) -> None:
    await asyncio.to_thread(receiver.wait, count, None, timeout)


async def test_failures_fire_once_within_the_cooldown_and_resolve_when_they_stop(
    engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "alerts.json", receiver.url, failing_rule())
    alerts = alert_engine(engine, path)
    await add_runs(engine, "success", 2)
    await add_runs(engine, "failed", 3)  # 3 of 5 failed: 0.6 > 0.5 with 5 runs
    try:
        await alerts.run_once()
        await wait_posts(receiver, 1)
        for _ in range(3):  # still firing: no repeat
            await add_runs(engine, "failed", 1)
            await alerts.run_once()
        await asyncio.sleep(0.3)
        [firing] = receiver.bodies()
        assert firing["state"] == "firing"
        assert firing["rule"] == "flaky-failing" and firing["kind"] == "failure_rate"
        assert firing["threshold"] == 0.5 and firing["value"] == pytest.approx(0.6)
        assert (
            firing["url"]
            == "http://dash.example:8000/monitoring?status=failed&task_name=demo.flaky"
        )
        assert "flaky-failing is firing" in firing["text"]
        assert firing["_path"] == SECRET_PATH

        await add_runs(engine, "success", 40)  # recovered: 6 of 46 failed
        await alerts.run_once()
        await wait_posts(receiver, 2)
        resolved = receiver.bodies()[1]
        assert resolved["state"] == "resolved" and resolved["since"] == firing["since"]
        assert resolved["firing_id"] == firing["firing_id"]

        await add_runs(engine, "failed", 60)  # fires again within the cooldown: recorded, not sent
        await alerts.run_once()
        history = await firings.history(engine)
        assert [(f.resolved_at is None, f.notified) for f in history] == [
            (True, False),
            (False, True),
        ]
        await asyncio.sleep(0.3)
        assert len(receiver.bodies()) == 2
    finally:
        await alerts.stop()


async def test_a_receiver_answering_500_is_retried_with_backoff_until_it_takes_it(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    with webhook_receiver(answers=[500, 500, 503]) as receiver:
        path = write_file(tmp_path / "alerts.json", receiver.url, failing_rule(min_runs=1))
        notifier = Notifier(first_delay=0.1)
        alerts = alert_engine(engine, path, notifier=notifier)
        await add_runs(engine, "failed", 1)
        try:
            started = time.monotonic()
            await alerts.run_once()
            assert time.monotonic() - started < 1  # the round does not wait on the receiver
            await wait_posts(receiver, 4)
            assert [b["state"] for b in receiver.bodies()] == ["firing"] * 4
            assert len({json.dumps(b, sort_keys=True) for b in receiver.bodies()}) == 1
            assert notifier.stats.delivered == 1 and notifier.stats.retried == 3
        finally:
            await alerts.stop()


async def test_two_evaluators_sharing_redis_send_one_notification(
    engine: AsyncEngine, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "alerts.json", receiver.url, failing_rule(min_runs=1))
    one = alert_engine(engine, path, redis, "one")
    two = alert_engine(engine, path, redis, "two")
    await add_runs(engine, "failed", 5)
    try:
        for _ in range(3):
            await asyncio.gather(one.run_once(), two.run_once())
        await wait_posts(receiver, 1)
        await asyncio.sleep(0.3)
        assert len(receiver.bodies()) == 1
        # the holder stops: the other takes over at its next round, and keeps the firing
        holder, other = (one, two) if one._leading else (two, one)
        await holder.stop()
        await other.run_once()
        assert other._leading
        await add_runs(engine, "success", 100)
        await other.run_once()
        await wait_posts(receiver, 2)
        assert [b["state"] for b in receiver.bodies()] == ["firing", "resolved"]
    finally:
        await one.stop()
        await two.stop()


async def test_no_workers_fires_after_the_last_heartbeat_is_older_than_its_threshold(
    engine: AsyncEngine, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    rule = {"name": "nobody", "kind": "no_workers", "threshold": 40, "notify": ["ops"]}
    path = write_file(tmp_path / "alerts.json", receiver.url, rule)
    alerts = alert_engine(engine, path, redis, "me")
    beat = {"id": "w:1", "last_seen": time.time()}
    await redis.hset(WORKERS, "w:1", json.dumps(beat))
    try:
        await alerts.run_once()
        assert (await firings.open_firings(engine)) == {}
        # silent for 80 s: offline after 30, so 50 s without a worker > 40
        await redis.hset(WORKERS, "w:1", json.dumps(beat | {"last_seen": time.time() - 80}))
        await alerts.run_once()
        await wait_posts(receiver, 1)
        body = receiver.bodies()[0]
        assert body["kind"] == "no_workers" and body["value"] == pytest.approx(50, abs=2)
        assert body["url"] == "http://dash.example:8000/queues"
        await redis.hset(WORKERS, "w:1", json.dumps(beat | {"last_seen": time.time()}))
        await alerts.run_once()
        await wait_posts(receiver, 2)
    finally:
        await alerts.stop()


async def test_queue_age_reads_the_oldest_message_no_worker_has_taken(
    engine: AsyncEngine, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    rule = {"name": "stuck", "kind": "queue_age", "threshold": 60, "notify": ["ops"]}
    path = write_file(tmp_path / "alerts.json", receiver.url, rule)
    alerts = alert_engine(engine, path, redis, "me")
    two_minutes_ago = int((time.time() - 120) * 1000)
    await redis.xgroup_create("tasklens:low", "tasklens", id="0", mkstream=True)
    await redis.xadd("tasklens:low", {"data": "taken"}, id=f"{two_minutes_ago - 5}-0")
    await redis.xreadgroup("tasklens", "w", {"tasklens:low": ">"}, count=1)  # delivered
    await redis.xadd("tasklens:low", {"data": "waiting"}, id=f"{two_minutes_ago}-0")
    try:
        await alerts.run_once()
        await wait_posts(receiver, 1)
        body = receiver.bodies()[0]
        assert body["value"] == pytest.approx(120, abs=3)
        [firing] = (await firings.open_firings(engine)).values()
        assert firing.detail == {"queue": "low"}
        await redis.xreadgroup("tasklens", "w", {"tasklens:low": ">"}, count=1)
        await alerts.run_once()
        await wait_posts(receiver, 2)
    finally:
        await alerts.stop()


async def test_slow_fires_on_the_p95_of_successful_runs(
    engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    rule = {"name": "slow-flaky", "kind": "slow", "task_name": FLAKY, "threshold": 500,
            "min_runs": 10, "notify": ["ops"]}  # fmt: skip
    path = write_file(tmp_path / "alerts.json", receiver.url, rule)
    alerts = alert_engine(engine, path)
    await add_runs(engine, "success", 18, duration_ms=10)
    await add_runs(engine, "success", 2, duration_ms=900)  # p95 of 20 is the 19th: 900
    try:
        await alerts.run_once()
        await wait_posts(receiver, 1)
        assert receiver.bodies()[0]["value"] == 900
    finally:
        await alerts.stop()


async def test_an_edit_applies_without_a_restart_and_a_broken_one_keeps_the_last_good_rules(
    engine: AsyncEngine, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_file(tmp_path / "alerts.json", receiver.url, failing_rule(min_runs=1))
    alerts = alert_engine(engine, path)
    try:
        path.write_text(json.dumps({"rules": [failing_rule(threshold=7)]}))
        await alerts.run_once()
        assert alerts.file_error == "rules[0].threshold: Input should be less than or equal to 1"
        assert [r.name for r in alerts.config.rules] == ["flaky-failing"]
        assert "rules[0].threshold" in caplog.text and receiver.url not in caplog.text
        write_file(path, receiver.url, failing_rule(name="renamed", min_runs=1))
        await alerts.run_once()
        assert alerts.file_error is None
        assert [r.name for r in alerts.config.rules] == ["renamed"]
    finally:
        await alerts.stop()


async def test_log_loss_fires_once_the_log_has_been_losing_rows_for_longer_than_its_threshold(
    engine: AsyncEngine, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    rule = {"name": "losing", "kind": "log_loss", "threshold": 0.3, "notify": ["ops"]}
    path = write_file(tmp_path / "alerts.json", receiver.url, rule)
    alerts = alert_engine(engine, path, redis, "me")
    try:
        await alerts.run_once()  # the first round only notes the counters
        await redis.incrby(LOG_ROWS_DROPPED, 5)
        await alerts.run_once()  # losing, for 0 s
        assert (await firings.open_firings(engine)) == {}
        await redis.xadd(LOG_SPILL, {"rows": "[]"})  # rows the database has not taken yet
        await asyncio.sleep(0.4)
        await alerts.run_once()  # still losing, for 0.4 s
        await wait_posts(receiver, 1)
        assert receiver.bodies()[0]["url"] == "http://dash.example:8000/alerts"
        [firing] = (await firings.open_firings(engine)).values()
        assert firing.detail == {"batches_unwritten": 1, "rows_dropped": 5, "write_failures": 0}
        await redis.delete(LOG_SPILL)
        await alerts.run_once()  # written: no longer losing
        await wait_posts(receiver, 2)
        assert receiver.bodies()[1]["state"] == "resolved"
    finally:
        await alerts.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return fresh_sqlite(tmp_path / "t.db")


async def test_embedded_the_server_is_its_own_worker_and_rules_without_webhooks_still_fire(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = create_engine(sqlite_url)
    rules = [
        {"name": "nobody", "kind": "no_workers", "threshold": 0},
        failing_rule(min_runs=1, notify=[]),
    ]
    path = write_file(tmp_path / "alerts.json", "http://127.0.0.1:9/unused", *rules)
    alerts = alert_engine(engine, path)
    await add_runs(engine, "failed", 2)
    try:
        await alerts.run_once()
        assert set(await firings.open_firings(engine)) == {"flaky-failing"}
        assert alerts.notifier.waiting() == 0
    finally:
        await alerts.stop()
        await engine.dispose()


async def test_new_failure_fires_on_a_fingerprint_not_seen_in_its_window(
    engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    rule = {"name": "new-errors", "kind": "new_failure", "task_name": FLAKY, "notify": ["ops"]}
    path = write_file(tmp_path / "alerts.json", receiver.url, rule)
    alerts = alert_engine(engine, path)
    alerts.measures.sources.failure_counts = failure_counts
    older = utcnow() - timedelta(hours=3)
    await add_failures(engine, "DemoFailure: could not import record 1", older)
    await add_failures(engine, "DemoFailure: could not import record 2", utcnow())
    try:
        await alerts.run_once()  # the same failure of another record: seen before
        assert (await firings.open_firings(engine)) == {}
        await add_failures(engine, "KeyError: 'value'", utcnow())
        await alerts.run_once()
        await wait_posts(receiver, 1)
        body = receiver.bodies()[0]
        assert body["kind"] == "new_failure" and body["value"] == 1
        assert body["url"] == "http://dash.example:8000/failures"
        [firing] = (await firings.open_firings(engine)).values()
        new = signature("KeyError: 'value'", None).fingerprint  # the failures page's
        assert firing.detail == {"fingerprints": new}
    finally:
        await alerts.stop()


async def add_failures(engine: AsyncEngine, message: str, at: datetime) -> None:
    row = TaskExecutionLog(
        task_id=f"f-{time.monotonic_ns()}",
        task_name=FLAKY,
        status=TaskStatus.FAILED,
        created_at=at,
        error_message=message,
    )
    async with engine.begin() as conn:
        await conn.execute(TaskExecutionLog.__table__.insert(), [row.model_dump(exclude={"id"})])  # type: ignore[attr-defined]
