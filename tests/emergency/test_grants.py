"""Emergency access: doctors open audited, expiring, read-only grants; admins review them."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.config import Settings
from app.emergency.models import EmergencyGrant
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)

REASON = "Unconscious patient in the ER, allergies unknown"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def open_grant(
    client: httpx.AsyncClient, headers: dict[str, str], patient_id: int, reason: str = REASON
) -> httpx.Response:
    return await client.post(
        f"/api/patients/{patient_id}/emergency-access", json={"reason": reason}, headers=headers
    )


async def test_doctor_opens_a_grant_for_the_configured_lifetime(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db, await create_department(db))
    patient = await create_patient(db)
    tokens = await tokens_for(db, settings, doctor)
    response = await open_grant(client, tokens.headers, patient.id)
    assert response.status_code == 201, response.text
    grant = response.json()
    assert set(grant) == {"id", "patient_id", "doctor_id", "reason", "created_at", "expires_at"}
    assert (grant["patient_id"], grant["doctor_id"], grant["reason"]) == (
        patient.id,
        doctor.id,
        REASON,
    )
    lifetime = at(grant["expires_at"]) - at(grant["created_at"])
    assert lifetime == timedelta(minutes=settings.emergency_access_minutes) == timedelta(hours=1)
    assert response.headers["Cache-Control"] == "no-store"

    event = (
        await db.scalars(select(AuditEvent).where(AuditEvent.action == "emergency.grant"))
    ).one()
    assert (event.actor_id, event.resource_type, event.resource_id) == (
        doctor.id,
        "emergency_grant",
        grant["id"],
    )
    assert (event.patient_id, event.emergency_grant_id, event.outcome) == (
        patient.id,
        grant["id"],
        "allowed",
    )
    assert REASON not in repr(event.__dict__)  # the free text stays in the grant, not the trail


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("x" * 9, 422),
        ("x" * 10, 201),
        ("é" * 10, 201),  # characters, not bytes
        ("x" * 500, 201),
        ("x" * 501, 422),
        ("needs\x00records", 422),
        ("  ER: coma, allergies?  ", 201),  # stored as sent, no trimming
    ],
)
async def test_reason_is_10_to_500_characters(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, reason: str, status: int
) -> None:
    tokens = await tokens_for(db, settings, await create_doctor(db))
    patient = await create_patient(db)
    response = await open_grant(client, tokens.headers, patient.id, reason)
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["reason"] == reason


@pytest.mark.parametrize(
    "reason",
    [
        " " * 10,
        " " * 500,
        "\t\n" * 20,
        "\u3000" * 12,  # ideographic spaces
        "\u200b" * 12,  # zero-width spaces: nothing to read either
        "a b c d e f g h i",  # nine characters between the spaces
    ],
)
async def test_reason_needs_10_characters_other_than_spaces(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, reason: str
) -> None:
    tokens = await tokens_for(db, settings, await create_doctor(db))
    patient = await create_patient(db)
    response = await open_grant(client, tokens.headers, patient.id, reason)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "reason"]
    assert "10 characters other than spaces" in error["msg"]
    assert "input" not in error
    assert reason not in response.text
    assert await db.scalar(select(func.count()).select_from(EmergencyGrant)) == 0


@pytest.mark.parametrize(
    "body", [{}, {"reason": None}, {"reason": 1234567890}, {"reason": REASON, "hours": 5}]
)
async def test_malformed_bodies_are_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, body: Any
) -> None:
    tokens = await tokens_for(db, settings, await create_doctor(db))
    patient = await create_patient(db)
    response = await client.post(
        f"/api/patients/{patient.id}/emergency-access", json=body, headers=tokens.headers
    )
    assert response.status_code == 422


async def test_only_doctors_open_grants(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    patient = await create_patient(db)
    for user in (await create_admin(db), patient, await create_patient(db)):
        tokens = await tokens_for(db, settings, user)
        assert (await open_grant(client, tokens.headers, patient.id)).status_code == 403
    assert (await open_grant(client, {}, patient.id)).status_code == 401
    assert (await db.scalars(select(AuditEvent.action))).all().count("access.forbidden") == 3


async def test_an_id_that_is_no_patient_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    tokens = await tokens_for(db, settings, doctor)
    other_doctor = await create_doctor(db)
    for patient_id in (other_doctor.id, doctor.id, 10**12):
        response = await open_grant(client, tokens.headers, patient_id)
        assert response.status_code == 404
    refused = (
        await db.scalars(select(AuditEvent).where(AuditEvent.action == "emergency.grant"))
    ).all()
    assert [(e.outcome, e.resource_type, e.patient_id) for e in refused] == [
        ("denied", "patient", None)
    ] * 3
    assert (await open_grant(client, tokens.headers, 2**63)).status_code == 422
    assert (await open_grant(client, tokens.headers, 0)).status_code == 422


async def test_a_doctor_who_already_sees_the_patient_may_open_one(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    await create_record(db, patient=patient, doctor=doctor, department=department)
    tokens = await tokens_for(db, settings, doctor)
    assert (await open_grant(client, tokens.headers, patient.id)).status_code == 201


async def test_grant_lifecycle_read_only_then_expired(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    cardiology, oncology = await create_department(db), await create_department(db)
    author = await create_doctor(db, oncology)
    doctor = await create_doctor(db, cardiology)
    patient = await create_patient(db)
    record = await create_record(db, patient=patient, doctor=author, department=oncology)
    tokens = await tokens_for(db, settings, doctor)
    url = f"/api/patient_records/{record.id}"
    assert (await client.get(url, headers=tokens.headers)).status_code == 404

    grant = (await open_grant(client, tokens.headers, patient.id)).json()
    read = await client.get(url, headers=tokens.headers)
    assert read.status_code == 200
    assert read.json()["id"] == record.id
    write = await client.patch(url, json={"notes": "changed"}, headers=tokens.headers)
    assert write.status_code == 404  # never a right to write
    under_grant = (
        await db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "record.read", AuditEvent.actor_id == doctor.id
            )
        )
    ).all()
    assert [(e.outcome, e.emergency_grant_id) for e in under_grant] == [
        ("denied", None),
        ("allowed", grant["id"]),
    ]

    frozen_clock.advance(minutes=59)
    tokens = await tokens_for(db, settings, doctor)  # the first access token has expired
    assert (await client.get(url, headers=tokens.headers)).status_code == 200
    frozen_clock.advance(minutes=1, seconds=1)
    assert (await client.get(url, headers=tokens.headers)).status_code == 404


async def test_admin_reviews_every_grant_newest_first(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    admin_user, doctor_user = await create_admin(db), await create_doctor(db)
    patients = [await create_patient(db) for _ in range(3)]
    opened = []
    for patient in patients:
        doctor = await tokens_for(db, settings, doctor_user)  # access tokens last 30 minutes
        opened.append((await open_grant(client, doctor.headers, patient.id)).json()["id"])
        frozen_clock.advance(minutes=20)
    # Now: the first grant just expired (60 minutes old), the others are still active.
    admin = await tokens_for(db, settings, admin_user)
    response = await client.get("/api/audit/emergency-access", headers=admin.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    grants = response.json()
    assert [g["id"] for g in grants] == opened[::-1]
    assert [g["active"] for g in grants] == [True, True, False]
    assert grants[0]["reason"] == REASON
    assert grants[0]["patient_id"] == patients[-1].id

    frozen_clock.advance(minutes=41)
    admin = await tokens_for(db, settings, admin_user)
    later = await client.get("/api/audit/emergency-access/", headers=admin.headers)
    assert [g["active"] for g in later.json()] == [False, False, False]


async def test_review_pages_by_descending_id(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    doctor = await tokens_for(db, settings, await create_doctor(db))
    patient = await create_patient(db)
    opened = [(await open_grant(client, doctor.headers, patient.id)).json()["id"] for _ in range(5)]
    seen: list[int] = []
    url = "/api/audit/emergency-access?limit=2"
    while url:
        response = await client.get(url, headers=admin.headers)
        assert response.status_code == 200
        seen.extend(g["id"] for g in response.json())
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == opened[::-1]
    bad = await client.get("/api/audit/emergency-access?cursor=zzz", headers=admin.headers)
    assert bad.status_code == 422


@pytest.mark.parametrize("role", ["doctor", "patient"])
async def test_review_is_for_admins_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, role: str
) -> None:
    from tests.factories import create_user

    tokens = await tokens_for(db, settings, await create_user(db, role))
    response = await client.get("/api/audit/emergency-access", headers=tokens.headers)
    assert response.status_code == 403
    assert (await client.get("/api/audit/emergency-access")).status_code == 401
