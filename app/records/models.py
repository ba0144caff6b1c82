"""Patient records: the current version, and every version ever written (append-only)."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigId


class PatientRecord(Base):
    __tablename__ = "patient_records"
    __table_args__ = (
        # Keyset pages of one department, one patient, and a patient's departments.
        Index("ix_patient_records_department_id_id", "department_id", "id"),
        Index("ix_patient_records_patient_id_id", "patient_id", "id"),
        Index("ix_patient_records_department_id_patient_id", "department_id", "patient_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    department_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("departments.id", ondelete="RESTRICT")
    )
    # The doctor who wrote the current version.
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    diagnosis: Mapped[str] = mapped_column(Text)
    observations: Mapped[str | None] = mapped_column(Text)
    treatments: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PatientRecordVersion(Base):
    """Every version of a record as written, the current one included; never updated."""

    __tablename__ = "patient_record_versions"
    __table_args__ = (UniqueConstraint("record_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("patient_records.id", ondelete="RESTRICT")
    )
    version: Mapped[int]
    patient_id: Mapped[int] = mapped_column(BigId)
    department_id: Mapped[int] = mapped_column(BigId)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    diagnosis: Mapped[str] = mapped_column(Text)
    observations: Mapped[str | None] = mapped_column(Text)
    treatments: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
