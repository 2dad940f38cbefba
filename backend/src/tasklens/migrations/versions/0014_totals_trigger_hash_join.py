"""The outcome totals' update trigger pairs old and new rows by hashing, not row by row.

Revision ID: 0014
Revises: 0013

`task_outcome_totals_apply` (0007) joins a statement's `new_rows` to its `old_rows` on
(id, created_at) to find the rows that became terminal. PostgreSQL plans that join with no
statistics on the transition tables, estimates one row on each side and picks a nested loop:
every terminal row scans every updated row, so a batch's cost grows with the square of its
size (a 500-event batch of a steady stream made ~55,000 comparisons, a drained spill of
thousands of rows millions). With nested loops off for this function only, the join is a
hash (or merge) join, linear in the batch. What the trigger counts does not change.
SQLite's triggers are per row and are left alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER FUNCTION task_outcome_totals_apply() SET enable_nestloop = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER FUNCTION task_outcome_totals_apply() RESET enable_nestloop")
