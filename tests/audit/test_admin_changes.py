"""Administrative changes leave an audit event naming the admin and the changed object."""

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.config import Settings
from tests.factories import create_admin, create_department, create_doctor, tokens_for


async def events_of(db: AsyncSession, actor_id: int) -> list[tuple[str, str, int | None, str]]:
    rows = await db.execute(
        select(
            AuditEvent.action, AuditEvent.resource_type, AuditEvent.resource_id, AuditEvent.outcome
        )
        .where(AuditEvent.actor_id == actor_id)
        .order_by(AuditEvent.id)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_admin_changes_are_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await create_admin(db)
    headers = (await tokens_for(db, settings, admin)).headers
    department = await create_department(db)
    doctor = await create_doctor(db)

    created = await client.post("/api/department/", json={"name": "Oncology"}, headers=headers)
    assert created.status_code == 201
    new_id = created.json()["id"]
    patch_url = f"/api/department/{new_id}"
    assert (
        await client.patch(patch_url, json={"location": "C"}, headers=headers)
    ).status_code == 200
    assert (await client.delete(patch_url, headers=headers)).status_code == 204
    assigned = await client.patch(
        f"/api/doctors/{doctor.id}", json={"department_id": department.id}, headers=headers
    )
    assert assigned.status_code == 200
    deactivated = await client.patch(
        f"/api/users/{doctor.id}", json={"is_active": False}, headers=headers
    )
    assert deactivated.status_code == 200
    reactivated = await client.patch(
        f"/api/users/{doctor.id}", json={"is_active": True}, headers=headers
    )
    assert reactivated.status_code == 200

    assert await events_of(db, admin.id) == [
        ("department.create", "department", new_id, "allowed"),
        ("department.update", "department", new_id, "allowed"),
        ("department.delete", "department", new_id, "allowed"),
        ("doctor.update", "user", doctor.id, "allowed"),
        ("user.deactivate", "user", doctor.id, "allowed"),
        ("user.activate", "user", doctor.id, "allowed"),
    ]
