"""Patient records: writing into one's department, scoped reads, versions, ETag and If-Match."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.records.models import PatientRecord, PatientRecordVersion
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.records.world import World, build_world, count, events, next_page

RECORDS = "/api/patient_records/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def as_(world: World, db: AsyncSession, settings: Settings, caller: str) -> dict[str, str]:
    return await world.headers(db, settings, caller)


async def test_doctor_writes_into_his_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = world.users["doctor_other"]
    body = {
        "patient_id": world.users["patient_owner"].id,
        "diagnosis": "Fractured wrist",
        "observations": "Swelling",
        "treatments": "Cast",
        "notes": "  kept exactly as sent  ",
    }
    response = await client.post(
        RECORDS, json=body, headers=await as_(world, db, settings, "doctor_other")
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["department_id"] == world.other_department.id
    assert created["author_id"] == doctor.id
    assert created["version"] == 1
    assert created["notes"] == "  kept exactly as sent  "
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Location"] == f"/api/patient_records/{created['id']}"
    versions = await count(
        db, PatientRecordVersion, PatientRecordVersion.record_id == created["id"]
    )
    assert versions == 1
    [event] = await events(db, "record.create")
    assert (event.actor_id, event.resource_id, event.patient_id) == (
        doctor.id,
        created["id"],
        world.users["patient_owner"].id,
    )


@pytest.mark.parametrize("field", ["department_id", "author_id", "version", "id"])
async def test_body_naming_server_fields_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, field: str
) -> None:
    body = {"patient_id": world.users["patient_owner"].id, "diagnosis": "x", field: 1}
    response = await client.post(
        RECORDS, json=body, headers=await as_(world, db, settings, "doctor_own")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_doctor_without_department_gets_409(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    body = {"patient_id": world.users["patient_owner"].id, "diagnosis": "x"}
    response = await client.post(
        RECORDS, json=body, headers=await as_(world, db, settings, "doctor_none")
    )
    assert response.status_code == 409


@pytest.mark.parametrize("who", ["nobody", "doctor_other", "admin"])
async def test_unknown_patient_is_422_naming_patient_id(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, who: str
) -> None:
    patient_id = 10**12 if who == "nobody" else world.users[who].id
    response = await client.post(
        RECORDS,
        json={"patient_id": patient_id, "diagnosis": "x"},
        headers=await as_(world, db, settings, "doctor_own"),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "patient_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("diagnosis", ""),
        ("diagnosis", "x" * 2001),
        ("diagnosis", None),
        ("diagnosis", "bad\x00byte"),
        ("observations", "x" * 20001),
        ("treatments", "x" * 20001),
        ("notes", "x" * 20001),
        ("notes", "nul\x00"),
        ("patient_id", 2**63),
        ("patient_id", 0),
    ],
)
async def test_invalid_fields_are_422(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    field: str,
    value: Any,
) -> None:
    body = {"patient_id": world.users["patient_owner"].id, "diagnosis": "ok", field: value}
    response = await client.post(
        RECORDS, json=body, headers=await as_(world, db, settings, "doctor_own")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_longest_valid_texts_are_accepted(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    body = {
        "patient_id": world.users["patient_owner"].id,
        "diagnosis": "d" * 2000,
        "observations": "o" * 20000,
        "treatments": "t" * 20000,
        "notes": "n" * 20000,
    }
    response = await client.post(
        RECORDS, json=body, headers=await as_(world, db, settings, "doctor_own")
    )
    assert response.status_code == 201
    assert len(response.json()["observations"]) == 20000


async def test_doctor_lists_only_his_departments_records(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    owner = world.users["patient_owner"]
    elsewhere = await create_record(
        db, patient=owner, doctor=world.users["doctor_other"], department=world.other_department
    )
    own = await client.get(RECORDS, headers=await as_(world, db, settings, "doctor_own"))
    other = await client.get(RECORDS, headers=await as_(world, db, settings, "doctor_other"))
    none = await client.get(RECORDS, headers=await as_(world, db, settings, "doctor_none"))
    assert [r["id"] for r in own.json()] == [world.record.id]
    assert [r["id"] for r in other.json()] == [elsewhere.id]
    assert none.status_code == 200
    assert none.json() == []
    assert own.headers["Cache-Control"] == "no-store"


async def test_patient_id_narrows_and_never_widens(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    owner, other = world.users["patient_owner"], world.users["patient_other"]
    doctor = world.users["doctor_own"]
    mine_too = await create_record(db, patient=other, doctor=doctor, department=world.department)
    await create_record(
        db, patient=other, doctor=world.users["doctor_other"], department=world.other_department
    )
    doctor_headers = await as_(world, db, settings, "doctor_own")

    narrowed = await client.get(RECORDS, params={"patient_id": other.id}, headers=doctor_headers)
    assert [r["id"] for r in narrowed.json()] == [mine_too.id]

    owner_headers = await as_(world, db, settings, "patient_owner")
    own = await client.get(RECORDS, headers=owner_headers)
    assert [r["id"] for r in own.json()] == [world.record.id]
    widened = await client.get(RECORDS, params={"patient_id": other.id}, headers=owner_headers)
    assert widened.status_code == 200
    assert widened.json() == []
    assert (
        await client.get(RECORDS, params={"patient_id": owner.id}, headers=owner_headers)
    ).json()[0]["id"] == world.record.id


async def test_list_pages_follow_the_link_header(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor, patient = world.users["doctor_own"], world.users["patient_owner"]
    for _ in range(4):
        await create_record(db, patient=patient, doctor=doctor, department=world.department)
    headers = await as_(world, db, settings, "doctor_own")
    seen: list[int] = []
    url: str | None = f"{RECORDS}?limit=2"
    pages = 0
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        seen += [r["id"] for r in response.json()]
        pages += 1
        url = next_page(response.headers.get("Link"))
    assert pages == 3
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "cursor=***", "cursor=bm9wZQ", "patient_id=0"]
)
async def test_bad_paging_or_filter_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, query: str
) -> None:
    headers = await as_(world, db, settings, "doctor_own")
    response = await client.get(f"{RECORDS}?{query}", headers=headers)
    assert response.status_code == 422


async def test_read_one_is_audited_with_patient_and_etag(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    response = await client.get(
        f"{RECORDS}{world.record.id}", headers=await as_(world, db, settings, "patient_owner")
    )
    assert response.status_code == 200
    assert response.json()["diagnosis"] == "Hypertension"
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Cache-Control"] == "no-store"
    [event] = await events(db, "record.read")
    assert event.outcome == "allowed"
    assert event.patient_id == world.users["patient_owner"].id
    assert event.resource_id == world.record.id
    assert event.emergency_grant_id is None


@pytest.mark.parametrize("caller", ["doctor_other", "doctor_none", "patient_other"])
async def test_hidden_record_is_404_like_a_missing_one_and_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await as_(world, db, settings, caller)
    hidden = await client.get(f"{RECORDS}{world.record.id}", headers=headers)
    missing = await client.get(f"{RECORDS}{10**9}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    denied = await events(db, "record.read")
    assert [e.outcome for e in denied] == ["denied", "denied"]
    assert [e.resource_id for e in denied] == [world.record.id, 10**9]


@pytest.mark.parametrize("record_id", ["0", "-1", str(2**63), "abc"])
async def test_out_of_range_id_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, record_id: str
) -> None:
    headers = await as_(world, db, settings, "doctor_own")
    assert (await client.get(f"{RECORDS}{record_id}", headers=headers)).status_code == 422


async def test_largest_id_is_a_plain_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await as_(world, db, settings, "doctor_own")
    assert (await client.get(f"{RECORDS}{2**63 - 1}", headers=headers)).status_code == 404


async def test_there_is_no_delete(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await as_(world, db, settings, "doctor_own")
    response = await client.delete(f"{RECORDS}{world.record.id}", headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, PATCH"
    assert await count(db, PatientRecord, PatientRecord.id == world.record.id) == 1


async def test_records_of_a_patient_across_departments_stay_apart(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """Two departments writing for the same patient: each doctor sees only his own."""
    cardiology, oncology = await create_department(db), await create_department(db)
    cardiologist = await create_doctor(db, cardiology)
    oncologist = await create_doctor(db, oncology)
    patient = await create_patient(db)
    heart = await create_record(db, patient=patient, doctor=cardiologist, department=cardiology)
    await create_record(db, patient=patient, doctor=oncologist, department=oncology)
    headers = (await tokens_for(db, settings, cardiologist)).headers
    listed = await client.get(RECORDS, params={"patient_id": patient.id}, headers=headers)
    assert [r["id"] for r in listed.json()] == [heart.id]
    stored = (await db.execute(select(PatientRecord.id))).scalars().all()
    assert len(stored) == 2
