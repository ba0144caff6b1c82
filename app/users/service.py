"""Rules for doctors, patients and user activation: who sees which profile, what is audited."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.repository import NewEvent
from app.auth import repository as auth_repository
from app.auth.reader import Reader
from app.core.context import Principal
from app.core.db import AnyRow, utcnow
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.filters import Search
from app.core.pagination import Page
from app.users import policy, repository
from app.users.models import User
from app.users.schemas import DoctorUpdate

Profile = dict[str, Any]  # a doctor or a patient as the API answers it


@dataclass(frozen=True, slots=True)
class Found:
    """A page of a search, whether more follow, and (when asked) how many match in all."""

    items: list[Profile]
    more: bool
    total: int | None = None


def _profiles(fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[Profile]:
    return [dict(zip(fields, row, strict=True)) for row in rows]


async def list_doctors(
    reader: Reader, page: Page, department_id: int | None
) -> tuple[list[Profile], bool]:
    statement = repository.doctors_page(page.limit, of_department=department_id is not None)
    scoped = await reader.read(statement, after=page.after, department_id=department_id)
    await reader.require(scoped.caller, policy.STAFF)
    rows = [scoped.data(row) for row in scoped.rows]
    return _profiles(repository.DOCTOR_FIELDS, rows[: page.limit]), len(rows) > page.limit


async def get_doctor(reader: Reader, doctor_id: int, *, account: bool = False) -> Profile:
    """A doctor's profile (staff); with `account`, his account's fields too."""
    statement = repository.DOCTOR_RESOURCE if account else repository.DOCTOR
    scoped = await reader.read(statement, doctor_id=doctor_id)
    await reader.require(scoped.caller, policy.STAFF)
    if not scoped.rows:
        raise NotFound("Doctor not found")
    fields = repository.DOCTOR_RESOURCE_FIELDS if account else repository.DOCTOR_FIELDS
    return dict(zip(fields, scoped.data(scoped.rows[0]), strict=True))


def _audit_change(session: AsyncSession, admin: Principal, action: str, user_id: int) -> None:
    audit.record_by(
        session,
        admin,
        action=action,
        resource_type="user",
        resource_id=user_id,
    )


async def update_doctor(
    session: AsyncSession, admin: Principal, doctor_id: int, changes: DoctorUpdate
) -> AnyRow:
    profile = await repository.get_doctor_profile(session, doctor_id)
    if profile is None:
        raise NotFound("Doctor not found")
    fields = changes.model_dump(exclude_unset=True)
    department_id = fields.get("department_id")
    if department_id is not None and not await repository.department_exists(session, department_id):
        raise InvalidInput(("body", "department_id"), "Unknown department")
    for name, value in fields.items():
        setattr(profile, name, value)
    await repository.flush(session)
    _audit_change(session, admin, "doctor.update", doctor_id)
    doctor = await repository.get_doctor_row(session, doctor_id)
    assert doctor is not None  # its profile was just written in this transaction
    return doctor


def patients_shown(caller: Principal, patients: list[Profile]) -> NewEvent:
    """The one event of a page that shows these patients' profiles."""
    shown = [patient["id"] for patient in patients]
    return audit.event_by(
        caller,
        action="patient.list",
        resource_type="patient",
        resource_id=shown[0] if len(shown) == 1 else None,
        patients=shown,
    )


async def list_patients(reader: Reader, page: Page, q: str | None) -> tuple[list[Profile], bool]:
    """A page of patients; one event for the page, naming its patients (as every list)."""
    by_index = repository.indexed_fragment(q)
    statement = repository.patients_page(page.limit, search=bool(q), by_index=by_index)
    pattern = repository.search_pattern(q) if q else None
    scoped = await reader.read(statement, after=page.after, pattern=pattern)
    await reader.require(scoped.caller, policy.STAFF)
    rows = [scoped.data(row) for row in scoped.rows]
    patients = _profiles(repository.PATIENT_FIELDS, rows[: page.limit])
    if patients:
        await reader.publish([patients_shown(scoped.caller, patients)])
    return patients, len(rows) > page.limit


async def search_patients(
    reader: Reader, page: Page, search: Search, *, total: bool = False
) -> Found:
    """A page of the patients the caller may read that meet the search (a patient finds
    at most himself), with their accounts' fields; audited as list_patients."""
    statement = repository.patients_search(page.limit, search.shape)
    scoped = await reader.read(statement, after=page.after, **search.values)
    await reader.require(scoped.caller, policy.PATIENT_READERS)
    rows = [scoped.data(row) for row in scoped.rows]
    patients = _profiles(repository.PATIENT_RESOURCE_FIELDS, rows[: page.limit])
    count = None
    if total:
        count = await reader.count(repository.patients_count(search.shape), **search.values)
    if patients:
        await reader.publish([patients_shown(scoped.caller, patients)])
    return Found(patients, len(rows) > page.limit, count)


async def search_doctors(
    reader: Reader, page: Page, search: Search, *, total: bool = False
) -> Found:
    """A page of the doctors that meet the search, with their accounts' fields (staff)."""
    statement = repository.doctors_search(page.limit, search.shape)
    scoped = await reader.read(statement, after=page.after, **search.values)
    await reader.require(scoped.caller, policy.STAFF)
    rows = [scoped.data(row) for row in scoped.rows]
    doctors = _profiles(repository.DOCTOR_RESOURCE_FIELDS, rows[: page.limit])
    count = None
    if total:
        count = await reader.count(repository.doctors_count(search.shape), **search.values)
    return Found(doctors, len(rows) > page.limit, count)


async def get_patient(reader: Reader, patient_id: int, *, account: bool = False) -> Profile:
    """Staff read any patient's profile; a patient only his own (anyone else's is a 404).
    With `account`, the account's fields too (PATIENT_RESOURCE_FIELDS)."""
    statement = repository.PATIENT_RESOURCE if account else repository.PATIENT
    scoped = await reader.read(statement, patient_id=patient_id)
    await reader.require(scoped.caller, policy.PATIENT_READERS)
    shown = bool(scoped.rows)
    event = audit.event_by(
        scoped.caller,
        action="patient.read",
        resource_type="patient",
        resource_id=patient_id,
        outcome=audit.Outcome.ALLOWED if shown else audit.Outcome.DENIED,
        patient_id=patient_id if shown else None,
    )
    await reader.publish([event])
    if not shown:
        raise NotFound("Patient not found")
    fields = repository.PATIENT_RESOURCE_FIELDS if account else repository.PATIENT_FIELDS
    return dict(zip(fields, scoped.data(scoped.rows[0]), strict=True))


async def set_active(
    session: AsyncSession, principal: Principal, user_id: int, is_active: bool
) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise NotFound("User not found")
    if user.id == principal.id and not is_active:
        raise Conflict("An administrator cannot deactivate himself")
    if user.is_active and not is_active:
        # Every login ends, as with a password change: its tokens stay refused even if the
        # user is activated again within the same instant.
        now = utcnow()
        user.tokens_valid_after = now
        await auth_repository.revoke_user_families(session, user.id, now)
    user.is_active = is_active
    await repository.flush(session)
    _audit_change(session, principal, "user.activate" if is_active else "user.deactivate", user.id)
    return user
