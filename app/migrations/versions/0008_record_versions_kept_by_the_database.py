"""Every version of a record kept by the database itself.

A trigger writes the record's row into `patient_record_versions` whenever a record is
inserted or updated, so no write can change a record without keeping the version it
makes (an update that leaves the version number as it is conflicts with the version kept
before it: refused). Versions can no longer be changed or removed, and records can no
longer be deleted: the contract keeps them for ever.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "patient_id, department_id, author_id, diagnosis, observations, treatments, notes, "
    "created_at, updated_at"
)
NEW_COLUMNS = ", ".join(f"NEW.{name.strip()}" for name in COLUMNS.split(","))
KEEP = (
    f"INSERT INTO patient_record_versions (record_id, version, {COLUMNS}) "
    f"VALUES (NEW.id, NEW.version, {NEW_COLUMNS})"
)


def _postgres() -> list[str]:
    return [
        f"""CREATE FUNCTION patient_records_keep_version() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN {KEEP}; RETURN NULL; END $$""",
        """CREATE TRIGGER patient_records_keep_version AFTER INSERT OR UPDATE ON patient_records
           FOR EACH ROW EXECUTE FUNCTION patient_records_keep_version()""",
        """CREATE FUNCTION patient_records_kept() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               RAISE EXCEPTION '% is kept for ever: % refused', TG_TABLE_NAME, TG_OP
                   USING ERRCODE = 'insufficient_privilege';
           END $$""",
        """CREATE TRIGGER patient_records_no_delete BEFORE DELETE ON patient_records
           FOR EACH ROW EXECUTE FUNCTION patient_records_kept()""",
        """CREATE TRIGGER patient_record_versions_kept BEFORE UPDATE OR DELETE
           ON patient_record_versions FOR EACH ROW EXECUTE FUNCTION patient_records_kept()""",
        """CREATE TRIGGER patient_records_no_truncate BEFORE TRUNCATE
           ON patient_records FOR EACH STATEMENT EXECUTE FUNCTION patient_records_kept()""",
        """CREATE TRIGGER patient_record_versions_no_truncate BEFORE TRUNCATE
           ON patient_record_versions FOR EACH STATEMENT EXECUTE FUNCTION patient_records_kept()""",
    ]


def _sqlite() -> list[str]:
    refusals = [
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
           BEGIN SELECT RAISE(ABORT, '{table} is kept for ever: {verb} refused'); END"""
        for table, verb in (
            ("patient_records", "DELETE"),
            ("patient_record_versions", "UPDATE"),
            ("patient_record_versions", "DELETE"),
        )
    ]
    keep = [
        f"""CREATE TRIGGER patient_records_keep_version_{verb.lower()} AFTER {verb}
           ON patient_records BEGIN {KEEP}; END"""
        for verb in ("INSERT", "UPDATE")
    ]
    return keep + refusals


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _postgres() if postgres else _sqlite():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (
            ("patient_records_keep_version", "patient_records"),
            ("patient_records_no_delete", "patient_records"),
            ("patient_records_no_truncate", "patient_records"),
            ("patient_record_versions_kept", "patient_record_versions"),
            ("patient_record_versions_no_truncate", "patient_record_versions"),
        ):
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute("DROP FUNCTION patient_records_keep_version()")
        op.execute("DROP FUNCTION patient_records_kept()")
        return
    for trigger in (
        "patient_records_keep_version_insert",
        "patient_records_keep_version_update",
        "patient_records_no_delete",
        "patient_record_versions_no_update",
        "patient_record_versions_no_delete",
    ):
        op.execute(f"DROP TRIGGER {trigger}")
