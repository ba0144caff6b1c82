"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from app.audit.models import AuditChainHead, AuditEvent, AuditLinkState, AuditPatientLink
from app.auth.mfa.models import RecoveryCode, TotpCredential
from app.auth.models import LoginFailure, RevokedToken, TokenFamily
from app.core.db import Base
from app.core.ratelimit import RateLimitCounter
from app.departments.models import Department
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord, PatientRecordVersion
from app.users.models import DoctorProfile, PatientProfile, User

SEARCH_INDEX_PREFIX = "ix_trgm_"


def include_in_autogenerate(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave out what only migrations declare: PostgreSQL's trigram search indexes."""
    return not (type_ == "index" and name is not None and name.startswith(SEARCH_INDEX_PREFIX))


__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AuditLinkState",
    "AuditPatientLink",
    "Base",
    "Department",
    "DoctorProfile",
    "EmergencyGrant",
    "LoginFailure",
    "PatientProfile",
    "PatientRecord",
    "PatientRecordVersion",
    "RateLimitCounter",
    "RecoveryCode",
    "RevokedToken",
    "TokenFamily",
    "TotpCredential",
    "User",
    "include_in_autogenerate",
]
