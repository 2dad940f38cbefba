"""The audit log: every operator action on record (who, when, what, how many, outcome).

An action is written in its own transaction when it ends, whatever the request's session
did, so a refused or failed action is on record too. A failed write is logged, never raised:
the action has already happened, and failing the request would invite the operator to do it
twice.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.tracking.models import AuditEntry, utcnow

logger = logging.getLogger(__name__)

MAX_OUTCOME = 500  # the audit_log.outcome column
MAX_TARGET = 2000  # the audit_log.target column


class AuditAction(StrEnum):
    RETRY = "retry"
    BULK_RETRY = "bulk_retry"
    CANCEL = "cancel"
    PURGE = "purge"
    PAUSE = "pause"
    RESUME = "resume"
    DISMISS = "dismiss"
    REFRESH = "refresh"
    TOKEN_CREATE = "token_create"  # noqa: S105 (an action name, not a secret)
    TOKEN_REVOKE = "token_revoke"  # noqa: S105


@dataclass(slots=True)
class AuditRecord:
    """What the action touched, filled in by the code inside `audited`."""

    count: int = 1
    detail: dict[str, str | int] = field(default_factory=dict)
    refusal: str | None = None  # set when the action was refused without raising


def cli_actor() -> str:
    """Who acts from the command line: `cli:<login>` (the OS user; no token is involved)."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # a container user with no passwd entry
        return "cli"


def outcome_of(exc: BaseException) -> str:
    """ "refused: <the answer's message>" for a 4xx refusal, else "failed: <type>": an
    unexpected error's text may hold anything, so only its type is kept."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return f"refused: {exc}"[:MAX_OUTCOME]
    return f"failed: {type(exc).__name__}"


@asynccontextmanager
async def audited(
    engine: AsyncEngine, actor: str, action: AuditAction, target: str
) -> AsyncIterator[AuditRecord]:
    """Run the block as one audited action; re-raises whatever the block raised."""
    record = AuditRecord()
    try:
        yield record
    except Exception as exc:
        # The action failed and its caller reports that; an entry the database cannot take
        # then (most often the very outage the action met) is not a second error to report.
        await write(engine, actor, action, target, record, outcome_of(exc), quiet=True)
        raise
    outcome = "ok" if record.refusal is None else f"refused: {record.refusal}"
    await write(engine, actor, action, target, record, outcome)


async def write(
    engine: AsyncEngine,
    actor: str,
    action: AuditAction,
    target: str,
    record: AuditRecord,
    outcome: str,
    *,
    quiet: bool = False,
) -> None:
    entry = {
        "at": utcnow(),
        "actor": actor[:64],
        "action": action.value,
        "target": target[:MAX_TARGET],
        "count": record.count,
        "outcome": outcome[:MAX_OUTCOME],
        "detail": record.detail or None,
    }
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.insert(AuditEntry).values(entry))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        logger.log(
            logging.DEBUG if quiet else logging.ERROR,
            "audit: could not record %s of %r by %s (%s): %s",
            action.value,
            target[:200],
            actor,
            outcome[:100],
            type(exc).__name__,
        )


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before_id: int | None  # the `before_id` of the next (older) page; None at the end


async def read(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    action: AuditAction | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> AuditPage:
    """Newest first, a page at a time (keyset on id, the insertion order)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    if action is not None:
        query = query.where(col(AuditEntry.action) == action.value)
    if actor is not None:
        query = query.where(col(AuditEntry.actor) == actor)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    rows = list((await session.exec(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].id if more and rows else None)
