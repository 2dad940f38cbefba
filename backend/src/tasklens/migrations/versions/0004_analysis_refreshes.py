"""Forced refreshes of analyses: who asked, when, and which task ran it.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analysis_refreshes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("deduplicated", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_analysis_refreshes_key_requested", "analysis_refreshes", ["key", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_analysis_refreshes_key_requested", table_name="analysis_refreshes")
    op.drop_table("analysis_refreshes")
