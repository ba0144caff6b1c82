"""Rules for departments: unique names, deletion only when empty, who sees whose patients."""

from operator import itemgetter
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.auth.reader import Reader
from app.core.context import Principal
from app.core.errors import Conflict, NotFound
from app.core.filters import Search
from app.core.pagination import Page
from app.departments import policy, repository
from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.transaction import Write
from app.users import repository as users
from app.users.service import Found

NAME_TAKEN = "A department with this name already exists"


Item = dict[str, Any]  # a department, doctor or patient as the API answers it


async def list_departments(reader: Reader, page: Page) -> tuple[list[Item], bool]:
    scoped = await reader.read(repository.departments_page(page.limit), after=page.after)
    await reader.require(scoped.caller, policy.DEPARTMENT_READERS)
    rows = [dict(zip(repository.FIELDS, scoped.data(row), strict=True)) for row in scoped.rows]
    return rows[: page.limit], len(rows) > page.limit


async def get_department(reader: Reader, department_id: int, *, created: bool = False) -> Item:
    """A department; with `created`, since when it exists too (RESOURCE_FIELDS)."""
    statement = repository.DEPARTMENT_RESOURCE if created else repository.DEPARTMENT
    scoped = await reader.read(statement, department_id=department_id)
    await reader.require(scoped.caller, policy.DEPARTMENT_READERS)
    if not scoped.rows:
        raise NotFound("Department not found")
    fields = repository.RESOURCE_FIELDS if created else repository.FIELDS
    return dict(zip(fields, scoped.data(scoped.rows[0]), strict=True))


async def search_departments(
    reader: Reader, page: Page, search: Search, *, total: bool = False
) -> Found:
    """A page of the departments that meet the search (RESOURCE_FIELDS)."""
    statement = repository.departments_search(page.limit, search.shape)
    scoped = await reader.read(statement, after=page.after, **search.values)
    await reader.require(scoped.caller, policy.DEPARTMENT_READERS)
    fields = repository.RESOURCE_FIELDS
    rows = [dict(zip(fields, scoped.data(row), strict=True)) for row in scoped.rows]
    count = None
    if total:
        count = await reader.count(repository.departments_count(search.shape), **search.values)
    return Found(rows[: page.limit], len(rows) > page.limit, count)


def _audit_change(write: Write, action: str, department_id: int) -> None:
    audit.record_by(
        write,
        write.principal,
        action=action,
        resource_type="department",
        resource_id=department_id,
    )


async def create_department(write: Write, data: DepartmentCreate) -> Item:
    try:
        department = await repository.create(write, data.model_dump())
    except IntegrityError:  # the name's key is taken: the database's unique index decides
        raise Conflict(NAME_TAKEN) from None
    _audit_change(write, "department.create", department["id"])
    return department


async def update_department(write: Write, department_id: int, changes: DepartmentUpdate) -> Item:
    fields = changes.model_dump(exclude_unset=True)
    if "name" in fields and await repository.name_taken(write, fields["name"], department_id):
        raise Conflict(NAME_TAKEN)
    try:
        department = await repository.change(write, department_id, fields)
    except IntegrityError:  # the name taken concurrently
        raise Conflict(NAME_TAKEN) from None
    if department is None:
        raise NotFound("Department not found")
    _audit_change(write, "department.update", department_id)
    return department


async def delete_department(write: Write, department_id: int) -> None:
    try:
        deleted = await repository.delete_empty(write, department_id)
    except IntegrityError:  # a doctor or record joined it meanwhile
        deleted = False
    if deleted is None:
        raise NotFound("Department not found")
    if not deleted:
        raise Conflict("Doctors or records still belong to this department")
    _audit_change(write, "department.delete", department_id)


async def _people(
    reader: Reader,
    statement: Any,
    department_id: int,
    page: Page,
    roles: tuple[str, ...],
    action: str | None = None,
) -> tuple[Principal, list[tuple[Any, ...]], bool]:
    """The caller, and a page of a department's doctors or patients (rows of their
    fields); 404 for an unknown department, recorded as `action` when it is audited."""
    scoped = await reader.read(statement, department_id=department_id, after=page.after)
    await reader.require(scoped.caller, roles)
    if not scoped.rows:
        if action is not None:
            refusal = audit.event_by(
                scoped.caller,
                action=action,
                resource_type="department",
                resource_id=department_id,
                outcome=audit.Outcome.DENIED,
            )
            await reader.publish([refusal])
        raise NotFound("Department not found")
    rows = [scoped.data(row)[1:] for row in scoped.rows]
    people = sorted((row for row in rows if row[0] is not None), key=itemgetter(0))
    return scoped.caller, people[: page.limit], len(people) > page.limit


async def list_doctors(reader: Reader, department_id: int, page: Page) -> tuple[list[Item], bool]:
    statement = repository.doctors_page(page.limit)
    roles = policy.DOCTOR_LIST_READERS
    _caller, rows, more = await _people(reader, statement, department_id, page, roles)
    return [dict(zip(users.DOCTOR_FIELDS, row, strict=True)) for row in rows], more


async def list_patients(reader: Reader, department_id: int, page: Page) -> tuple[list[Item], bool]:
    """Any doctor reads any department's patients; one event per page, naming them."""
    statement = repository.patients_page(page.limit)
    roles = policy.PATIENT_LIST_READERS
    action = "department.patients"
    caller, rows, more = await _people(reader, statement, department_id, page, roles, action)
    patients = [dict(zip(users.PATIENT_FIELDS, row, strict=True)) for row in rows]
    if patients:
        event = audit.event_by(
            caller,
            action=action,
            resource_type="department",
            resource_id=department_id,
            patients=[patient["id"] for patient in patients],
        )
        await reader.publish([event])
    return patients, more
