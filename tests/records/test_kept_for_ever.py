"""The database keeps every version of a record itself, and refuses to lose one.

Whatever writes a record (the API, a script, an operator in SQL), the row it writes is kept
as a version; a change that does not make a new version, a deleted record and a changed
or deleted version are refused.
"""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.records.models import PatientRecord, PatientRecordVersion
from tests.factories import create_department, create_doctor, create_patient, create_record
from tests.records.world import count


async def _record(db: AsyncSession) -> int:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    return (await create_record(db, patient=patient, doctor=doctor, department=department)).id


async def _versions(db: AsyncSession, record_id: int) -> list[tuple[int, str]]:
    query = (
        select(PatientRecordVersion.version, PatientRecordVersion.diagnosis)
        .where(PatientRecordVersion.record_id == record_id)
        .order_by(PatientRecordVersion.version)
    )
    return [(version, diagnosis) for version, diagnosis in await db.execute(query)]


async def test_a_record_written_in_sql_keeps_its_versions(db: AsyncSession) -> None:
    record_id = await _record(db)
    assert await _versions(db, record_id) == [(1, "Hypertension")]
    await db.execute(
        text("UPDATE patient_records SET diagnosis = 'Angina', version = 2 WHERE id = :id"),
        {"id": record_id},
    )
    await db.commit()
    assert await _versions(db, record_id) == [(1, "Hypertension"), (2, "Angina")]


async def test_a_change_that_makes_no_version_is_refused(db: AsyncSession) -> None:
    record_id = await _record(db)
    with pytest.raises(IntegrityError):
        await db.execute(
            text("UPDATE patient_records SET diagnosis = 'Angina' WHERE id = :id"),
            {"id": record_id},
        )
    await db.rollback()
    assert await _versions(db, record_id) == [(1, "Hypertension")]


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("DELETE FROM patient_records WHERE id = :id", "patient_records"),
        (
            "UPDATE patient_record_versions SET diagnosis = 'x' WHERE record_id = :id",
            "patient_record_versions",
        ),
        ("DELETE FROM patient_record_versions WHERE record_id = :id", "patient_record_versions"),
    ],
)
async def test_records_and_versions_are_kept_for_ever(
    db: AsyncSession, statement: str, table: str
) -> None:
    record_id = await _record(db)
    with pytest.raises(DBAPIError, match=f"{table} is kept for ever"):
        await db.execute(text(statement), {"id": record_id})
    await db.rollback()
    assert await count(db, PatientRecord, PatientRecord.id == record_id) == 1
    assert await _versions(db, record_id) == [(1, "Hypertension")]


@pytest.mark.postgres_only  # PostgreSQL's TRUNCATE trigger
@pytest.mark.parametrize("table", ["patient_records", "patient_record_versions"])
async def test_truncate_is_refused(db: AsyncSession, table: str) -> None:
    await _record(db)
    with pytest.raises(DBAPIError) as refused:
        await db.execute(text(f"TRUNCATE {table} CASCADE"))
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
    await db.rollback()
