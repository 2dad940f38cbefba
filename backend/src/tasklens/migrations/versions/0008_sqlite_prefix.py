"""On SQLite TaskLens's tables, indexes and triggers take the `tasklens_` prefix.

Revision ID: 0008
Revises: 0007

SQLite has no schemas, so TaskLens keeps apart from the app sharing its file by name
(`tracking.database.OWN_NAMES`): an app may have its own `task_execution_logs`. A file
migrated by 0001-0007 before this revision has the unprefixed names (migrate.upgrade brings
such a file to 0007 under them first); they are renamed in place: `ALTER TABLE … RENAME`
keeps the rows; indexes and triggers cannot be renamed, so each is made again from its own
stored SQL, with TaskLens's names in it mapped. A file whose tables 0001-0007 made prefixed
has nothing to rename.

Downgrading restores the unprefixed names, so an older TaskLens reads the file again (the
revisions before run under those names: migrate.downgrade); unless the downgrade goes to
base, where the prefixed objects are simply dropped (the app may have taken the old names).
PostgreSQL: nothing to do, its names stay as they are in TaskLens's schema.
"""

import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from tasklens.migrate import refuse_taken_plain_names
from tasklens.tracking.database import OWN_NAMES, SQLITE_PREFIX
from tasklens.tracking.models import TASKLENS_TABLES

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _prefixed(name: str) -> str:
    return SQLITE_PREFIX + name


def _plain(name: str) -> str:
    return name


def _objects(bind: sa.Connection) -> dict[str, tuple[str, str | None]]:
    rows = bind.execute(sa.text("SELECT name, type, sql FROM sqlite_master")).all()
    return {name: (kind, sql) for name, kind, sql in rows}


def _rename(old: Callable[[str], str], new: Callable[[str], str]) -> None:
    bind = op.get_bind()
    present = _objects(bind)
    refuse_taken_plain_names(
        sorted(new(n) for n in OWN_NAMES if old(n) in present and new(n) in present)
    )
    # SQLite's ALTER TABLE RENAME rewrites the triggers on the table, but turns their
    # upserts' `excluded.x` into `"<table>".x` (SQLite 3.40): the triggers and indexes are
    # dropped first and made again from their own SQL, TaskLens's names mapped.
    names = re.compile(rf"\b({'|'.join(sorted(map(re.escape, map(old, OWN_NAMES))))})\b")
    mapping = {old(n): new(n) for n in OWN_NAMES}
    remade = []
    for name in sorted(OWN_NAMES - TASKLENS_TABLES):
        kind, sql = present.get(old(name), ("", None))
        if kind in ("index", "trigger") and sql is not None:
            op.execute(f'DROP {kind.upper()} "{old(name)}"')
            remade.append(names.sub(lambda m: mapping[m.group(1)], sql))
    for table in sorted(TASKLENS_TABLES):
        if old(table) in present:
            op.execute(f'ALTER TABLE "{old(table)}" RENAME TO "{new(table)}"')
    for sql in remade:
        op.execute(sql)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or _prefixed("task_execution_logs") in _objects(bind):
        return
    _rename(_plain, _prefixed)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite" or context.config.attributes.get("to_base"):
        return
    _rename(_prefixed, _plain)
