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


def append_only_guard(table: str) -> list[str]:
    """The statements by which the database refuses to change or remove `table`'s rows, as
    0001 made them for the events."""
    if op.get_bind().dialect.name != "postgresql":
        return [
            f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
               BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"""
            for verb in ("UPDATE", "DELETE")
        ]
    return [
        f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
                   USING ERRCODE = 'insufficient_privilege';
           END $$""",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
           FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()""",
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
    for statement in append_only_guard("audit_patient_links"):
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
    for statement in append_only_guard("audit_event_patients"):  # 0004's
        op.execute(statement)
    op.drop_table("audit_link_state")
    op.drop_table("audit_patient_links")  # its triggers go with it
    if _postgres():
        op.execute("DROP FUNCTION audit_patient_links_append_only()")
