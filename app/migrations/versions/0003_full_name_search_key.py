"""The patient search compares a stored casefolded full name, as it does usernames.

`lower(full_name)` was computed for every row a search scanned, and folds less than
Python's casefold ('Straße' and 'STRASSE' differed). `users.full_name_key` holds the
casefolded name, written with the name (the model's validator); on PostgreSQL its trigram
index replaces the one on `lower(full_name)`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_INDEX = "ix_trgm_users_full_name_key"
OLD_INDEX = "ix_trgm_users_full_name_lower"
_users = sa.table(
    "users", sa.column("id", sa.BigInteger), sa.column("full_name"), sa.column("full_name_key")
)


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("users", sa.Column("full_name_key", sa.String(600), nullable=True))
    # Python's casefold, as the application writes it (the database's lower() differs).
    rows = bind.execute(sa.select(_users.c.id, _users.c.full_name)).all()
    if rows:
        bind.execute(
            _users.update().where(_users.c.id == sa.bindparam("user_id")),
            [{"user_id": id_, "full_name_key": name.casefold()} for id_, name in rows],
        )
    with op.batch_alter_table("users") as batch:  # SQLite rebuilds the table for NOT NULL
        batch.alter_column("full_name_key", existing_type=sa.String(600), nullable=False)
    if bind.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {NEW_INDEX} ON users USING gin (full_name_key gin_trgm_ops)")
        op.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {OLD_INDEX} ON users USING gin (lower(full_name) gin_trgm_ops)")
        op.execute(f"DROP INDEX IF EXISTS {NEW_INDEX}")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("full_name_key")
