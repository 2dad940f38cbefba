"""The audit log: every operator action, who, when, what, how many and the outcome.

Revision ID: 0010
Revises: 0009

Append-only: triggers refuse UPDATE and DELETE on both backends, so neither the API nor a
mistaken statement rewrites history (the database owner can still drop the triggers; the log
guards against accidents and the API, not against the owner of the database).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from tasklens.tracking.database import own_name

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = {"audit_log_no_update": "UPDATE", "audit_log_no_delete": "DELETE"}
_REFUSAL = "the audit log is append-only"


def _n(name: str) -> str:
    return own_name(name, op.get_bind().dialect)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(500), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$""")
        schema = context.config.attributes["schema"]
        op.execute(f'ALTER FUNCTION audit_log_refuse_change() SET search_path = "{schema}"')
        for name, operation in _TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
            )
    else:
        for name, operation in _TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {_n(name)} BEFORE {operation} ON {_n('audit_log')} "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {_n(name)}" + (" ON audit_log" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION audit_log_refuse_change()")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
