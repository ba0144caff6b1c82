"""SQL of departments, their doctors, and their patients (derived from records). Reads are
statements built once (per page size), narrowed by departments.policy and joined to the
token's caller (auth.caller.scoped)."""

from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, bindparam, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import TOKEN_CALLER, scoped
from app.core import filters
from app.core.db import AnySelect
from app.core.pagination import MAX_LIMIT, keyset_page
from app.departments import policy
from app.departments.models import Department
from app.records.models import PatientRecord
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

# One department. Binds department_id.
DEPARTMENT = scoped(select(*DEPARTMENT_COLUMNS).where(Department.id == _DEPARTMENT_ID))


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
DEPARTMENT_RESOURCE = scoped(
    select(*DEPARTMENT_COLUMNS, Department.created_at).where(Department.id == _DEPARTMENT_ID)
)


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


async def get(session: AsyncSession, department_id: int) -> Department | None:
    return await session.get(Department, department_id)


async def name_taken(session: AsyncSession, name: str, other_than: int | None = None) -> bool:
    condition = Department.name_key == casefold_key(name)
    if other_than is not None:
        condition = condition & (Department.id != other_than)
    return bool(await session.scalar(select(exists().where(condition))))


async def add(session: AsyncSession, department: Department) -> Department:
    session.add(department)
    await session.flush()
    return department


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def in_use(session: AsyncSession, department_id: int) -> bool:
    """Whether any doctor or record belongs to the department (one round trip)."""
    doctors = exists().where(DoctorProfile.department_id == department_id)
    records = exists().where(PatientRecord.department_id == department_id)
    return bool(await session.scalar(select(doctors | records)))


async def delete(session: AsyncSession, department: Department) -> None:
    await session.delete(department)
    await session.flush()
