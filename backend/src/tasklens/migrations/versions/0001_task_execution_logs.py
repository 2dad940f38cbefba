"""Lifecycle log and API tokens.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "task_execution_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", JSON),
        sa.Column("queue", sa.String(255)),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("worker", sa.String(255)),
        sa.Column("progress", sa.Float),
        sa.Column("progress_message", sa.Text),
        sa.Column("result", JSON),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("duration_ms", sa.Float),
        sa.Column("error_message", sa.Text),
        sa.Column("error_traceback", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("task_id", "attempt", name="uq_task_logs_task_attempt"),
    )
    op.create_index(
        "ix_task_logs_name_status_created",
        "task_execution_logs",
        ["task_name", "status", "created_at"],
    )
    op.create_index("ix_task_logs_created_at", "task_execution_logs", ["created_at"])
    op.create_index("ix_task_logs_task_name", "task_execution_logs", ["task_name"])
    op.create_index("ix_task_logs_status", "task_execution_logs", ["status"])
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    for name in (
        "ix_task_logs_status",
        "ix_task_logs_task_name",
        "ix_task_logs_created_at",
        "ix_task_logs_name_status_created",
    ):
        op.drop_index(name, table_name="task_execution_logs")
    op.drop_table("task_execution_logs")
