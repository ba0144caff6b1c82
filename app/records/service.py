"""Rules for patient records: department-scoped writes, scoped reads, versions, audit."""

import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.reader import Reader, Scoped
from app.core.context import Principal
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from app.core.pagination import Page
from app.records import policy, repository
from app.records.repository import Record
from app.records.schemas import RecordCreate, RecordUpdate

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


def _audited(session: AsyncSession, principal: Principal, action: str, record: Record) -> None:
    audit.record_by(
        session,
        principal,
        action=action,
        resource_type="record",
        resource_id=record["id"],
        patient_id=record["patient_id"],
    )


def _denied(session: AsyncSession, principal: Principal, action: str, record_id: int) -> None:
    audit.record_by(session, principal, **_refusal(action, record_id))


def _refusal(action: str, record_id: int) -> dict[str, Any]:
    return {
        "action": action,
        "resource_type": "record",
        "resource_id": record_id,
        "outcome": audit.Outcome.DENIED,
    }


async def _visible(
    reader: Reader, statement: Any, action: str, record_id: int, **values: Any
) -> Scoped:
    """A read of one record: 403 for a role that reads no records, 404 (recorded) when
    the record is not one the caller may see."""
    scoped = await reader.read(statement, record_id=record_id, now=utcnow(), **values)
    await reader.require(scoped.caller, policy.READERS)
    if not scoped.rows:
        await reader.publish([audit.event_by(scoped.caller, **_refusal(action, record_id))])
        raise NotFound("Record not found")
    return scoped


async def get_record(reader: Reader, record_id: int) -> Record:
    scoped = await _visible(reader, repository.ONE, "record.read", record_id)
    *fields, grant_id = scoped.data(scoped.rows[0])
    record = dict(zip(repository.FIELDS, fields, strict=True))
    read = audit.event_by(
        scoped.caller,
        action="record.read",
        resource_type="record",
        resource_id=record_id,
        patient_id=record["patient_id"],
        emergency_grant_id=grant_id,
    )
    await reader.publish([read])
    return record


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
    reader: Reader, page: Page, patient_id: int | None
) -> tuple[list[Record], bool]:
    """A page of the records the caller may read, in id order; and whether more follow."""
    if patient_id is None:
        scoped = await reader.read(repository.own_page(page.limit), after=page.after)
    else:
        statement = repository.patient_page(page.limit)
        scoped = await reader.read(statement, patient_id=patient_id, after=page.after, now=utcnow())
    await reader.require(scoped.caller, policy.READERS)
    rows = sorted((scoped.data(row) for row in scoped.rows), key=itemgetter(0))
    shown = rows[: page.limit]
    patients, used_grant = page_subjects((row[1], row[-1]) for row in shown)
    if patients:  # an empty page shows no one's data
        event = audit.event_by(
            scoped.caller,
            action="record.list",
            resource_type="record",
            patients=patients,
            emergency_grant_id=used_grant,
        )
        await reader.publish([event])
    records = [dict(zip(repository.FIELDS, row[:-1], strict=True)) for row in shown]
    return records, len(rows) > page.limit


async def get_history(reader: Reader, record_id: int, page: Page) -> tuple[int, list[Record], bool]:
    """(the record's current version, a page of its versions oldest first, more follow?)"""
    statement = repository.history_page(page.limit)
    scoped = await _visible(reader, statement, "record.history", record_id, after=page.after)
    rows = [scoped.data(row) for row in scoped.rows]
    current_version, patient_id, grant_id = rows[0][:3]
    versions = sorted(
        (dict(zip(repository.FIELDS, row[3:], strict=True)) for row in rows if row[3] is not None),
        key=itemgetter("version"),
    )
    event = audit.event_by(
        scoped.caller,
        action="record.history",
        resource_type="record",
        resource_id=record_id,
        patient_id=patient_id,
        emergency_grant_id=grant_id,
    )
    await reader.publish([event])
    return current_version, versions[: page.limit], len(versions) > page.limit


async def create_record(session: AsyncSession, principal: Principal, data: RecordCreate) -> Record:
    if principal.department_id is None:
        raise Conflict("You belong to no department, so you cannot write records")
    values = {
        **data.model_dump(),
        "department_id": principal.department_id,
        "author_id": principal.id,
        "now": utcnow(),
    }
    record = await repository.create(session, values)
    if record is None:
        raise InvalidInput(("body", "patient_id"), "Unknown patient")
    _audited(session, principal, "record.create", record)
    return record


async def update_record(
    session: AsyncSession,
    principal: Principal,
    record_id: int,
    changes: RecordUpdate,
    if_match: str | None,
) -> Record:
    """Only a doctor of the record's department writes it (an emergency grant never does).
    A change that leaves every field as it is makes no version: the record is only read."""
    accepted = parse_if_match(if_match)
    fields = changes.model_dump(exclude_unset=True)
    values: dict[str, Any] = {
        "caller_department_id": principal.department_id,
        "author_id": principal.id,
        "now": utcnow(),
    }
    if accepted is not None:
        values["versions"] = sorted(accepted)
    updated = await repository.change(session, record_id, fields, values) if fields else None
    if updated is not None:
        _audited(session, principal, "record.update", updated)
        return updated
    # Nothing was written: the record is not his department's, its version is not one
    # If-Match names, or the change would leave it as it is.
    record = await repository.get_writable(session, principal.department_id, record_id)
    if record is None:
        _denied(session, principal, "record.update", record_id)
        raise NotFound("Record not found")
    if accepted is not None and record["version"] not in accepted:
        raise PreconditionFailed()
    _audited(session, principal, "record.read", record)
    return record
