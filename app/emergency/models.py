from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigId, utcnow


class EmergencyGrant(Base):
    """A doctor's time-limited, audited right to read one patient's records ("break the glass")."""

    __tablename__ = "emergency_grants"
    __table_args__ = (
        Index("ix_emergency_grants_doctor_id_patient_id", "doctor_id", "patient_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    doctor_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
