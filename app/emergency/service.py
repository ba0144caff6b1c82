"""Emergency ("break the glass") access: a doctor's time-limited, audited right to read one
patient's records outside his department, and the admins' review of every grant.

Opening a grant never fails for a doctor who already sees the patient through his
department: the grant is pointless then, but harmless (read-only, audited), and refusing it
would tell the doctor something about the patient's departments that a 201 does not.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.context import Principal
from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound
from app.core.pagination import Page
from app.emergency import repository
from app.emergency.models import EmergencyGrant
from app.users import repository as users_repository


@dataclass(frozen=True, slots=True)
class GrantReview:
    id: int
    patient_id: int
    doctor_id: int
    reason: str
    created_at: datetime
    expires_at: datetime
    active: bool


async def open_grant(
    session: AsyncSession, doctor: Principal, *, patient_id: int, reason: str, minutes: int
) -> EmergencyGrant:
    if not doctor.is_doctor:
        raise Forbidden()
    if not await users_repository.is_patient(session, patient_id):
        audit.record_by(
            session,
            doctor,
            action="emergency.grant",
            resource_type="patient",
            resource_id=patient_id,
            outcome=audit.Outcome.DENIED,
        )
        raise NotFound("Patient not found")
    now = utcnow()
    grant = await repository.create(
        session,
        patient_id=patient_id,
        doctor_id=doctor.id,
        reason=reason,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    audit.record_by(
        session,
        doctor,
        action="emergency.grant",
        resource_type="emergency_grant",
        resource_id=grant.id,
        patient_id=patient_id,
        emergency_grant_id=grant.id,
    )
    return grant


async def review_grants(session: AsyncSession, admin: Principal, page: Page) -> list[GrantReview]:
    """Every grant, newest first (keyset by descending id: the cursor is the last id seen)."""
    if not admin.is_admin:
        raise Forbidden()
    grants = await repository.list_newest_first(session, limit=page.limit, before_id=page.after_id)
    audit.record_by(
        session,
        admin,
        action="emergency.review",
        resource_type="emergency_grant",
    )
    now = utcnow()
    return [
        GrantReview(
            id=grant.id,
            patient_id=grant.patient_id,
            doctor_id=grant.doctor_id,
            reason=grant.reason,
            created_at=grant.created_at,
            expires_at=grant.expires_at,
            active=grant.expires_at > now,
        )
        for grant in grants
    ]
