"""Reads under an emergency grant: any department's records of that patient, read-only,
until the grant expires, each read audited with the grant's id."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord
from tests.factories import create_record
from tests.records.world import World, build_world, events

RECORDS = "/api/patient_records/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def grant(
    db: AsyncSession, world: World, doctor: str = "doctor_other", minutes: int = 60
) -> EmergencyGrant:
    row = EmergencyGrant(
        doctor_id=world.users[doctor].id,
        patient_id=world.users["patient_owner"].id,
        reason="Unconscious on arrival",
        expires_at=utcnow() + timedelta(minutes=minutes),
    )
    db.add(row)
    await db.commit()
    return row


async def test_grant_opens_reads_of_the_patients_records(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    granted = await grant(db, world)
    headers = await world.headers(db, settings, "doctor_other")
    one = await client.get(f"{RECORDS}{world.record.id}", headers=headers)
    history = await client.get(f"{RECORDS}{world.record.id}/history", headers=headers)
    assert one.status_code == 200
    assert history.status_code == 200
    assert [e.emergency_grant_id for e in await events(db, "record.read")] == [granted.id]
    assert [e.emergency_grant_id for e in await events(db, "record.history")] == [granted.id]


async def test_grant_widens_the_list_only_for_that_patient(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    granted = await grant(db, world)
    own = await create_record(
        db,
        patient=world.users["patient_other"],
        doctor=world.users["doctor_other"],
        department=world.other_department,
    )
    headers = await world.headers(db, settings, "doctor_other")
    patient_id = world.users["patient_owner"].id
    narrowed = await client.get(RECORDS, params={"patient_id": patient_id}, headers=headers)
    assert [r["id"] for r in narrowed.json()] == [world.record.id]
    [event] = await events(db, "record.list")
    assert (event.patient_id, event.patient_ids, event.emergency_grant_id) == (
        patient_id,
        None,
        granted.id,
    )

    # Without ?patient_id= the list stays his department's.
    department = await client.get(RECORDS, headers=headers)
    assert [r["id"] for r in department.json()] == [own.id]


async def test_grant_never_allows_writing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await grant(db, world)
    headers = {**await world.headers(db, settings, "doctor_other"), "If-Match": '"1"'}
    response = await client.patch(
        f"{RECORDS}{world.record.id}", json={"diagnosis": "Changed"}, headers=headers
    )
    assert response.status_code == 404
    version = await db.scalar(
        select(PatientRecord.version).where(PatientRecord.id == world.record.id)
    )
    assert version == 1


async def test_own_department_reads_name_no_grant(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await grant(db, world, doctor="doctor_own")
    headers = await world.headers(db, settings, "doctor_own")
    assert (await client.get(f"{RECORDS}{world.record.id}", headers=headers)).status_code == 200
    [event] = await events(db, "record.read")
    assert event.emergency_grant_id is None


@pytest.mark.parametrize("who", ["doctor_none", "doctor_own"])
async def test_a_grant_is_personal(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, who: str
) -> None:
    await grant(db, world, doctor="doctor_other")
    other = await create_record(
        db,
        patient=world.users["patient_owner"],
        doctor=world.users["doctor_other"],
        department=world.other_department,
    )
    headers = await world.headers(db, settings, who)
    assert (await client.get(f"{RECORDS}{other.id}", headers=headers)).status_code == 404


async def test_grant_expires(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    frozen_clock: Any,
) -> None:
    await grant(db, world, minutes=60)
    headers = await world.headers(db, settings, "doctor_other")
    url = f"{RECORDS}{world.record.id}"
    assert (await client.get(url, headers=headers)).status_code == 200
    frozen_clock.advance(minutes=59)
    headers = await world.headers(db, settings, "doctor_other")  # the first one has expired
    assert (await client.get(url, headers=headers)).status_code == 200
    frozen_clock.advance(minutes=2)
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.get(f"{url}/history", headers=headers)).status_code == 404
    listed = await client.get(
        RECORDS, params={"patient_id": world.users["patient_owner"].id}, headers=headers
    )
    assert listed.json() == []


async def test_doctor_without_department_reads_under_a_grant(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    granted = await grant(db, world, doctor="doctor_none")
    headers = await world.headers(db, settings, "doctor_none")
    assert (await client.get(f"{RECORDS}{world.record.id}", headers=headers)).status_code == 200
    listed = await client.get(
        RECORDS, params={"patient_id": world.users["patient_owner"].id}, headers=headers
    )
    assert [r["id"] for r in listed.json()] == [world.record.id]
    assert (await client.get(RECORDS, headers=headers)).json() == []
    [event] = await events(db, "record.read")
    assert event.emergency_grant_id == granted.id
