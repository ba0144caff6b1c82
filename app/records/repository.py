"""SQL of patient records. Who sees what is part of every query's WHERE, never a later filter.

Read scopes: a patient sees the records whose `patient_id` is his; a doctor sees his
department's records, and reads a patient's records from any department while he holds an
unexpired emergency grant for that patient (looked up in the same query). Writes are
scoped to the doctor's department only.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Principal
from app.core.pagination import Page, keyset, written
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord, PatientRecordVersion

# (record, id of the emergency grant that made it visible, or None)
VisibleRecord = tuple[PatientRecord, int | None]


def _in_department(department_id: int | None) -> ColumnElement[bool]:
    if department_id is None:
        return false()
    return PatientRecord.department_id == department_id


def _grant_conditions(doctor_id: int, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        EmergencyGrant.doctor_id == doctor_id,
        EmergencyGrant.patient_id == PatientRecord.patient_id,
        EmergencyGrant.expires_at > now,
    )


def _read_scope(
    reader: Principal, now: datetime, *, with_grants: bool
) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """The WHERE condition of what `reader` may read, and the grant id column to select."""
    if not reader.is_doctor:
        # Patients (and anyone else who got this far) see only records about themselves.
        return PatientRecord.patient_id == reader.id, null()
    own = _in_department(reader.department_id)
    if not with_grants:
        return own, null()
    grant_id = (
        select(EmergencyGrant.id)
        .where(*_grant_conditions(reader.id, now))
        .order_by(EmergencyGrant.expires_at.desc(), EmergencyGrant.id.desc())
        .limit(written(1))
        .correlate(PatientRecord)
        .scalar_subquery()
    )
    visible = or_(own, exists().where(*_grant_conditions(reader.id, now)))
    # The grant is only what made the record visible when it is outside his department.
    return visible, case((own, null()), else_=grant_id)


def _rows(result: Any) -> list[VisibleRecord]:
    return [(row[0], row[1]) for row in result.all()]


async def get_visible(
    session: AsyncSession, reader: Principal, record_id: int, now: datetime
) -> VisibleRecord | None:
    scope, grant_id = _read_scope(reader, now, with_grants=True)
    result = await session.execute(
        select(PatientRecord, grant_id).where(PatientRecord.id == record_id, scope)
    )
    rows = _rows(result)
    return rows[0] if rows else None


async def list_visible(
    session: AsyncSession, reader: Principal, now: datetime, page: Page, patient_id: int | None
) -> list[VisibleRecord]:
    """One keyset page. Without `patient_id` a doctor lists his department only (grants
    widen a doctor's reads only when he asks for one patient); `patient_id` only narrows."""
    scope, grant_id = _read_scope(reader, now, with_grants=patient_id is not None)
    query = select(PatientRecord, grant_id).where(scope)
    if patient_id is not None:
        query = query.where(PatientRecord.patient_id == patient_id)
    return _rows(await session.execute(keyset(query, PatientRecord.id, page)))


async def get_writable(
    session: AsyncSession, department_id: int | None, record_id: int
) -> PatientRecord | None:
    return await session.scalar(
        select(PatientRecord).where(PatientRecord.id == record_id, _in_department(department_id))
    )


def _snapshot(record: PatientRecord) -> PatientRecordVersion:
    return PatientRecordVersion(
        record_id=record.id,
        version=record.version,
        patient_id=record.patient_id,
        department_id=record.department_id,
        author_id=record.author_id,
        diagnosis=record.diagnosis,
        observations=record.observations,
        treatments=record.treatments,
        notes=record.notes,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


async def add(session: AsyncSession, record: PatientRecord) -> PatientRecord:
    session.add(record)
    await session.flush()
    session.add(_snapshot(record))
    await session.flush()
    return record


async def apply_update(
    session: AsyncSession,
    record: PatientRecord,
    *,
    expected_version: int | None,
    values: dict[str, Any],
) -> PatientRecord | None:
    """Change the record in one atomic UPDATE and keep the new version.

    With `expected_version` the UPDATE matches only that version: of concurrent writers
    holding the same version exactly one matches (the row lock serialises them and the
    others then see the new version), so none silently overwrites another. Returns None
    when the version moved on.
    """
    conditions = [
        PatientRecord.id == record.id,
        PatientRecord.department_id == record.department_id,
    ]
    if expected_version is not None:
        conditions.append(PatientRecord.version == expected_version)
    statement = (
        update(PatientRecord)
        .where(and_(*conditions))
        .values(**values, version=PatientRecord.version + 1)
        .returning(PatientRecord)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    updated = await session.scalar(statement)
    if updated is None:
        return None
    session.add(_snapshot(updated))
    await session.flush()
    return updated


async def list_versions(
    session: AsyncSession, record_id: int, page: Page
) -> Sequence[PatientRecordVersion]:
    query = select(PatientRecordVersion).where(PatientRecordVersion.record_id == record_id)
    return (await session.scalars(keyset(query, PatientRecordVersion.version, page))).all()
