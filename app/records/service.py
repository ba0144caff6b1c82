"""Rules for patient records: department-scoped writes, scoped reads, versions, audit."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from app.audit import service as audit
from app.auth.reader import Reader, Scoped
from app.core.context import Principal
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from app.core.filters import Search
from app.core.pagination import Page
from app.records import policy, repository
from app.records.repository import Record
from app.records.schemas import RecordCreate, RecordUpdate
from app.transaction import Write
from app.users import repository as users_repository
from app.users import service as users_service

NEWEST = 2**63 - 1  # before any version: the history from its newest version on
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


def _audited(write: Write, principal: Principal, action: str, record: Record) -> None:
    audit.record_by(
        write,
        principal,
        action=action,
        resource_type="record",
        resource_id=record["id"],
        patient_id=record["patient_id"],
    )


def _denied(write: Write, principal: Principal, action: str, record_id: int) -> None:
    audit.record_by(write, principal, **_refusal(action, record_id))


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


@dataclass(frozen=True, slots=True)
class Found:
    """A page of records, whether more follow, their patients (with `with_subject`: those
    the caller may read, each once, in order of appearance) and, when asked, how many
    records match over all pages."""

    records: list[Record]
    more: bool
    subjects: list[dict[str, Any]]
    total: int | None = None


async def list_records(
    reader: Reader, page: Page, patient_id: int | None
) -> tuple[list[Record], bool]:
    """A page of the records the caller may read, in id order; and whether more follow."""
    found = await search_records(reader, page, patient_id)
    return found.records, found.more


async def search_records(
    reader: Reader,
    page: Page,
    patient_id: int | None,
    search: Search | None = None,
    *,
    with_subject: bool = False,
    total: bool = False,
) -> Found:
    """list_records, narrowed by a search's criteria, with the records' patients and the
    total when asked. One event names the records' patients (as every list page), and
    one more those of the patients shown beside them."""
    search = search or Search()
    of_patient = patient_id is not None
    statement = repository.search_page(
        page.limit, search.shape, of_patient=of_patient, with_subject=with_subject
    )
    values: dict[str, Any] = dict(search.values)
    if of_patient:
        values |= {"patient_id": patient_id, "now": utcnow()}
    scoped = await reader.read(statement, after=page.after, **values)
    await reader.require(scoped.caller, policy.READERS)
    width = len(repository.FIELDS)
    # The page comes ordered, but its join to the caller's row (and to the subjects) keeps
    # no order of its own.
    rows = sorted((scoped.data(row) for row in scoped.rows), key=itemgetter(0))
    shown = rows[: page.limit]
    patients, used_grant = page_subjects((row[1], row[width]) for row in shown)
    events = []
    if patients:  # an empty page shows no one's data
        events.append(
            audit.event_by(
                scoped.caller,
                action="record.list",
                resource_type="record",
                patients=patients,
                emergency_grant_id=used_grant,
            )
        )
    subjects = _subjects(row[width + 1 :] for row in shown) if with_subject else []
    if subjects:
        events.append(users_service.patients_shown(scoped.caller, subjects))
    count = None
    if total:
        counted = repository.search_count(search.shape, of_patient=of_patient)
        count = await reader.count(counted, **values)
    await reader.publish(events)
    records = [dict(zip(repository.FIELDS, row[:width], strict=True)) for row in shown]
    return Found(records, len(rows) > page.limit, subjects, count)


def _subjects(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    fields = users_repository.PATIENT_RESOURCE_FIELDS
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row[0] is not None and row[0] not in found:
            found[row[0]] = dict(zip(fields, row, strict=True))
    return list(found.values())


async def get_version(reader: Reader, record_id: int, version: int) -> Record:
    """One version of a record the caller may read (a 404 when it has no such version);
    audited as a read of the record's history."""
    _current, versions, _more = await get_history(reader, record_id, Page(1, version - 1))
    if not versions or versions[0]["version"] != version:
        raise NotFound("Version not found")
    return versions[0]


async def get_history(
    reader: Reader, record_id: int, page: Page, *, newest_first: bool = False
) -> tuple[int, list[Record], bool]:
    """(the record's current version, a page of its versions oldest first, more follow?);
    `newest_first`, from the version before `page.after_id` (from the newest if None)."""
    statement = repository.history_page(page.limit, newest_first=newest_first)
    bound = {"before": page.after_id or NEWEST} if newest_first else {"after": page.after}
    scoped = await _visible(reader, statement, "record.history", record_id, **bound)
    rows = [scoped.data(row) for row in scoped.rows]
    current_version, patient_id, grant_id = rows[0][:3]
    versions = sorted(
        (dict(zip(repository.FIELDS, row[3:], strict=True)) for row in rows if row[3] is not None),
        key=itemgetter("version"),
        reverse=newest_first,
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


async def create_record(write: Write, data: RecordCreate) -> Record:
    principal = write.principal
    if principal.department_id is None:
        raise Conflict("You belong to no department, so you cannot write records")
    values = {
        **data.model_dump(),
        "department_id": principal.department_id,
        "author_id": principal.id,
        "now": utcnow(),
    }
    record = await repository.create(write, values)
    if record is None:
        raise InvalidInput(("body", "patient_id"), "Unknown patient")
    _audited(write, principal, "record.create", record)
    return record


async def update_record(
    write: Write,
    record_id: int,
    changes: RecordUpdate,
    if_match: str | None,
) -> Record:
    """Only a doctor of the record's department writes it (an emergency grant never does).
    A change that leaves every field as it is makes no version: the record is only read."""
    principal = write.principal
    accepted = parse_if_match(if_match)
    fields = changes.model_dump(exclude_unset=True)
    values: dict[str, Any] = {
        "caller_department_id": principal.department_id,
        "author_id": principal.id,
        "now": utcnow(),
    }
    versions = None if accepted is None else sorted(accepted)
    # An If-Match that names no version (weak or malformed) matches nothing: a 412 below.
    changing = bool(fields) and versions != []
    updated = (
        await repository.change(write, record_id, fields, values, versions) if changing else None
    )
    if updated is not None:
        _audited(write, principal, "record.update", updated)
        return updated
    # Nothing was written: the record is not his department's, its version is not one
    # If-Match names, or the change would leave it as it is.
    record = await repository.get_writable(write, principal.department_id, record_id)
    if record is None:
        _denied(write, principal, "record.update", record_id)
        raise NotFound("Record not found")
    if accepted is not None and record["version"] not in accepted:
        raise PreconditionFailed()
    _audited(write, principal, "record.read", record)
    return record
