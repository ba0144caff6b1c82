"""Rules for departments: unique names, deletion only when empty, their audited patients."""

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.context import Principal
from app.core.errors import Conflict, NotFound
from app.core.pagination import Page
from app.departments import repository
from app.departments.models import Department
from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.users.repository import AnyRow

NAME_TAKEN = "A department with this name already exists"


async def list_departments(session: AsyncSession, page: Page) -> Sequence[Department]:
    return await repository.list_departments(session, page)


async def get_department(session: AsyncSession, department_id: int) -> Department:
    department = await repository.get(session, department_id)
    if department is None:
        raise NotFound("Department not found")
    return department


def _audit_change(session: AsyncSession, admin: Principal, action: str, department_id: int) -> None:
    audit.record_by(
        session,
        admin,
        action=action,
        resource_type="department",
        resource_id=department_id,
    )


async def create_department(
    session: AsyncSession, admin: Principal, data: DepartmentCreate
) -> Department:
    if await repository.name_taken(session, data.name):
        raise Conflict(NAME_TAKEN)
    try:
        department = await repository.add(session, Department(**data.model_dump()))
    except IntegrityError:  # the same name created concurrently
        raise Conflict(NAME_TAKEN) from None
    _audit_change(session, admin, "department.create", department.id)
    return department


async def update_department(
    session: AsyncSession, admin: Principal, department_id: int, changes: DepartmentUpdate
) -> Department:
    department = await get_department(session, department_id)
    fields = changes.model_dump(exclude_unset=True)
    if "name" in fields and await repository.name_taken(session, fields["name"], department_id):
        raise Conflict(NAME_TAKEN)
    for name, value in fields.items():
        setattr(department, name, value)
    try:
        await repository.flush(session)
    except IntegrityError:
        raise Conflict(NAME_TAKEN) from None
    _audit_change(session, admin, "department.update", department_id)
    return department


async def delete_department(session: AsyncSession, admin: Principal, department_id: int) -> None:
    department = await get_department(session, department_id)
    if await repository.in_use(session, department_id):
        raise Conflict("Doctors or records still belong to this department")
    try:
        await repository.delete(session, department)
    except IntegrityError:  # a doctor or record joined it meanwhile
        raise Conflict("Doctors or records still belong to this department") from None
    _audit_change(session, admin, "department.delete", department_id)


async def list_doctors(session: AsyncSession, department_id: int, page: Page) -> Sequence[AnyRow]:
    if not await repository.exists_by_id(session, department_id):
        raise NotFound("Department not found")
    return await repository.list_doctors(session, department_id, page)


async def list_patients(
    session: AsyncSession, principal: Principal, department_id: int, page: Page
) -> Sequence[AnyRow]:
    """Any doctor lists the patients of any department (a consult needs to see whom another
    ward treats): each page is one event naming its patients; an unknown department is a
    404, recorded as a refused attempt."""
    # A doctor's own department exists (a department with doctors cannot be deleted).
    known = principal.department_id == department_id
    if not known and not await repository.exists_by_id(session, department_id):
        audit.record_by(
            session,
            principal,
            action="department.patients",
            resource_type="department",
            resource_id=department_id,
            outcome=audit.Outcome.DENIED,
        )
        raise NotFound("Department not found")
    patients = await repository.list_patients(session, department_id, page)
    shown = [patient.id for patient in patients[: page.limit]]
    if shown:  # one event for the page, naming its patients
        audit.record_by(
            session,
            principal,
            action="department.patients",
            resource_type="department",
            resource_id=department_id,
            patients=shown,
        )
    return patients
