"""Factories for the data tests need, written straight to the test's database session."""

import itertools
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa import codes
from app.auth.mfa.keys import MfaKeys
from app.auth.mfa.models import RecoveryCode, TotpCredential
from app.auth.tokens import issue_login
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.core.security import PASSWORD, hash_password_sync
from app.departments.models import Department
from app.records.models import PatientRecord
from app.users.models import DoctorProfile, PatientProfile, Role, User

DEFAULT_PASSWORD = "correct horse battery staple"
_sequence = itertools.count(1)


@lru_cache(maxsize=1)
def default_password_hash() -> str:
    """A real argon2id hash, computed once for the whole run."""
    return hash_password_sync(DEFAULT_PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_sequence)}"


async def create_department(session: AsyncSession, **fields: Any) -> Department:
    department = Department(
        name=fields.pop("name", unique("Department ")),
        description=fields.pop("description", "A department"),
        location=fields.pop("location", "Building A"),
        specialization=fields.pop("specialization", "General"),
        **fields,
    )
    session.add(department)
    await session.commit()
    return department


async def create_user(
    session: AsyncSession,
    role: Role | str = Role.PATIENT,
    *,
    password: str | None = None,
    is_active: bool = True,
    **fields: Any,
) -> User:
    username = fields.pop("username", unique(f"{role}_"))
    user = User(
        username=username,
        email=fields.pop("email", f"{username}@example.org"),
        full_name=fields.pop("full_name", f"Name of {username}"),
        password_hash=hash_password_sync(password) if password else default_password_hash(),
        role=str(role),
        is_active=is_active,
    )
    session.add(user)
    await session.flush()
    if role == Role.DOCTOR:
        session.add(
            DoctorProfile(
                user_id=user.id,
                department_id=fields.pop("department_id", None),
                specialization=fields.pop("specialization", "Cardiology"),
                license_number=fields.pop("license_number", unique("LIC-")),
            )
        )
    elif role == Role.PATIENT:
        session.add(
            PatientProfile(
                user_id=user.id,
                date_of_birth=fields.pop("date_of_birth", None),
                sex=fields.pop("sex", None),
                phone=fields.pop("phone", None),
            )
        )
    assert not fields, f"unused factory fields: {sorted(fields)}"
    await session.commit()
    return user


async def create_admin(session: AsyncSession, **fields: Any) -> User:
    return await create_user(session, Role.ADMIN, **fields)


async def create_doctor(
    session: AsyncSession, department: Department | None = None, **fields: Any
) -> User:
    return await create_user(
        session, Role.DOCTOR, department_id=department.id if department else None, **fields
    )


async def create_patient(session: AsyncSession, **fields: Any) -> User:
    return await create_user(session, Role.PATIENT, **fields)


async def create_record(
    session: AsyncSession, *, patient: User, doctor: User, department: Department, **fields: Any
) -> PatientRecord:
    now = utcnow()
    created_at = fields.pop("created_at", now)
    updated_at = fields.pop("updated_at", created_at)
    content = {
        "diagnosis": fields.pop("diagnosis", "Hypertension"),
        "observations": fields.pop("observations", "BP 150/95"),
        "treatments": fields.pop("treatments", "Lisinopril 10 mg"),
        "notes": fields.pop("notes", None),
    }
    assert not fields, f"unused factory fields: {sorted(fields)}"
    record = PatientRecord(
        patient_id=patient.id,
        department_id=department.id,
        author_id=doctor.id,
        version=1,
        created_at=created_at,
        updated_at=updated_at,
        **content,
    )
    session.add(record)  # the database keeps its version 1
    await session.commit()
    return record


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def tokens_for(
    session: AsyncSession, settings: Settings, user: User, amr: tuple[str, ...] = (PASSWORD,)
) -> Tokens:
    """Real tokens of a new login, without spending an argon2 verify on each test. `amr`:
    how the login was authenticated (("pwd", "otp") for one with a code)."""
    pair = await issue_login(
        session, settings.signing_key(), settings, user_id=user.id, role=user.role, amr=amr
    )
    await session.commit()
    return Tokens(pair.access.token, pair.refresh.token)


def mfa_keys(settings: Settings) -> MfaKeys:
    """The keys the app derives from these settings (app.state.mfa_keys)."""
    return MfaKeys.from_settings(settings, settings.signing_key())


@dataclass(frozen=True)
class Factor:
    """A user's confirmed authenticator: its secret, and his recovery codes as shown."""

    secret: str
    recovery_codes: list[str]

    def code(self, at: datetime | None = None, *, steps: int = 0) -> str:
        """The code the app shows at `at` (now by the service's clock), `steps` away."""
        return codes.code_at(self.secret, codes.step_at(at or utcnow()) + steps)


async def enrol_confirmed(
    session: AsyncSession, user: User, settings: Settings | None = None
) -> Factor:
    """A confirmed authenticator and ten recovery codes for `user`, as enrolment leaves
    them, sealed with the keys of `settings` (the test settings by default)."""
    keys = mfa_keys(settings or _test_settings())
    secret = codes.new_secret()
    now = utcnow()
    session.add(
        TotpCredential(
            user_id=user.id,
            secret=keys.seal_secret(secret, user.id),
            confirmed_at=now,
            created_at=now,
        )
    )
    shown = codes.new_recovery_codes()
    for code in shown:
        normalised = codes.recovery_code(code)
        assert normalised is not None
        session.add(
            RecoveryCode(user_id=user.id, code_hash=keys.recovery_hash(normalised), created_at=now)
        )
    await session.commit()
    return Factor(secret, shown)


@dataclass(frozen=True)
class Seeded:
    department: str
    doctor_username: str
    password: str
    diagnosis: str


async def seed(database_url: str) -> Seeded:
    """A department, a doctor with a known password, a patient and one record, committed
    (for a live server's database)."""
    from tests.conftest import make_settings

    engine = create_engine(make_settings(database_url))
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session, name="Cardiology ward")
            doctor = await create_doctor(session, department)
            patient = await create_patient(session)
            diagnosis = "Atrial fibrillation, rate controlled"
            await create_record(
                session, patient=patient, doctor=doctor, department=department, diagnosis=diagnosis
            )
            return Seeded(department.name, doctor.username, DEFAULT_PASSWORD, diagnosis)
    finally:
        await engine.dispose()


def _test_settings() -> Settings:
    from tests.conftest import TEST_SECRET_KEY

    return Settings(secret_key=TEST_SECRET_KEY, environment="test")
