"""Who may read doctors' and patients' profiles, written once for every route that reads them.

- Staff (admins and doctors) read every doctor's profile and every patient's.
- A patient reads his own profile, and no one else's (nor any doctor's).
"""

from sqlalchemy import ColumnElement, case, literal_column

from app.auth.caller import CallerRef
from app.users.models import PatientProfile, Role

STAFF = (Role.ADMIN.value, Role.DOCTOR.value)
PATIENT_READERS = (*STAFF, Role.PATIENT.value)


def doctors_visible(caller: CallerRef) -> ColumnElement[bool]:
    return caller.has_role(*STAFF)


def patient_visible(caller: CallerRef) -> ColumnElement[bool]:
    """The patient rows (users joined to patient profiles) the caller may read: a range
    of their key, every id for staff, his own for a patient, none for anyone else (NULL
    bounds). A range, not "staff or his own id": the database walks a page of it in key
    order, where it cannot tell how many rows an OR keeps and sorts every patient."""
    staff = caller.has_role(*STAFF)
    first = case((staff, literal_column("1")), else_=caller.patient_id)
    last = case((staff, literal_column(str(2**63 - 1))), else_=caller.patient_id)
    return PatientProfile.user_id.between(first, last)
