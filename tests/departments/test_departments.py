"""Departments: the admin's create, update and delete; doctors and patients of one."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.departments.models import Department
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import Live
from tests.records.world import World, build_world, count, events, next_page

DEPARTMENTS = "/api/department/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def test_everyone_lists_and_reads_departments(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    for caller in ("admin", "doctor_none", "patient_other"):
        headers = await world.headers(db, settings, caller)
        listed = await client.get(DEPARTMENTS, headers=headers)
        assert [d["id"] for d in listed.json()] == [
            world.department.id,
            world.other_department.id,
            world.empty_department.id,
        ]
        one = await client.get(f"{DEPARTMENTS}{world.department.id}", headers=headers)
        assert one.json() == {
            "id": world.department.id,
            "name": world.department.name,
            "description": "A department",
            "location": "Building A",
            "specialization": "General",
        }
        assert (await client.get(f"{DEPARTMENTS}{10**9}", headers=headers)).status_code == 404


async def test_department_pages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    for _ in range(2):
        await create_department(db)
    headers = await world.headers(db, settings, "patient_owner")
    ids: list[int] = []
    url: str | None = f"{DEPARTMENTS}?limit=2"
    while url:
        response = await client.get(url, headers=headers)
        ids += [d["id"] for d in response.json()]
        url = next_page(response.headers.get("Link"))
    assert len(ids) == 5
    assert ids == sorted(set(ids))
    bad = await client.get(f"{DEPARTMENTS}?cursor=not-a-cursor", headers=headers)
    assert bad.status_code == 422


async def test_create_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    body = {"name": " Neurology ", "description": "Brain", "location": "B2", "specialization": "N"}
    response = await client.post(DEPARTMENTS, json=body, headers=headers)
    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], **body}
    minimal = await client.post(DEPARTMENTS, json={"name": "Triage"}, headers=headers)
    assert minimal.status_code == 201
    assert minimal.json()["description"] is None


@pytest.mark.parametrize("name", ["CARDIOLOGY", "cardiology", "Cardiology"])
async def test_duplicate_name_is_409_case_insensitively(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, name: str
) -> None:
    await create_department(db, name="Cardiology")
    headers = await world.headers(db, settings, "admin")
    before = await count(db, Department)
    response = await client.post(DEPARTMENTS, json={"name": name}, headers=headers)
    assert response.status_code == 409
    assert await count(db, Department) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00"}, "name"),
        ({"name": "ok", "description": "x" * 2001}, "description"),
        ({"name": "ok", "location": "x" * 201}, "location"),
        ({"name": "ok", "specialization": "x" * 201}, "specialization"),
        ({"name": "ok", "id": 5}, "id"),
    ],
)
async def test_invalid_department_is_422(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    body: dict[str, Any],
    field: str,
) -> None:
    headers = await world.headers(db, settings, "admin")
    response = await client.post(DEPARTMENTS, json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_update_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    url = f"{DEPARTMENTS}{world.department.id}"
    response = await client.patch(url, json={"location": "Wing D"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["location"] == "Wing D"
    assert response.json()["name"] == world.department.name
    cleared = await client.patch(url, json={"description": None}, headers=headers)
    assert cleared.json()["description"] is None
    # Its own name in another case is not a conflict; another department's name is.
    recased = await client.patch(url, json={"name": world.department.name.upper()}, headers=headers)
    assert recased.status_code == 200
    taken = await client.patch(url, json={"name": world.other_department.name}, headers=headers)
    assert taken.status_code == 409
    assert (await client.patch(url, json={"name": None}, headers=headers)).status_code == 422
    missing = await client.patch(f"{DEPARTMENTS}{10**9}", json={"name": "x"}, headers=headers)
    assert missing.status_code == 404


async def test_delete_empty_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    url = f"{DEPARTMENTS}{world.empty_department.id}"
    response = await client.delete(url, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.delete(url, headers=headers)).status_code == 404


async def test_delete_is_409_while_doctors_or_records_belong(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    with_doctor = await create_department(db)
    await create_doctor(db, with_doctor)
    with_record = await create_department(db)
    author = await create_doctor(db, world.department)
    await create_record(
        db, patient=world.users["patient_owner"], doctor=author, department=with_record
    )
    for department in (world.department, with_doctor, with_record):
        response = await client.delete(f"{DEPARTMENTS}{department.id}", headers=headers)
        assert response.status_code == 409
        assert await count(db, Department, Department.id == department.id) == 1


async def test_department_doctors(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    second = await create_doctor(db, world.department)
    for caller in ("admin", "doctor_other"):
        headers = await world.headers(db, settings, caller)
        response = await client.get(f"{DEPARTMENTS}{world.department.id}/doctors", headers=headers)
        assert response.status_code == 200
        assert [d["id"] for d in response.json()] == [world.users["doctor_own"].id, second.id]
        empty = await client.get(
            f"{DEPARTMENTS}{world.empty_department.id}/doctors", headers=headers
        )
        assert empty.json() == []
        missing = await client.get(f"{DEPARTMENTS}{10**9}/doctors", headers=headers)
        assert missing.status_code == 404


async def test_department_patients_are_derived_from_records(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = world.users["doctor_own"]
    owner, other = world.users["patient_owner"], world.users["patient_other"]
    await create_record(db, patient=owner, doctor=doctor, department=world.department)
    await create_record(
        db, patient=other, doctor=world.users["doctor_other"], department=world.other_department
    )
    recordless = await create_patient(db)
    headers = await world.headers(db, settings, "doctor_own")
    response = await client.get(f"{DEPARTMENTS}{world.department.id}/patients", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    # Two records, one patient; the other department's patient and the recordless one absent.
    assert [p["id"] for p in response.json()] == [owner.id]
    assert recordless.id not in [p["id"] for p in response.json()]
    [event] = await events(db, "department.patients")
    assert (event.patient_id, event.resource_id, event.outcome) == (
        owner.id,
        world.department.id,
        "allowed",
    )
    # A new record in the department makes its patient appear: no stored membership.
    await create_record(db, patient=other, doctor=doctor, department=world.department)
    again = await client.get(f"{DEPARTMENTS}{world.department.id}/patients", headers=headers)
    assert [p["id"] for p in again.json()] == [owner.id, other.id]


async def test_department_patients_page(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = world.users["doctor_own"]
    for _ in range(4):
        patient = await create_patient(db)
        for _ in range(2):
            await create_record(db, patient=patient, doctor=doctor, department=world.department)
    headers = await world.headers(db, settings, "doctor_own")
    ids: list[int] = []
    url: str | None = f"{DEPARTMENTS}{world.department.id}/patients?limit=2"
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        ids += [p["id"] for p in response.json()]
        url = next_page(response.headers.get("Link"))
    assert len(ids) == 5
    assert ids == sorted(set(ids))
    # One event per page, naming its patients: two on each full page, one on the last.
    pages = await events(db, "department.patients")
    assert [(e.patient_id, e.patient_ids) for e in pages] == [
        (None, f"[{ids[0]},{ids[1]}]"),
        (None, f"[{ids[2]},{ids[3]}]"),
        (ids[4], None),
    ]
    assert {(e.resource_type, e.resource_id, e.outcome, e.actor_id) for e in pages} == {
        ("department", world.department.id, "allowed", world.users["doctor_own"].id)
    }


@pytest.mark.parametrize("caller", ["doctor_own", "doctor_other", "doctor_none"])
async def test_every_doctor_lists_any_departments_patients_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    owner = world.users["patient_owner"]
    headers = await world.headers(db, settings, caller)
    response = await client.get(f"{DEPARTMENTS}{world.department.id}/patients", headers=headers)
    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()] == [owner.id]
    assert response.headers["Cache-Control"] == "no-store"
    [event] = await events(db, "department.patients")
    assert (event.actor_id, event.resource_id, event.outcome, event.patient_id) == (
        world.users[caller].id,
        world.department.id,
        "allowed",
        owner.id,
    )
    # The patient sees the read in his access log.
    log = await client.get(
        f"/api/patients/{owner.id}/access-log",
        headers=await world.headers(db, settings, "patient_owner"),
    )
    assert log.json()[0]["action"] == "department.patients"  # newest first


@pytest.mark.parametrize("caller", ["doctor_own", "doctor_none"])
async def test_unknown_departments_patients_are_404_and_recorded(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await world.headers(db, settings, caller)
    missing = await client.get(f"{DEPARTMENTS}{10**9}/patients", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Department not found"}
    [event] = await events(db, "department.patients")
    assert (event.resource_id, event.outcome, event.patient_id) == (10**9, "denied", None)


async def test_an_empty_departments_patients_are_an_empty_list(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_other")
    url = f"{DEPARTMENTS}{world.empty_department.id}/patients"
    response = await client.get(url, headers=headers)
    assert (response.status_code, response.json()) == (200, [])
    assert await events(db, "department.patients") == []  # an empty page shows no one


@pytest.mark.parametrize("caller", ["admin", "patient_owner"])
async def test_department_patients_are_for_doctors_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await world.headers(db, settings, caller)
    for department_id in (world.department.id, 10**9):
        url = f"{DEPARTMENTS}{department_id}/patients"
        assert (await client.get(url, headers=headers)).status_code == 403
    assert await events(db, "department.patients") == []


async def test_concurrent_creates_of_one_name_have_one_winner(live: Live) -> None:
    async with live.sessionmaker() as session:
        admin = await create_admin(session)
        headers = (await tokens_for(session, live.settings, admin)).headers
    names = ["Radiology" if index % 2 else "RADIOLOGY" for index in range(10)]
    responses = await asyncio.gather(
        *(live.client.post(DEPARTMENTS, json={"name": n}, headers=headers) for n in names)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9, statuses
    async with live.sessionmaker() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Department).where(Department.name_key == "radiology")
        )
    assert stored == 1
