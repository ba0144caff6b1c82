"""An index of the events that name several patients (list pages).

The access logs read the events after the link mark straight from the chain, and the
linking runs read them to link them; both want only those naming several patients, which
are a small share of the trail. Without this index both walked every event after the mark.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_audit_events_several_patients"
SEVERAL = sa.text("patient_ids IS NOT NULL")


def upgrade() -> None:
    op.create_index(NAME, "audit_events", ["id"], postgresql_where=SEVERAL, sqlite_where=SEVERAL)


def downgrade() -> None:
    op.drop_index(NAME, table_name="audit_events")
