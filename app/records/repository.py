"""SQL of patient records. Who sees what is part of every statement (records.policy).

Reads are statements built once (per page size), joined to the token's caller
(auth.caller.scoped): one round trip checks the token and reads what it may see. Writes
run in the request's transaction, scoped to the writing doctor's department.
"""

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Text,
    and_,
    bindparam,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)

from app.auth.caller import TOKEN_CALLER, CallerRef, scoped
from app.core import filters
from app.core.db import AnySelect, UTCDateTime
from app.core.pagination import MAX_LIMIT, keyset_page, keyset_page_of_cases, written
from app.records import policy
from app.records.models import PatientRecord, PatientRecordVersion
from app.transaction import Write
from app.users import repository as users

RECORD_COLUMNS = (
    PatientRecord.id,
    PatientRecord.patient_id,
    PatientRecord.department_id,
    PatientRecord.author_id,
    PatientRecord.diagnosis,
    PatientRecord.observations,
    PatientRecord.treatments,
    PatientRecord.notes,
    PatientRecord.version,
    PatientRecord.created_at,
    PatientRecord.updated_at,
)
FIELDS = tuple(column.key for column in RECORD_COLUMNS)
_VERSION_COLUMNS = (
    PatientRecordVersion.record_id.label("id"),
    *(getattr(PatientRecordVersion, name) for name in FIELDS[1:]),
)

NOW = bindparam("now", type_=UTCDateTime())
_RECORD_ID: BindParameter[Any] = bindparam("record_id")
_BEFORE = bindparam("before", type_=BigInteger)
_GRANT_ID = policy.grant_used(TOKEN_CALLER, NOW).label("grant_id")

# One record the caller may read: (record's FIELDS, grant_id). Binds record_id, now.
ONE = scoped(
    select(*RECORD_COLUMNS, _GRANT_ID).where(
        PatientRecord.id == _RECORD_ID, policy.visible(TOKEN_CALLER, NOW)
    )
)


@lru_cache(maxsize=2 * MAX_LIMIT)
def history_page(limit: int, *, newest_first: bool = False) -> AnySelect:
    """A visible record's current version, patient and grant, with a page of its versions
    by version number: (current_version, patient_id, grant_id, then the version's FIELDS,
    NULL when the page is empty). Binds record_id, now, and after (oldest first) or
    before (`newest_first`)."""
    number = PatientRecordVersion.version
    query = select(*_VERSION_COLUMNS).where(PatientRecordVersion.record_id == _RECORD_ID)
    if newest_first:
        query = query.where(number < _BEFORE).order_by(number.desc()).limit(written(limit + 1))
    else:
        query = keyset_page(query, number, limit)
    versions = query.subquery()
    record = (
        select(
            PatientRecord.version.label("current_version"),
            PatientRecord.patient_id.label("record_patient_id"),
            _GRANT_ID,
            *versions.c,
        )
        .select_from(PatientRecord)
        .outerjoin(versions, true())
        .where(PatientRecord.id == _RECORD_ID, policy.visible(TOKEN_CALLER, NOW))
    )
    return scoped(record)


# The fields searches compare (core.filters).
SEARCH_FIELDS: filters.Columns = {
    "id": PatientRecord.id,
    "patient_id": PatientRecord.patient_id,
    "created_at": PatientRecord.created_at,
    "updated_at": PatientRecord.updated_at,
}


def _matching(
    criteria: filters.Criteria, *, of_patient: bool
) -> tuple[AnySelect, tuple[ColumnElement[bool], ...]]:
    """What the caller may read and meets `criteria`, rows as in ONE: a statement and the
    cases it reads (core.pagination.keyset_page_of_cases): his own records, one case per
    index path (policy.own), or one patient's records, emergency grants included."""
    extra = filters.conditions(SEARCH_FIELDS, criteria)
    if of_patient:
        patient = PatientRecord.patient_id == bindparam("patient_id")
        query = select(*RECORD_COLUMNS, _GRANT_ID).where(*extra)
        return query, (and_(patient, policy.visible(TOKEN_CALLER, NOW)),)
    query = select(*RECORD_COLUMNS, null().label("grant_id")).where(*extra)
    return query, policy.own(TOKEN_CALLER)


