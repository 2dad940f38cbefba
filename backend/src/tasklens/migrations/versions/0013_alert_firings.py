"""Alert firings: the history the /alerts page and `GET /api/v1/alerts` show.

Revision ID: 0013
Revises: 0012

One row per stretch of time a rule fired; at most one open row (`resolved_at` null) per
rule, kept so by a partial unique index: an evaluator that lost its lease mid-round cannot
open a second one beside its successor's. On SQLite the names are prefixed (OWN_NAMES).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_firings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("value", sa.Float),
        sa.Column("peak", sa.Float),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("link", sa.String(2000), nullable=False),
        sa.Column("notified", sa.Boolean, nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    op.create_index("ix_alert_firings_started", "alert_firings", ["started_at"])
    op.create_index(
        "ux_alert_firings_open",
        "alert_firings",
        ["rule"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_alert_firings_open", table_name="alert_firings")
    op.drop_index("ix_alert_firings_started", table_name="alert_firings")
    op.drop_table("alert_firings")
