"""Emergency ("break the glass") access: a doctor's time-limited, audited right to read one
patient's records outside his department, and the admins' review of every grant.

Opening a grant never fails for a doctor who already sees the patient through his
department: the grant is pointless then, but harmless (read-only, audited), and refusing it
would tell the doctor something about the patient's departments that a 201 does not.

Opening one is a step up: it needs a login with a second factor when the doctor has one,
and always when doctors must (auth.mfa.policy.step_up_missing).
"""

from collections.abc import Collection
from datetime import timedelta
from operator import itemgetter
from typing import Any

from app.audit import service as audit
from app.audit.policy import TRAIL_READERS
from app.audit.repository import NEWEST
from app.auth.mfa.policy import SecondFactorRequired, step_up_missing
from app.auth.reader import Reader
from app.core.db import utcnow
from app.core.errors import NotFound
from app.core.pagination import Page
from app.emergency import repository
from app.transaction import Write


async def open_grant(
    write: Write, *, patient_id: int, reason: str, minutes: int, mfa_required_roles: Collection[str]
) -> dict[str, Any]:
    doctor = write.principal
    # Before the patient is looked up: the refusal says nothing about the id.
    missing = step_up_missing(doctor, mfa_required_roles)
    if missing:
        _refused(write, patient_id)
        raise SecondFactorRequired(missing)
    now = utcnow()
    grant = await repository.create(
        write,
        patient_id=patient_id,
        doctor_id=doctor.id,
        reason=reason,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    if grant is None:
        _refused(write, patient_id)
        raise NotFound("Patient not found")
    audit.record_by(
        write,
        doctor,
        action="emergency.grant",
        resource_type="emergency_grant",
        resource_id=grant["id"],
        patient_id=patient_id,
        emergency_grant_id=grant["id"],
    )
    return grant


def _refused(write: Write, patient_id: int) -> None:
    audit.record_by(
        write,
        write.principal,
        action="emergency.grant",
        resource_type="patient",
        resource_id=patient_id,
        outcome=audit.Outcome.DENIED,
    )


async def review_grants(reader: Reader, page: Page) -> tuple[list[dict[str, Any]], bool]:
    """Every grant, newest first (keyset by descending id: the cursor is the last id seen)."""
    statement = repository.reviews_page(page.limit)
    before = page.after_id or NEWEST
    scoped = await reader.read(statement, before=before, now=utcnow())
    await reader.require(scoped.caller, TRAIL_READERS)
    fields = repository.REVIEW_FIELDS
    grants = sorted(
        (dict(zip(fields, scoped.data(row), strict=True)) for row in scoped.rows),
        key=itemgetter("id"),
        reverse=True,
    )
    review = audit.event_by(
        scoped.caller, action="emergency.review", resource_type="emergency_grant"
    )
    await reader.publish([review])
    return grants[: page.limit], len(grants) > page.limit
