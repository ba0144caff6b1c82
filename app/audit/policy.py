"""Who may read the audit trail, written once for every route that reads it.

- Admins read the whole trail, its verification, the emergency grants and any patient's
  access log.
- A patient reads his own access log, and nothing else of the trail.
"""

from typing import Any

from sqlalchemy import ColumnElement, or_

from app.auth.caller import CallerRef
from app.users.models import Role

TRAIL_READERS = (Role.ADMIN.value,)
ACCESS_LOG_READERS = (Role.ADMIN.value, Role.PATIENT.value)


def trail_visible(caller: CallerRef) -> ColumnElement[bool]:
    return caller.has_role(*TRAIL_READERS)


def access_log_visible(caller: CallerRef, patient_id: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(caller.has_role(*TRAIL_READERS), caller.patient_id == patient_id)
