"""A page's patients linked in the background, many events to a row.

0004 wrote one `audit_event_patients` row per patient and event with each event, in the
append itself: fifty rows (and fifty index entries) for every page of fifty records read,
most of the database's work for a list. `audit_patient_links` holds up to 64 events of one
patient in a row, and `app.audit.links` writes them shortly after the events, from their
chained `patient_ids`; `audit_link_state` names the last event linked, and the access
logs read the events after it straight from the chain.

The existing links move one to a row, and the state names the chain's last event: all of
them are linked. Downgrading rebuilds 0004's links from the events' `patient_ids`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The links are append-only as the events are (0001): the database refuses the rest.
POSTGRES_GUARD = [
    """CREATE FUNCTION audit_patient_links_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION 'audit_patient_links is append-only: % refused', TG_OP
               USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_patient_links_append_only
       BEFORE UPDATE OR DELETE ON audit_patient_links
       FOR EACH ROW EXECUTE FUNCTION audit_patient_links_append_only()""",
    """CREATE TRIGGER audit_patient_links_no_truncate BEFORE TRUNCATE ON audit_patient_links
       FOR EACH STATEMENT EXECUTE FUNCTION audit_patient_links_append_only()""",
]
SQLITE_GUARD = [
    """CREATE TRIGGER audit_patient_links_no_update BEFORE UPDATE ON audit_patient_links
       BEGIN SELECT RAISE(ABORT, 'audit_patient_links is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_patient_links_no_delete BEFORE DELETE ON audit_patient_links
       BEGIN SELECT RAISE(ABORT, 'audit_patient_links is append-only: DELETE refused'); END""",
]

# 0004's table and guard, for the downgrade.
OLD_POSTGRES_GUARD = [
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
OLD_SQLITE_GUARD = [
    """CREATE TRIGGER audit_event_patients_no_update BEFORE UPDATE ON audit_event_patients
       BEGIN SELECT RAISE(ABORT, 'audit_event_patients is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_patients_no_delete BEFORE DELETE ON audit_event_patients
       BEGIN SELECT RAISE(ABORT, 'audit_event_patients is append-only: DELETE refused'); END""",
]
# Every (patient, event) pair that the events' patient_ids name.
NAMED_PATIENTS = {
    "postgresql": """
        SELECT patient.id::bigint, e.id FROM audit_events e
        CROSS JOIN LATERAL json_array_elements_text(e.patient_ids::json) AS patient(id)
        WHERE e.patient_ids IS NOT NULL""",
    "sqlite": """
        SELECT patient.value, e.id FROM audit_events e, json_each(e.patient_ids) AS patient
        WHERE e.patient_ids IS NOT NULL""",
}


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_patient_links",
        sa.Column("patient_id", BigId, nullable=False),
        sa.Column("first_event_id", BigId, nullable=False),
        sa.Column("event_ids", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "patient_id", "first_event_id", name=op.f("pk_audit_patient_links")
        ),
    )
    op.create_table(
        "audit_link_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linked_event_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_link_state")),
    )
    op.execute(
        "INSERT INTO audit_patient_links (patient_id, first_event_id, event_ids) "
        "SELECT patient_id, event_id, '[' || event_id || ']' FROM audit_event_patients"
    )
    op.execute(
        "INSERT INTO audit_link_state (id, linked_event_id) "
        "SELECT 1, coalesce(max(id), 0) FROM audit_events"
    )
    op.drop_table("audit_event_patients")  # its triggers go with it
    for statement in POSTGRES_GUARD if _postgres() else SQLITE_GUARD:
        op.execute(statement)
    if _postgres():
        op.execute("DROP FUNCTION audit_event_patients_append_only()")


def downgrade() -> None:
    op.create_table(
        "audit_event_patients",
        sa.Column("patient_id", BigId, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "event_id", name=op.f("pk_audit_event_patients")),
    )
    dialect = op.get_bind().dialect.name
    op.execute(f"INSERT INTO audit_event_patients (patient_id, event_id) {NAMED_PATIENTS[dialect]}")
    for statement in OLD_POSTGRES_GUARD if _postgres() else OLD_SQLITE_GUARD:
        op.execute(statement)
    op.drop_table("audit_link_state")
    op.drop_table("audit_patient_links")  # its triggers go with it
    if _postgres():
        op.execute("DROP FUNCTION audit_patient_links_append_only()")
