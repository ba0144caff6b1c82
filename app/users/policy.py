"""Who may read doctors' and patients' profiles, written once for every route that reads them.

- Staff (admins and doctors) read every doctor's profile and every patient's.
- A patient reads his own profile, and no one else's (nor any doctor's).
"""

from sqlalchemy import ColumnElement, or_

from app.auth.caller import CallerRef
from app.users.models import Role, User

STAFF = (Role.ADMIN.value, Role.DOCTOR.value)
PATIENT_READERS = (*STAFF, Role.PATIENT.value)


def doctors_visible(caller: CallerRef) -> ColumnElement[bool]:
    return caller.has_role(*STAFF)


def patient_visible_cases(caller: CallerRef) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """patient_visible as its two cases, which never hold together: staff read every
    patient, a patient his own row."""
    return caller.has_role(*STAFF), User.id == caller.patient_id


def patient_visible(caller: CallerRef) -> ColumnElement[bool]:
    """The patient rows (users joined to patient profiles) the caller may read."""
    return or_(*patient_visible_cases(caller))