@lru_cache(maxsize=users.SEARCHES_CACHED)
def search_page(
    limit: int, criteria: filters.Criteria, *, of_patient: bool, with_subject: bool
) -> AnySelect:
    """A page of the records the caller may read, in id order: his own, or (`of_patient`)
    one patient's; those that meet `criteria`; rows as in ONE, followed with `with_subject`
    by the record's patient (users.with_patients). Binds after, the criteria's values (and
    patient_id, now)."""
    query, cases = _matching(criteria, of_patient=of_patient)
    page = keyset_page_of_cases(query, cases, PatientRecord.id, limit)
    if with_subject:
        rows = page.subquery("page")
        page = users.with_patients(rows, rows.c.patient_id)
    return scoped(page)


@lru_cache(maxsize=users.SEARCHES_CACHED)
def search_count(criteria: filters.Criteria, *, of_patient: bool) -> AnySelect:
    """How many records search_page would show over all its pages."""
    query, cases = _matching(criteria, of_patient=of_patient)
    ids = query.with_only_columns(PatientRecord.id)
    rows = union_all(*(ids.where(case) for case in cases)).subquery()
    return scoped(select(func.count()).select_from(rows))


# The writing doctor, as a CallerRef bound to his department (all that writes look at).
WRITER = CallerRef(
    id=null(),
    role=null(),
    doctor_id=null(),
    doctor_department_id=bindparam("caller_department_id", type_=BigInteger),
    patient_id=null(),
)
Record = dict[str, Any]  # a record as the API answers it: FIELDS

# A new record, version 1, if `patient_id` names a patient; the database keeps its version
# (migration 0008). Binds patient_id, department_id, author_id, the texts and now.
_CREATE = (
    insert(PatientRecord)
    .from_select(
        [*FIELDS[1:8], "version", "created_at", "updated_at"],
        select(
            bindparam("patient_id", type_=BigInteger),
            bindparam("department_id", type_=BigInteger),
            bindparam("author_id", type_=BigInteger),
            *(bindparam(name, type_=Text) for name in FIELDS[4:8]),
            literal(1),
            NOW,
            NOW,
        ).where(users.is_patient(bindparam("patient_id", type_=BigInteger))),
    )
    .returning(*RECORD_COLUMNS)
)


async def create(write: Write, values: dict[str, Any]) -> Record | None:
    """The new record, or None when `patient_id` is no patient's."""
    row = await write.one(_CREATE, values)
    return None if row is None else dict(zip(FIELDS, row, strict=True))


@lru_cache(maxsize=256)
def _update(fields: frozenset[str], versions: int | None) -> Any:
    """A doctor's change of `fields` to a record of his department, made only if it changes
    anything (and, given a number of `versions`, only from one of those given): the next version,
    kept by the database. Binds record_id, caller_department_id, author_id, now, new_<field>
    for each field (and if_match_0, if_match_1...: one parameter each, so that the statement
    compiles once for the driver)."""
    changed = or_(
        *(
            getattr(PatientRecord, name).is_distinct_from(bindparam(f"new_{name}"))
            for name in fields
        )
    )
    conditions = [PatientRecord.id == _RECORD_ID, policy.writable(WRITER), changed]
    if versions is not None:
        conditions.append(
            PatientRecord.version.in_([bindparam(f"if_match_{n}") for n in range(versions)])
        )
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in sorted(fields)}
    values |= {
        "author_id": bindparam("author_id"),
        "updated_at": NOW,
        "version": PatientRecord.version + 1,
    }
    return update(PatientRecord).where(*conditions).values(values).returning(*RECORD_COLUMNS)


async def change(
    write: Write,
    record_id: int,
    changes: dict[str, Any],
    values: dict[str, Any],
    versions: Sequence[int] | None = None,
) -> Record | None:
    """The record's next version with `changes`, or None when nothing was changed (not
    his department's, not one of the `versions` given, or every field as it is)."""
    statement = _update(frozenset(changes), None if versions is None else len(versions))
    bound = {**values, "record_id": record_id, **{f"new_{k}": v for k, v in changes.items()}}
    bound |= {f"if_match_{n}": version for n, version in enumerate(versions or ())}
    row = await write.one(statement, bound)
    return None if row is None else dict(zip(FIELDS, row, strict=True))


_WRITABLE = select(*RECORD_COLUMNS).where(PatientRecord.id == _RECORD_ID, policy.writable(WRITER))


async def get_writable(write: Write, department_id: int | None, record_id: int) -> Record | None:
    """The record as it is, if the doctor of `department_id` may write it."""
    values = {"record_id": record_id, "caller_department_id": department_id}
    row = await write.one(_WRITABLE, values)
    return None if row is None else dict(zip(FIELDS, row, strict=True))
