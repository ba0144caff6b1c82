"""SQL of departments, their doctors, and their patients (derived from records)."""

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, keyset
from app.departments.models import Department
from app.records.models import PatientRecord
from app.users import repository as users
from app.users.models import DoctorProfile, casefold_key
from app.users.repository import AnyRow


async def list_departments(session: AsyncSession, page: Page) -> Sequence[Department]:
    return (await session.scalars(keyset(select(Department), Department.id, page))).all()


async def get(session: AsyncSession, department_id: int) -> Department | None:
    return await session.get(Department, department_id)


async def exists_by_id(session: AsyncSession, department_id: int) -> bool:
    return await users.department_exists(session, department_id)


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


async def list_doctors(session: AsyncSession, department_id: int, page: Page) -> Sequence[AnyRow]:
    return await users.list_doctors(session, page, department_id)


async def list_patients(session: AsyncSession, department_id: int, page: Page) -> Sequence[AnyRow]:
    """Patients with at least one record in the department: a semi-join on records, so the
    membership is never stored twice (and each patient appears once)."""
    has_record = exists().where(
        PatientRecord.department_id == department_id,
        PatientRecord.patient_id == users.PATIENT_KEY,
    )
    query = users.patients_query().where(has_record)
    return (await session.execute(users.patients_page(query, page))).all()
