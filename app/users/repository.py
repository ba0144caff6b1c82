"""SQL of doctors, patients and user activation. Reads are statements built once (per page
size), narrowed by users.policy and joined to the token's caller (auth.caller.scoped)."""

from functools import lru_cache

from sqlalchemy import BindParameter, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import TOKEN_CALLER, scoped
from app.core.db import AnyRow, AnySelect
from app.core.pagination import MAX_LIMIT, keyset_page
from app.departments.models import Department
from app.users import policy
from app.users.models import DoctorProfile, PatientProfile, Role, User, casefold_key

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


# One doctor, if the caller may read doctors. Binds doctor_id.
DOCTOR = scoped(
    doctors_query().where(User.id == bindparam("doctor_id"), policy.doctors_visible(TOKEN_CALLER))
)
# One patient, if the caller may read him. Binds patient_id.
PATIENT = scoped(
    patients_query().where(User.id == bindparam("patient_id"), policy.patient_visible(TOKEN_CALLER))
)


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


@lru_cache(maxsize=2 * MAX_LIMIT)
def patients_page(limit: int, *, search: bool) -> AnySelect:
    """A page of patients the caller may read; with `search`, those whose username or
    full name contains `pattern` (search_pattern). Binds after (and pattern)."""
    query = patients_query().where(policy.patient_visible(TOKEN_CALLER))
    if search:
        pattern: BindParameter[str] = bindparam("pattern")
        query = query.where(
            or_(
                User.username_key.like(pattern, escape="/"),
                User.full_name_key.like(pattern, escape="/"),
            )
        )
    return scoped(keyset_page(query, PATIENT_KEY, limit))


async def get_doctor_row(session: AsyncSession, doctor_id: int) -> AnyRow | None:
    return (await session.execute(doctors_query().where(User.id == doctor_id))).one_or_none()


async def get_doctor_profile(session: AsyncSession, doctor_id: int) -> DoctorProfile | None:
    return await session.get(DoctorProfile, doctor_id)


async def is_patient(session: AsyncSession, user_id: int) -> bool:
    query = select(exists().where(User.id == user_id, User.role == Role.PATIENT.value))
    return bool(await session.scalar(query))


async def department_exists(session: AsyncSession, department_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(Department.id == department_id))))


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def flush(session: AsyncSession) -> None:
    await session.flush()
