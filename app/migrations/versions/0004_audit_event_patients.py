"""One audit event per list page: the patients of an event that touched several.

`audit_events.patient_ids` names them in the chained content (the sorted distinct ids as
compact JSON), and `audit_event_patients` links each of them to the event, so that every
patient's access log finds the page by index. Like the events, the links are append-only.

Downgrading drops both: events that named several patients then no longer match their
hashes, and the verification names the first of them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The links are append-only as the events are (0001): the database refuses the rest.
POSTGRES_GUARD = [
    """CREATE FUNCTION audit_event_patients_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION 'audit_event_patients is append-only: % refused', TG_OP
               USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_event_patients_append_only
       BEFORE UPDATE OR DELETE ON audit_event_patients
       FOR EACH ROW EXECUTE FUNCTION audit_event_patients_append_only()""",
    """CREATE TRIGGER audit_event_patients_no_truncate BEFORE TRUNCATE ON audit_event_patients
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_patients_append_only()""",
]
SQLITE_GUARD = [
    """CREATE TRIGGER audit_event_patients_no_update BEFORE UPDATE ON audit_event_patients
       BEGIN SELECT RAISE(ABORT, 'audit_event_patients is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_patients_no_delete BEFORE DELETE ON audit_event_patients
       BEGIN SELECT RAISE(ABORT, 'audit_event_patients is append-only: DELETE refused'); END""",
]


def create_append_only_guard() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_GUARD if postgres else SQLITE_GUARD:
        op.execute(statement)


def upgrade() -> None:
    # A plain ADD COLUMN on both engines: a batch copy of the table on SQLite would drop
    # the events' own append-only triggers.
    op.add_column("audit_events", sa.Column("patient_ids", sa.Text(), nullable=True))
    op.create_table(
        "audit_event_patients",
        sa.Column(
            "patient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "event_id", name=op.f("pk_audit_event_patients")),
    )
    create_append_only_guard()


def downgrade() -> None:
    op.drop_table("audit_event_patients")  # its triggers go with it
    op.drop_column("audit_events", "patient_ids")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_event_patients_append_only()")
