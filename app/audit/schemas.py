"""Response shapes of the audit trail, its verification and the patient's access log."""

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from app.core.schemas import ResponseModel


class AuditEventPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1042,
                    "at": "2026-11-27T09:15:02.123456Z",
                    "actor_id": 7,
                    "action": "record.read",
                    "resource_type": "record",
                    "resource_id": 311,
                    "outcome": "allowed",
                    "ip": "10.1.2.3",
                    "request_id": "5f0c9a2e8b7d4c1f9e3a6b2d1c0e8f7a",
                    "emergency_grant_id": None,
                }
            ]
        }
    )

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
    model_config = ConfigDict(json_schema_extra={"examples": [{"ok": True, "events": 1042}]})

    ok: Literal[True]
    events: int


class ChainBroken(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": False, "first_bad_event_id": 977}]}
    )

    ok: Literal[False]
    first_bad_event_id: int


class AccessLogEntry(ResponseModel):
    """One access to the patient's data: who (name, role, department then), what, allowed?"""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-27T09:15:02.123456Z",
                    "actor_id": 7,
                    "actor_name": "Gregory House",
                    "actor_role": "doctor",
                    "department_id": 1,
                    "action": "record.read",
                    "outcome": "allowed",
                    "emergency": False,
                }
            ]
        }
    )

    at: datetime
    actor_id: int | None
    actor_name: str | None
    actor_role: Literal["admin", "doctor", "patient"] | None
    department_id: int | None
    action: str
    outcome: Literal["allowed", "denied", "failed"]
    emergency: bool
