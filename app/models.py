"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from app.audit.models import AuditChainHead, AuditEvent
from app.auth.models import LoginFailure, RevokedToken, TokenFamily
from app.core.db import Base
from app.departments.models import Department
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord, PatientRecordVersion
from app.users.models import DoctorProfile, PatientProfile, User

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "Department",
    "DoctorProfile",
    "EmergencyGrant",
    "LoginFailure",
    "PatientProfile",
    "PatientRecord",
    "PatientRecordVersion",
    "RevokedToken",
    "TokenFamily",
    "User",
]
