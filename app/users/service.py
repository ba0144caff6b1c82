"""Rules for doctors, patients and user activation: who sees which profile, what is audited."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import repository as auth_repository
from app.core.context import Principal
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import Page
from app.users import repository
from app.users.models import User
from app.users.repository import AnyRow
from app.users.schemas import DoctorUpdate


async def list_doctors(
    session: AsyncSession, page: Page, department_id: int | None
) -> Sequence[AnyRow]:
    return await repository.list_doctors(session, page, department_id)


async def get_doctor(session: AsyncSession, doctor_id: int) -> AnyRow:
    doctor = await repository.get_doctor(session, doctor_id)
    if doctor is None:
        raise NotFound("Doctor not found")
    return doctor


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
    return await get_doctor(session, doctor_id)


async def list_patients(
    session: AsyncSession, principal: Principal, page: Page, q: str | None
) -> Sequence[AnyRow]:
    patients = await repository.list_patients(session, page, q)
    shown = [patient.id for patient in patients[: page.limit]]
    if shown:  # one event for the page, naming its patients (as the other lists)
        audit.record_by(
            session,
            principal,
            action="patient.list",
            resource_type="patient",
            resource_id=shown[0] if len(shown) == 1 else None,
            patients=shown,
        )
    return patients


async def get_patient(session: AsyncSession, principal: Principal, patient_id: int) -> AnyRow:
    """Staff read any patient's profile; a patient only his own (anyone else's is a 404)."""
    visible = not principal.is_patient or principal.id == patient_id
    patient = await repository.get_patient(session, patient_id) if visible else None
    if patient is None:
        audit.record_by(
            session,
            principal,
            action="patient.read",
            resource_type="patient",
            resource_id=patient_id,
            outcome=audit.Outcome.DENIED,
        )
        raise NotFound("Patient not found")
    audit.record_by(
        session,
        principal,
        action="patient.read",
        resource_type="patient",
        resource_id=patient_id,
        patient_id=patient_id,
    )
    return patient


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
