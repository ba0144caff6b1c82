"""Trigram indexes for the patient search (`?q=` contains), on PostgreSQL.

A `LIKE '%text%'` cannot use a B-tree; with pg_trgm's GIN indexes the search reads the
matching rows only, so it stays fast as the number of patients grows. SQLite has no
such index: the embedded database serves a single host's data, scanned quickly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Declared here only (not on the models): app.models.include_in_autogenerate skips them.
INDEXES = {
    "ix_trgm_users_username_key": "username_key gin_trgm_ops",
    "ix_trgm_users_full_name_lower": "lower(full_name) gin_trgm_ops",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON users USING gin ({expression})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
