"""Who may read which patient records, written once: every route that reads records (one
record, a page, a history, in REST and in FHIR) narrows its statement here.

- A patient reads the records about himself.
- A doctor reads his department's records, and every record of a patient for whom he
  holds an unexpired emergency grant ("break the glass"); the grant that made a record
  visible is named in the read's audit event.
- Anyone else (an admin) reads none.
- Writes are narrower: only a doctor of the record's department (never under a grant).

The caller is a `CallerRef`: the token's caller inside a scoped read (auth.caller), or a
principal's values bound as parameters.
"""

from typing import Any

from sqlalchemy import ColumnElement, case, exists, null, or_, select

from app.auth.caller import CallerRef
from app.core.pagination import written
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord

READERS = ("doctor", "patient")


def _grant(caller: CallerRef, now: ColumnElement[Any]) -> tuple[ColumnElement[bool], ...]:
    return (
        EmergencyGrant.doctor_id == caller.doctor_id,
        EmergencyGrant.patient_id == PatientRecord.patient_id,
        EmergencyGrant.expires_at > now,
    )


def in_department(caller: CallerRef) -> ColumnElement[bool]:
    """The records of the caller's department (a doctor's; false for anyone else)."""
    return PatientRecord.department_id == caller.doctor_department_id


def own(caller: CallerRef) -> tuple[ColumnElement[bool], ...]:
    """What the caller sees without a grant, one condition per index path ((department_id,
    id), (patient_id, id)): a page reads each separately, in id order."""
    return in_department(caller), PatientRecord.patient_id == caller.patient_id


def visible(caller: CallerRef, now: ColumnElement[Any]) -> ColumnElement[bool]:
    """Every record the caller may read now."""
    return or_(*own(caller), exists().where(*_grant(caller, now)))


def grant_used(caller: CallerRef, now: ColumnElement[Any]) -> ColumnElement[Any]:
    """The emergency grant a visible record is read under: the latest-expiring one, and
    only for a record outside the caller's department."""
    grant_id = (
        select(EmergencyGrant.id)
        .where(*_grant(caller, now))
        .order_by(EmergencyGrant.expires_at.desc(), EmergencyGrant.id.desc())
        .limit(written(1))
        .correlate(PatientRecord)
        .scalar_subquery()
    )
    return case((in_department(caller), null()), else_=grant_id)


def writable(caller: CallerRef) -> ColumnElement[bool]:
    return in_department(caller)
