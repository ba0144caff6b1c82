"""Who may read departments and the people in them, written once for every route.

- Every authenticated caller reads the departments themselves (no patient data).
- Staff (admins and doctors) read a department's doctors.
- Every doctor reads any department's patients (a consult needs to see whom another
  ward treats); admins and patients do not. Each such page is audited.
"""

from sqlalchemy import ColumnElement, exists

from app.auth.caller import CallerRef
from app.records.models import PatientRecord
from app.users.models import Role
from app.users.policy import STAFF
from app.users.repository import PATIENT_KEY

DEPARTMENT_READERS = (Role.ADMIN.value, Role.DOCTOR.value, Role.PATIENT.value)
DOCTOR_LIST_READERS = STAFF
PATIENT_LIST_READERS = (Role.DOCTOR.value,)


def patient_list_visible(caller: CallerRef) -> ColumnElement[bool]:
    return caller.has_role(*PATIENT_LIST_READERS)


def doctor_list_visible(caller: CallerRef) -> ColumnElement[bool]:
    return caller.has_role(*DOCTOR_LIST_READERS)


def treated_in(department_id: ColumnElement[int]) -> ColumnElement[bool]:
    """A patient *is in* a department when at least one of his records belongs to it: a
    semi-join on records, so the membership is never stored twice."""
    return exists().where(
        PatientRecord.department_id == department_id, PatientRecord.patient_id == PATIENT_KEY
    )
