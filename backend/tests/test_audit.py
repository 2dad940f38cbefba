"""The audit log on its own: what `audited` writes for an action that succeeds, is refused
or fails, that nothing can change a written entry, and paging newest first; on both
databases, in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import fresh_sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens import audit
from tasklens.audit import AuditAction
from tasklens.task_control import TaskActionRefused
from tasklens.tracking.database import create_engine, own_name
from tasklens.tracking.models import AuditEntry


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return fresh_sqlite(tmp_path / "audit.db")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _entries(engine: AsyncEngine, **filters: object) -> list[AuditEntry]:
    async with AsyncSession(engine) as session:
        page = await audit.read(session, limit=50, **filters)  # type: ignore[arg-type]
    return page.entries


async def test_an_action_is_recorded_with_its_outcome_whatever_it_was(engine: AsyncEngine) -> None:
    async with audit.audited(engine, "ops", AuditAction.PURGE, "low") as entry:
        entry.count = 12
        entry.detail["reason"] = "stuck deploy"
    with pytest.raises(TaskActionRefused):
        async with audit.audited(engine, "ops", AuditAction.RETRY, "t-1"):
            raise TaskActionRefused(409, "task 't-1' is success; only failed can be retried")
    with pytest.raises(ZeroDivisionError):
        async with audit.audited(engine, "ops", AuditAction.CANCEL, "t-2"):
            _ = 1 / 0  # an unexpected error's text is not kept, only its type
    async with audit.audited(engine, "cli:me", AuditAction.TOKEN_REVOKE, "gone") as entry:
        entry.count = 0
        entry.refusal = "no stored token of that name"

    entries = await _entries(engine)
    assert [(e.actor, e.action, e.target, e.count, e.outcome) for e in entries] == [
        ("cli:me", "token_revoke", "gone", 0, "refused: no stored token of that name"),
        ("ops", "cancel", "t-2", 1, "failed: ZeroDivisionError"),
        ("ops", "retry", "t-1", 1, "refused: task 't-1' is success; only failed can be retried"),
        ("ops", "purge", "low", 12, "ok"),
    ]
    assert entries[-1].detail == {"reason": "stuck deploy"}
    assert entries[0].at >= entries[-1].at


async def test_a_written_entry_cannot_be_changed_or_deleted(engine: AsyncEngine) -> None:
    async with audit.audited(engine, "ops", AuditAction.PAUSE, "high"):
        pass
    table = own_name("audit_log", engine.dialect)
    for statement in (f"UPDATE {table} SET outcome = 'ok, honest'", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(sa.text(statement))
    [entry] = await _entries(engine)
    assert (entry.action, entry.target, entry.outcome) == ("pause", "high", "ok")


async def test_pages_go_newest_first_and_filters_narrow_them(engine: AsyncEngine) -> None:
    for n in range(5):
        action = AuditAction.PAUSE if n % 2 == 0 else AuditAction.RESUME
        async with audit.audited(engine, f"op{n % 2}", action, "default"):
            pass
    async with AsyncSession(engine) as session:
        first = await audit.read(session, limit=2)
        second = await audit.read(session, limit=2, before_id=first.next_before_id)
        last = await audit.read(session, limit=2, before_id=second.next_before_id)
        pauses = await audit.read(session, limit=10, action=AuditAction.PAUSE)
        by_op1 = await audit.read(session, limit=10, actor="op1")
    ids = [e.id or 0 for e in first.entries + second.entries + last.entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    assert last.next_before_id is None
    assert [e.action for e in pauses.entries] == ["pause"] * 3
    assert {e.actor for e in by_op1.entries} == {"op1"} and len(by_op1.entries) == 2


async def test_a_database_that_is_down_does_not_fail_the_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The action already happened; the lost entry is logged (without secrets), not raised."""
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")  # discard port
    try:
        async with audit.audited(engine, "ops", AuditAction.RESUME, "low") as entry:
            entry.count = 1
    finally:
        await engine.dispose()
    assert "audit: could not record resume of 'low' by ops (ok)" in caplog.text


async def test_a_failed_action_during_an_outage_is_reported_once_by_its_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The action's own error is the one to report (the CLI's one line, the API's answer);
    the entry the same outage refused is not a second error."""
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    try:
        with pytest.raises(OSError):
            async with audit.audited(engine, "cli:me", AuditAction.TOKEN_CREATE, "x"):
                raise ConnectionRefusedError("the database is down")
    finally:
        await engine.dispose()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
