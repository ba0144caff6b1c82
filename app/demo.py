"""Demo data for development: a few departments, doctors, patients and records.

Never for production (the CLI refuses there): the passwords are printed and well known.
"""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.core.security import hash_password, verify_password
from app.departments.models import Department
from app.records.models import PatientRecord
from app.users.models import DoctorProfile, PatientProfile, Role, User

DEMO_PASSWORD = "demo-password-2024"

DEPARTMENTS = [
    ("Cardiology", "Heart and vessels", "Building A, floor 2", "Cardiology"),
    ("Neurology", "Brain and nerves", "Building B, floor 1", "Neurology"),
    ("Pediatrics", "Children's care", "Building C, floor 3", "Pediatrics"),
]
DOCTORS = [
    ("dr.house", "Gregory House", 0, "Cardiology"),
    ("dr.grey", "Meredith Grey", 1, "Neurology"),
    ("dr.quinn", "Michaela Quinn", 2, "Pediatrics"),
]
PATIENTS = [
    ("alice", "Alice Martin"),
    ("bob", "Bob Dupont"),
    ("carol", "Carol Nguyen"),
    ("dave", "Dave Okafor"),
]
# (patient index, doctor index, diagnosis)
RECORDS = [
    (0, 0, "Hypertension, stage 1"),
    (0, 1, "Migraine without aura"),
    (1, 0, "Atrial fibrillation"),
    (2, 2, "Otitis media"),
    (3, 1, "Peripheral neuropathy"),
]


def _accounts() -> list[tuple[str, str]]:
    """(role, username) of every demo account, in the order they are printed."""
    return [
        ("admin", "admin"),
        *[("doctor", username) for username, *_ in DOCTORS],
        *[("patient", username) for username, _ in PATIENTS],
    ]


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession], *, only_if_empty: bool = False
) -> list[tuple[str, str, str]] | None:
    """Add the demo data; returns the (role, username, password) to print, or None if skipped."""
    password_hash = await hash_password(DEMO_PASSWORD)
    async with sessionmaker() as session, session.begin():
        if only_if_empty and await session.scalar(select(func.count(User.id))):
            return None
        departments = [
            Department(name=name, description=description, location=location, specialization=spec)
            for name, description, location, spec in DEPARTMENTS
        ]
        session.add_all(departments)
        await session.flush()

        def user(username: str, full_name: str, role: Role) -> User:
            return User(
                username=username,
                email=f"{username}@hospital.example",
                full_name=full_name,
                password_hash=password_hash,
                role=role,
            )

        admin = user("admin", "Demo Administrator", Role.ADMIN)
        doctors = [user(username, name, Role.DOCTOR) for username, name, _, _ in DOCTORS]
        patients = [user(username, name, Role.PATIENT) for username, name in PATIENTS]
        session.add_all([admin, *doctors, *patients])
        await session.flush()
        session.add_all(
            DoctorProfile(
                user_id=doctor.id,
                department_id=departments[department].id,
                specialization=specialization,
                license_number=f"DEMO-{doctor.id:04d}",
            )
            for doctor, (_, _, department, specialization) in zip(doctors, DOCTORS, strict=True)
        )
        session.add_all(PatientProfile(user_id=patient.id) for patient in patients)

        now = utcnow()
        for patient_index, doctor_index, diagnosis in RECORDS:
            doctor, department = doctors[doctor_index], departments[DOCTORS[doctor_index][2]]
            content = {
                "patient_id": patients[patient_index].id,
                "department_id": department.id,
                "author_id": doctor.id,
                "diagnosis": diagnosis,
                "observations": "Seen in consultation.",
                "treatments": "To be decided at follow-up.",
                "notes": None,
                "created_at": now,
                "updated_at": now,
            }
            session.add(PatientRecord(version=1, **content))  # the database keeps version 1

    return [(role, username, DEMO_PASSWORD) for role, username in _accounts()]


async def present_accounts(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[tuple[str, str, str]]:
    """The demo accounts that can still log in with the demo password, to print at each start.

    The seed gave them one shared hash: a changed password has its own, so each distinct hash
    is checked once.
    """
    accounts = _accounts()
    async with sessionmaker() as session:
        rows = await session.execute(
            select(User.username, User.password_hash).where(
                User.username.in_([username for _, username in accounts]), User.is_active
            )
        )
        hashes = dict(rows.tuples().all())
    demo_hashes: set[str] = set()
    for password_hash in set(hashes.values()):
        if (await verify_password(DEMO_PASSWORD, password_hash))[0]:
            demo_hashes.add(password_hash)
    return [
        (role, username, DEMO_PASSWORD)
        for role, username in accounts
        if hashes.get(username) in demo_hashes
    ]
