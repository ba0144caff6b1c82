"""Response shapes of the audit trail, its verification and the patient's access log."""

from datetime import datetime
from typing import Literal

from app.core.schemas import ResponseModel


class AuditEventPublic(ResponseModel):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    resource_type: str
    resource_id: int | None
    outcome: Literal["allowed", "denied", "failed"]
    ip: str | None
    request_id: str | None
    emergency_grant_id: int | None


class ChainIntact(ResponseModel):
    ok: Literal[True]
    events: int


class ChainBroken(ResponseModel):
    ok: Literal[False]
    first_bad_event_id: int


class AccessLogEntry(ResponseModel):
    """One access to the patient's data: who (name, role, department then), what, allowed?"""

    at: datetime
    actor_id: int | None
    actor_name: str | None
    actor_role: Literal["admin", "doctor", "patient"] | None
    department_id: int | None
    action: str
    outcome: Literal["allowed", "denied", "failed"]
    emergency: bool
