"""Users (every role) and the profiles that doctors and patients carry."""

import unicodedata
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.core.db import Base, BigId, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    DOCTOR = "doctor"
    PATIENT = "patient"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


def casefold_key(value: str) -> str:
    """The form under which names (usernames, emails, department names) are unique and
    compared, and names are searched: compatibility-normalised ('Ｃardiology' is
    'Cardiology'), casefolded ('ALICE' is 'alice', 'STRASSE' is 'straße') and trimmed
    ('Cardiology ' is 'Cardiology'). The text itself is stored as sent.

    NFKC again after casefolding, since casefolding can leave text unnormalised. The
    migration 0006 holds a copy of this rule (migrations do not change with the code).
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold()).strip()


FULL_NAME_KEY_LENGTH = 600


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'doctor', 'patient')", name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    # What `?q=` searches: stored, so a search compares plain text with no function per
    # row (casefolding may triple a name's length).
    full_name_key: Mapped[str] = mapped_column(String(FULL_NAME_KEY_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(server_default=true(), default=True)
    # Tokens issued before this instant are refused (password change).
    tokens_valid_after: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    doctor: Mapped["DoctorProfile | None"] = relationship(lazy="raise", back_populates="user")
    patient: Mapped["PatientProfile | None"] = relationship(lazy="raise", back_populates="user")

    @validates("username")
    def _key_username(self, _field: str, value: str) -> str:
        self.username_key = casefold_key(value)
        return value

    @validates("full_name")
    def _key_full_name(self, _field: str, value: str) -> str:
        # Only searched, never unique: a key that normalisation made longer than its
        # column (18 characters from one, at the extreme) is searched by its beginning.
        self.full_name_key = casefold_key(value)[:FULL_NAME_KEY_LENGTH]
        return value

    @validates("email")
    def _key_email(self, _field: str, value: str) -> str:
        self.email_key = casefold_key(value)
        return value


class DoctorProfile(Base):
    __tablename__ = "doctor_profiles"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    department_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    specialization: Mapped[str | None] = mapped_column(String(200))
    license_number: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="raise", back_populates="doctor")


class PatientProfile(Base):
    __tablename__ = "patient_profiles"
    __table_args__ = (CheckConstraint("sex IN ('female', 'male', 'other', 'unknown')", name="sex"),)

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship(lazy="raise", back_populates="patient")
