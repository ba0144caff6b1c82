"""SQL of departments, their doctors, and their patients (derived from records). Reads are
statements built once (per page size), narrowed by departments.policy and joined to the
token's caller (auth.caller.scoped)."""

from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    update,
)

from app.auth.caller import TOKEN_CALLER, scoped
from app.core import filters
from app.core.db import AnySelect, utcnow
from app.core.pagination import MAX_LIMIT, keyset_page
from app.departments import policy
from app.departments.models import Department
from app.records.models import PatientRecord
from app.transaction import Write
from app.users import repository as users
from app.users.models import DoctorProfile, casefold_key

DEPARTMENT_COLUMNS = (
    Department.id,
    Department.name,
    Department.description,
    Department.location,
    Department.specialization,
)
FIELDS = tuple(column.key for column in DEPARTMENT_COLUMNS)
_DEPARTMENT_ID: BindParameter[Any] = bindparam("department_id")

_ONE = select(*DEPARTMENT_COLUMNS).where(Department.id == _DEPARTMENT_ID)
# One department. Binds department_id.
DEPARTMENT = scoped(_ONE)


@lru_cache(maxsize=MAX_LIMIT)
def departments_page(limit: int) -> AnySelect:
    return scoped(keyset_page(select(*DEPARTMENT_COLUMNS), Department.id, limit))


# A department as FHIR shows it: since when it exists too (it keeps no history).
RESOURCE_FIELDS = (*FIELDS, "created_at")
SEARCH_FIELDS: filters.Columns = {
    "id": Department.id,
    "name": Department.name_key,  # casefolded (core.filters)
    "exact_name": Department.name,
    "created_at": Department.created_at,
}
# One department (RESOURCE_FIELDS). Binds department_id.
DEPARTMENT_RESOURCE = scoped(_ONE.add_columns(Department.created_at))


def _matching(criteria: filters.Criteria) -> AnySelect:
    conditions = filters.conditions(SEARCH_FIELDS, criteria)
    return select(*DEPARTMENT_COLUMNS, Department.created_at).where(*conditions)


@lru_cache(maxsize=users.SEARCHES_CACHED)
def departments_search(limit: int, criteria: filters.Criteria) -> AnySelect:
    """A page of the departments meeting `criteria` (RESOURCE_FIELDS). Binds after and the
    criteria's values."""
    return scoped(keyset_page(_matching(criteria), Department.id, limit))


@lru_cache(maxsize=users.SEARCHES_CACHED)
def departments_count(criteria: filters.Criteria) -> AnySelect:
    return scoped(select(func.count()).select_from(_matching(criteria).subquery()))


def _in_department(page: AnySelect) -> AnySelect:
    """The department's id (NULL when it does not exist: a 404), with a page of its
    people (their columns NULL when there are none)."""
    people = page.subquery()
    query = (
        select(Department.id.label("found"), *people.c)
        .select_from(Department)
        .outerjoin(people, true())
        .where(Department.id == _DEPARTMENT_ID)
    )
    return scoped(query)


@lru_cache(maxsize=MAX_LIMIT)
def doctors_page(limit: int) -> AnySelect:
    """(found, doctor's fields). Binds department_id, after."""
    doctors = users.doctors_page_query(limit, of_department=True)
    return _in_department(doctors.where(policy.doctor_list_visible(TOKEN_CALLER)))


@lru_cache(maxsize=MAX_LIMIT)
def patients_page(limit: int) -> AnySelect:
    """(found, patient's fields). Binds department_id, after."""
    query = users.patients_query().where(
        policy.treated_in(_DEPARTMENT_ID), policy.patient_list_visible(TOKEN_CALLER)
    )
    return _in_department(keyset_page(query, users.PATIENT_KEY, limit))


# The writes: Core statements in the write's transaction (transaction.Write).

# Whether another department has the name (casefolded). Binds name_key, other_than (or NULL).
_NAME_TAKEN = select(
    exists().where(
        Department.name_key == bindparam("name_key"),
        Department.id.is_distinct_from(bindparam("other_than", type_=BigInteger)),
    )
)

_CREATE = (
    insert(Department)
    .values(
        {name: bindparam(name) for name in (*FIELDS[1:], "name_key", "created_at")},
    )
    .returning(*DEPARTMENT_COLUMNS)
)

_IN_USE = exists().where(DoctorProfile.department_id == _DEPARTMENT_ID) | exists().where(
    PatientRecord.department_id == _DEPARTMENT_ID
)
# An empty department deleted (nothing returned when it has doctors or records, or is none).
_DELETE = (
    delete(Department).where(Department.id == _DEPARTMENT_ID, ~_IN_USE).returning(Department.id)
)
_FOUND = select(Department.id).where(Department.id == _DEPARTMENT_ID)


async def name_taken(write: Write, name: str, other_than: int | None = None) -> bool:
    values = {"name_key": casefold_key(name), "other_than": other_than}
    return bool(await write.scalar(_NAME_TAKEN, values))


async def create(write: Write, fields: dict[str, Any]) -> dict[str, Any]:
    values = {**fields, "name_key": casefold_key(fields["name"]), "created_at": utcnow()}
    return dict(zip(FIELDS, await write.one(_CREATE, values), strict=True))


@lru_cache(maxsize=32)
def _update(fields: frozenset[str]) -> Any:
    """The department with `fields` changed (its name's key with its name). Binds
    department_id and new_<field> for each field."""
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in sorted(fields)}
    if "name" in fields:
        values["name_key"] = bindparam("new_name_key")
    changed = update(Department).where(Department.id == _DEPARTMENT_ID).values(values)
    return changed.returning(*DEPARTMENT_COLUMNS)


async def change(
    write: Write, department_id: int, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """The department changed, or None when there is none."""
    values = {"department_id": department_id, **{f"new_{k}": v for k, v in changes.items()}}
    if "name" in changes:
        values["new_name_key"] = casefold_key(changes["name"])
    statement = _update(frozenset(changes)) if changes else _ONE
    row = await write.one(statement, values)
    return None if row is None else dict(zip(FIELDS, row, strict=True))


async def delete_empty(write: Write, department_id: int) -> bool | None:
    """True once deleted; False when doctors or records belong to it; None when there is
    no such department."""
    values = {"department_id": department_id}
    if await write.one(_DELETE, values) is not None:
        return True
    return False if await write.one(_FOUND, values) is not None else None
