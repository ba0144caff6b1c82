"""Rules for patient records: department-scoped writes, scoped reads, versions, audit."""

import re
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.context import Principal
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from app.core.pagination import Page
from app.records import repository
from app.records.models import PatientRecord, PatientRecordVersion
from app.records.schemas import RecordCreate, RecordUpdate
from app.users import repository as users_repository

_ENTITY_TAG = re.compile(r'\s*(W/)?(?:"(\d{1,18})"|(\d{1,18}))\s*')


def parse_if_match(value: str | None) -> set[int] | None:
    """The versions an If-Match header accepts; None when any version will do.

    `"3"` (or a bare `3`), or a comma-separated list of them; `*` matches any version.
    If-Match takes the strong comparison (RFC 9110, 13.1.1): a weak tag such as `W/"3"`
    never matches. Anything that cannot name a version never matches either: a 412.
    """
    if value is None or value.strip() == "*":
        return None
    versions = set()
    for tag in value.split(","):
        match = _ENTITY_TAG.fullmatch(tag)
        if match is None:
            raise PreconditionFailed('If-Match must name a version, like "3"')
        weak, quoted, bare = match.groups()
        if not weak:
            versions.add(int(quoted or bare))
    return versions


def _audited(
    session: AsyncSession,
    principal: Principal,
    action: str,
    record: PatientRecord,
    grant_id: int | None = None,
) -> None:
    audit.record_by(
        session,
        principal,
        action=action,
        resource_type="record",
        resource_id=record.id,
        patient_id=record.patient_id,
        emergency_grant_id=grant_id,
    )


def _denied(session: AsyncSession, principal: Principal, action: str, record_id: int) -> None:
    audit.record_by(
        session,
        principal,
        action=action,
        resource_type="record",
        resource_id=record_id,
        outcome=audit.Outcome.DENIED,
    )


async def _read(
    session: AsyncSession, principal: Principal, record_id: int, action: str
) -> PatientRecord:
    found = await repository.get_visible(session, principal, record_id, utcnow())
    if found is None:
        _denied(session, principal, action, record_id)
        raise NotFound("Record not found")
    record, grant_id = found
    _audited(session, principal, action, record, grant_id)
    return record


async def get_record(session: AsyncSession, principal: Principal, record_id: int) -> PatientRecord:
    return await _read(session, principal, record_id, "record.read")


def page_subjects(shown: Iterable[tuple[int, int | None]]) -> tuple[list[int], int | None]:
    """Whose data a page shows (patient ids in order of first appearance: the page's one
    list event names them all), and the emergency grant that showed any of it. Grants
    widen only a list narrowed to one patient: a page of several patients used none."""
    patients: dict[int, None] = {}
    used_grant = None
    for patient_id, grant_id in shown:
        patients[patient_id] = None
        used_grant = used_grant or grant_id
    return list(patients), used_grant


async def list_records(
    session: AsyncSession, principal: Principal, page: Page, patient_id: int | None
) -> list[PatientRecord]:
    rows = await repository.list_visible(session, principal, utcnow(), page, patient_id)
    patients, used_grant = page_subjects(
        (record.patient_id, grant_id) for record, grant_id in rows[: page.limit]
    )
    if patients:  # an empty page shows no one's data
        audit.record_by(
            session,
            principal,
            action="record.list",
            resource_type="record",
            patients=patients,
            emergency_grant_id=used_grant,
        )
    return [record for record, _grant in rows]


async def create_record(
    session: AsyncSession, principal: Principal, data: RecordCreate
) -> PatientRecord:
    if principal.department_id is None:
        raise Conflict("You belong to no department, so you cannot write records")
    if not await users_repository.is_patient(session, data.patient_id):
        raise InvalidInput(("body", "patient_id"), "Unknown patient")
    now = utcnow()
    record = await repository.add(
        session,
        PatientRecord(
            **data.model_dump(),
            department_id=principal.department_id,
            author_id=principal.id,
            version=1,
            created_at=now,
            updated_at=now,
        ),
    )
    _audited(session, principal, "record.create", record)
    return record


async def update_record(
    session: AsyncSession,
    principal: Principal,
    record_id: int,
    changes: RecordUpdate,
    if_match: str | None,
) -> PatientRecord:
    """Only a doctor of the record's department writes it (an emergency grant never does)."""
    record = await repository.get_writable(session, principal.department_id, record_id)
    if record is None:
        _denied(session, principal, "record.update", record_id)
        raise NotFound("Record not found")
    accepted = parse_if_match(if_match)
    if accepted is not None and record.version not in accepted:
        raise PreconditionFailed()
    fields = {
        name: value
        for name, value in changes.model_dump(exclude_unset=True).items()
        if getattr(record, name) != value
    }
    if not fields:  # nothing changes (no field, or each as it is): no version, only a read
        _audited(session, principal, "record.read", record)
        return record
    updated = await repository.apply_update(
        session,
        record,
        expected_version=record.version if accepted is not None else None,
        values={
            **fields,
            "author_id": principal.id,
            "updated_at": utcnow(),
        },
    )
    if updated is None:  # another writer got there first
        raise PreconditionFailed()
    _audited(session, principal, "record.update", updated)
    return updated


async def get_history(
    session: AsyncSession, principal: Principal, record_id: int, page: Page
) -> tuple[PatientRecord, Sequence[PatientRecordVersion]]:
    record = await _read(session, principal, record_id, "record.history")
    return record, await repository.list_versions(session, record_id, page)
