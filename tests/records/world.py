"""A small hospital for access-control tests: two staffed departments, an empty one, and a
record of one patient in department A. Every caller of the authorization matrix is here."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.config import Settings
from app.departments.models import Department
from app.records.models import PatientRecord
from app.users.models import User
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)

CALLERS = (
    "admin",
    "doctor_own",  # doctor of the object's department (A)
    "doctor_other",  # doctor of another department (B)
    "doctor_none",  # doctor with no department
    "patient_owner",  # the patient the object is about
    "patient_other",  # another patient
    "anonymous",
)


@dataclass
class World:
    department: Department  # A: the object's department
    other_department: Department  # B
    empty_department: Department
    users: dict[str, User]
    record: PatientRecord

    async def headers(self, db: AsyncSession, settings: Settings, caller: str) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        return (await tokens_for(db, settings, self.users[caller])).headers


async def build_world(db: AsyncSession) -> World:
    department = await create_department(db)
    other_department = await create_department(db)
    empty_department = await create_department(db)
    users = {
        "admin": await create_admin(db),
        "doctor_own": await create_doctor(db, department),
        "doctor_other": await create_doctor(db, other_department),
        "doctor_none": await create_doctor(db, None),
        "patient_owner": await create_patient(db),
        "patient_other": await create_patient(db),
    }
    record = await create_record(
        db, patient=users["patient_owner"], doctor=users["doctor_own"], department=department
    )
    return World(department, other_department, empty_department, users, record)


async def count(db: AsyncSession, model: Any, *conditions: Any) -> int:
    return int(await db.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


async def events(db: AsyncSession, action: str) -> list[AuditEvent]:
    """The audit events of one action, oldest first (read fresh from the database)."""
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list((await db.scalars(query.execution_options(populate_existing=True))).all())


def next_page(link: str | None) -> str | None:
    """The URL of `Link: <url>; rel="next"`, or None on the last page."""
    if link is None:
        return None
    target, relation = link.split(";", 1)
    assert relation.strip() == 'rel="next"'
    return target.strip().removeprefix("<").removesuffix(">")
