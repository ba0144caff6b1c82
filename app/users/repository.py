"""SQL of doctors, patients and user activation. Reads are statements built once (per page
size), narrowed by users.policy and joined to the token's caller (auth.caller.scoped)."""

from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from app.auth.caller import TOKEN_CALLER, scoped
from app.core import filters
from app.core.db import AnyRow, AnySelect
from app.core.pagination import AFTER, MAX_LIMIT, keyset_page, keyset_page_of_cases, written
from app.departments.models import Department
from app.users import policy
from app.users.models import DoctorProfile, PatientProfile, Role, User, casefold_key


def is_patient(user_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether `user_id` is a patient's (one primary-key probe): a write about a patient
    checks it in its own statement."""
    return exists().where(User.id == user_id, User.role == Role.PATIENT.value)


DOCTOR_COLUMNS = (
    User.id,
    User.username,
    User.email,
    User.full_name,
    DoctorProfile.department_id,
    DoctorProfile.specialization,
    DoctorProfile.license_number,
)
PATIENT_COLUMNS = (
    User.id,
    User.username,
    User.email,
    User.full_name,
    PatientProfile.date_of_birth,
    PatientProfile.sex,
    PatientProfile.phone,
)
DOCTOR_FIELDS = tuple(column.key for column in DOCTOR_COLUMNS)
PATIENT_FIELDS = tuple(column.key for column in PATIENT_COLUMNS)
# Pages of patients walk the patient profiles' key, not the users': in users' order a
# page would first walk past every doctor.
PATIENT_KEY = PatientProfile.user_id


def doctors_query() -> AnySelect:
    return select(*DOCTOR_COLUMNS).join(DoctorProfile, DoctorProfile.user_id == User.id)


def patients_query() -> AnySelect:
    return select(*PATIENT_COLUMNS).join(PatientProfile, PatientProfile.user_id == User.id)


_ONE_DOCTOR = doctors_query().where(
    User.id == bindparam("doctor_id"), policy.doctors_visible(TOKEN_CALLER)
)
_ONE_PATIENT = patients_query().where(
    User.id == bindparam("patient_id"), policy.patient_visible(TOKEN_CALLER)
)
# One doctor, if the caller may read doctors. Binds doctor_id.
DOCTOR = scoped(_ONE_DOCTOR)
# One patient, if the caller may read him. Binds patient_id.
PATIENT = scoped(_ONE_PATIENT)


def doctors_page_query(limit: int, *, of_department: bool) -> AnySelect:
    """A page of doctors (binds after; department_id with `of_department`), unscoped."""
    query = doctors_query()
    if of_department:
        query = query.where(DoctorProfile.department_id == bindparam("department_id"))
    return keyset_page(query, User.id, limit)


@lru_cache(maxsize=2 * MAX_LIMIT)
def doctors_page(limit: int, *, of_department: bool) -> AnySelect:
    query = doctors_page_query(limit, of_department=of_department)
    return scoped(query.where(policy.doctors_visible(TOKEN_CALLER)))


def search_pattern(q: str) -> str:
    """The LIKE pattern of `?q=` (contains, case-insensitively, `%` and `_` taken as
    themselves), matched against the stored casefolded keys."""
    escaped = casefold_key(q).replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


# The trigram indexes of the names (PostgreSQL, migration 0002) find a fragment of at
# least this many characters (pg_trgm reads names three characters at a time).
INDEXED_FRAGMENT = 3


def indexed_fragment(q: str | None) -> bool:
    """Whether the name indexes find `?q=`'s fragment (see patients_page)."""
    return q is not None and len(casefold_key(q)) >= INDEXED_FRAGMENT


@lru_cache(maxsize=4 * MAX_LIMIT)
def patients_page(limit: int, *, search: bool, by_index: bool = False) -> AnySelect:
    """A page of patients the caller may read; with `search`, those whose username or
    full name contains `pattern` (search_pattern). Binds after (and pattern).

    With `by_index` (indexed_fragment) every match is found first, by the name indexes,
    then paged. Left to choose, PostgreSQL walks the users' key in id order until it has
    a page whenever it guesses that many users match: it cannot know how many contain a
    fragment (a bound pattern, or a name that fell among its statistics' samples), and
    for a rare name that walk reads every user. A shorter fragment has no index to use,
    and matches so many names that the walk is what finds a page soonest."""
    if not search:
        return scoped(_visible_page(patients_query(), limit))
    pattern: BindParameter[str] = bindparam("pattern")
    names = or_(
        User.username_key.like(pattern, escape="/"),
        User.full_name_key.like(pattern, escape="/"),
    )
    if by_index:
        # MATERIALIZED (PostgreSQL; SQLite has no name indexes): the matches are a set of
        # their own, not folded into a walk of the users' key, and ordered by their id as
        # a value (`+ 0`), which no index orders. The set is already the page (the rows
        # the caller may read, cut to its size): a common fragment matches thousands of
        # patients, and joining each to his profile before the cut cost more than finding
        # them.
        key = User.id + literal_column("0")
        found = (
            select(User.id.label("id"))
            .where(names, key > AFTER, policy.patient_visible(TOKEN_CALLER))
            .where(exists().where(PatientProfile.user_id == User.id))
            .order_by(key)
            .limit(written(limit + 1))
            .cte("found")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        matching = patients_query().join(found, found.c.id == User.id)
        return scoped(_visible_page(matching, limit, key=found.c.id + literal_column("0")))
    # The matches come from the users' name indexes: their page walks the users' key (the
    # same ids), or PostgreSQL's generic plan would merge them with every patient profile.
    return scoped(_visible_page(patients_query().where(names), limit, key=User.id))


def _visible_page(query: AnySelect, limit: int, key: Any = PATIENT_KEY) -> AnySelect:
    """A page of the patients of `query` that the caller may read, in `key` order."""
    cases = policy.patient_visible_cases(TOKEN_CALLER)
    return keyset_page_of_cases(query, cases, key, limit)


# What FHIR shows of a doctor or a patient besides his profile: whether his account is
# active, and since when he is here (the resource's last update: profiles keep no history).
ACCOUNT_COLUMNS = (User.is_active, User.created_at)
DOCTOR_RESOURCE_FIELDS = (*DOCTOR_FIELDS, *(column.key for column in ACCOUNT_COLUMNS))
PATIENT_RESOURCE_FIELDS = (*PATIENT_FIELDS, *(column.key for column in ACCOUNT_COLUMNS))
SEARCHES_CACHED = 1024

# The fields searches compare (core.filters): names by their casefolded key (`name`), or
# exactly as stored (`exact_name`).
_PERSON_FIELDS: filters.Columns = {
    "id": User.id,
    "name": User.full_name_key,
    "exact_name": User.full_name,
    "username": User.username_key,
    "created_at": User.created_at,
}
PATIENT_SEARCH_FIELDS: filters.Columns = {
    **_PERSON_FIELDS,
    "id": PATIENT_KEY,
    "birth_date": PatientProfile.date_of_birth,
    "sex": PatientProfile.sex,
}
DOCTOR_SEARCH_FIELDS: filters.Columns = {
    **_PERSON_FIELDS,
    "license_number": DoctorProfile.license_number,
    "department_id": DoctorProfile.department_id,
}

# One patient with his account's columns (PATIENT_RESOURCE_FIELDS), if the caller may read
# him. Binds patient_id.
PATIENT_RESOURCE = scoped(_ONE_PATIENT.add_columns(*ACCOUNT_COLUMNS))
# One doctor with his account's columns (DOCTOR_RESOURCE_FIELDS). Binds doctor_id.
DOCTOR_RESOURCE = scoped(_ONE_DOCTOR.add_columns(*ACCOUNT_COLUMNS))


def _patients_meeting(criteria: filters.Criteria) -> AnySelect:
    """The patients that meet `criteria`, with their accounts' columns
    (PATIENT_RESOURCE_FIELDS), whoever asks."""
    conditions = filters.conditions(PATIENT_SEARCH_FIELDS, criteria)
    return patients_query().add_columns(*ACCOUNT_COLUMNS).where(*conditions)


def _patients_matching(criteria: filters.Criteria) -> AnySelect:
    """The patients the caller may read that meet `criteria`, with their accounts'
    columns (PATIENT_RESOURCE_FIELDS)."""
    return _patients_meeting(criteria).where(policy.patient_visible(TOKEN_CALLER))


def _doctors_matching(criteria: filters.Criteria) -> AnySelect:
    conditions = filters.conditions(DOCTOR_SEARCH_FIELDS, criteria)
    visible = policy.doctors_visible(TOKEN_CALLER)
    return doctors_query().add_columns(*ACCOUNT_COLUMNS).where(visible, *conditions)


@lru_cache(maxsize=SEARCHES_CACHED)
def patients_search(limit: int, criteria: filters.Criteria) -> AnySelect:
    """A page of the patients the caller may read that meet `criteria`, rows of
    PATIENT_RESOURCE_FIELDS. Binds after and the criteria's values."""
    return scoped(_visible_page(_patients_meeting(criteria), limit))


@lru_cache(maxsize=SEARCHES_CACHED)
def patients_count(criteria: filters.Criteria) -> AnySelect:
    """How many patients the caller may read meet `criteria`."""
    return scoped(select(func.count()).select_from(_patients_matching(criteria).subquery()))


@lru_cache(maxsize=SEARCHES_CACHED)
def doctors_search(limit: int, criteria: filters.Criteria) -> AnySelect:
    """A page of doctors meeting `criteria`, if the caller may read doctors, rows of
    DOCTOR_RESOURCE_FIELDS. Binds after and the criteria's values."""
    return scoped(keyset_page(_doctors_matching(criteria), User.id, limit))


@lru_cache(maxsize=SEARCHES_CACHED)
def doctors_count(criteria: filters.Criteria) -> AnySelect:
    return scoped(select(func.count()).select_from(_doctors_matching(criteria).subquery()))


def with_patients(page: FromClause, patient_id: ColumnElement[Any]) -> AnySelect:
    """The rows of `page`, each followed by its patient's PATIENT_RESOURCE_FIELDS (labelled
    `subject_<field>`) when the caller may read that patient, else NULLs."""
    patient = _patients_matching(()).subquery("patient")
    labelled = [patient.c[name].label(f"subject_{name}") for name in PATIENT_RESOURCE_FIELDS]
    return (
        select(*page.c, *labelled).select_from(page).outerjoin(patient, patient.c.id == patient_id)
    )


async def get_doctor_row(session: AsyncSession, doctor_id: int) -> AnyRow | None:
    return (await session.execute(doctors_query().where(User.id == doctor_id))).one_or_none()


async def get_doctor_profile(session: AsyncSession, doctor_id: int) -> DoctorProfile | None:
    return await session.get(DoctorProfile, doctor_id)


async def department_exists(session: AsyncSession, department_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(Department.id == department_id))))


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def flush(session: AsyncSession) -> None:
    await session.flush()
