"""Doctors: listing (with the department filter), reading, and the admin's assignments."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.users.models import DoctorProfile
from tests.factories import create_doctor
from tests.records.world import World, build_world, next_page

DOCTORS = "/api/doctors/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def profile(db: AsyncSession, doctor_id: int) -> Any:
    query = select(
        DoctorProfile.department_id, DoctorProfile.specialization, DoctorProfile.license_number
    ).where(DoctorProfile.user_id == doctor_id)
    return (await db.execute(query)).one()


async def test_list_doctors_in_id_order_with_their_fields(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    response = await client.get(DOCTORS, headers=await world.headers(db, settings, "doctor_own"))
    assert response.status_code == 200
    doctors = response.json()
    ids = [d["id"] for d in doctors]
    assert ids == sorted(ids)
    expected = [world.users[name].id for name in ("doctor_own", "doctor_other", "doctor_none")]
    assert ids == expected
    own = doctors[0]
    assert set(own) == {
        "id",
        "username",
        "email",
        "full_name",
        "department_id",
        "specialization",
        "license_number",
    }
    assert own["department_id"] == world.department.id
    assert doctors[2]["department_id"] is None


async def test_filter_by_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    second = await create_doctor(db, world.department)
    response = await client.get(
        DOCTORS, params={"department_id": world.department.id}, headers=headers
    )
    assert [d["id"] for d in response.json()] == [world.users["doctor_own"].id, second.id]
    empty = await client.get(
        DOCTORS, params={"department_id": world.empty_department.id}, headers=headers
    )
    assert empty.status_code == 200
    assert empty.json() == []


async def test_pages_with_cursor_round_trip(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    for _ in range(3):
        await create_doctor(db, world.department)
    headers = await world.headers(db, settings, "admin")
    seen: list[int] = []
    url: str | None = f"{DOCTORS}?limit=2"
    pages = 0
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        assert len(response.json()) <= 2
        seen += [d["id"] for d in response.json()]
        url = next_page(response.headers.get("Link"))
        pages += 1
    assert pages == 3
    assert len(seen) == 6
    assert seen == sorted(set(seen))
    full = await client.get(DOCTORS, headers=headers)
    assert "Link" not in full.headers
    assert [d["id"] for d in full.json()] == seen


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "cursor=%00",
        "cursor=zzzz",
        "department_id=0",
        f"department_id={2**63}",
    ],
)
async def test_bad_query_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, query: str
) -> None:
    response = await client.get(
        f"{DOCTORS}?{query}", headers=await world.headers(db, settings, "admin")
    )
    assert response.status_code == 422


async def test_get_doctor(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_other")
    doctor = world.users["doctor_own"]
    response = await client.get(f"{DOCTORS}{doctor.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["username"] == doctor.username
    for not_a_doctor in (world.users["patient_owner"].id, world.users["admin"].id, 10**9):
        assert (await client.get(f"{DOCTORS}{not_a_doctor}", headers=headers)).status_code == 404
    assert (await client.get(f"{DOCTORS}{2**63}", headers=headers)).status_code == 422


async def test_admin_assigns_department_specialization_and_license(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    doctor = world.users["doctor_none"]
    response = await client.patch(
        f"{DOCTORS}{doctor.id}",
        json={"department_id": world.other_department.id, "specialization": "Oncology"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["department_id"] == world.other_department.id
    assert response.json()["specialization"] == "Oncology"
    before_license = response.json()["license_number"]
    assert await profile(db, doctor.id) == (
        world.other_department.id,
        "Oncology",
        before_license,
    )
    # null takes him out of the department again; absent fields stay.
    cleared = await client.patch(
        f"{DOCTORS}{doctor.id}", json={"department_id": None}, headers=headers
    )
    assert cleared.json()["department_id"] is None
    assert cleared.json()["specialization"] == "Oncology"


async def test_new_department_takes_effect_on_the_doctors_next_request(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor_headers = await world.headers(db, settings, "doctor_none")
    admin = await world.headers(db, settings, "admin")
    assert (await client.get("/api/patient_records/", headers=doctor_headers)).json() == []
    await client.patch(
        f"{DOCTORS}{world.users['doctor_none'].id}",
        json={"department_id": world.department.id},
        headers=admin,
    )
    listed = await client.get("/api/patient_records/", headers=doctor_headers)
    assert [r["id"] for r in listed.json()] == [world.record.id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"department_id": 10**9}, "department_id"),
        ({"department_id": 0}, "department_id"),
        ({"specialization": "x" * 201}, "specialization"),
        ({"license_number": "x" * 65}, "license_number"),
        ({"license_number": "a\x00b"}, "license_number"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_invalid_assignment_is_422_naming_the_field(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    body: dict[str, Any],
    field: str,
) -> None:
    doctor = world.users["doctor_own"]
    before = await profile(db, doctor.id)
    response = await client.patch(
        f"{DOCTORS}{doctor.id}", json=body, headers=await world.headers(db, settings, "admin")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert await profile(db, doctor.id) == before


@pytest.mark.parametrize("target", ["patient_owner", "admin", "missing"])
async def test_patch_of_a_non_doctor_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, target: str
) -> None:
    user_id = 10**9 if target == "missing" else world.users[target].id
    response = await client.patch(
        f"{DOCTORS}{user_id}",
        json={"specialization": "x"},
        headers=await world.headers(db, settings, "admin"),
    )
    assert response.status_code == 404
