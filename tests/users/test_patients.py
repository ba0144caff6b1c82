"""Patients: the searchable list, reading one profile, and the audit of both."""

from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import create_doctor, create_patient
from tests.records.world import World, build_world, events, next_page

PATIENTS = "/api/patients/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def search(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    response = await client.get(PATIENTS, params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return [p["username"] for p in response.json()]


async def test_list_patients_with_profile_fields_and_no_store(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    dated = await create_patient(
        db, date_of_birth=date(1980, 2, 29), sex="female", phone="+44 20 7946 0000"
    )
    response = await client.get(PATIENTS, headers=await world.headers(db, settings, "doctor_own"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    patients = response.json()
    assert [p["id"] for p in patients] == [
        world.users["patient_owner"].id,
        world.users["patient_other"].id,
        dated.id,
    ]
    assert patients[2] == {
        "id": dated.id,
        "username": dated.username,
        "email": dated.email,
        "full_name": dated.full_name,
        "date_of_birth": "1980-02-29",
        "sex": "female",
        "phone": "+44 20 7946 0000",
    }
    [listed] = await events(db, "patient.list")  # one event for the page, naming them all
    assert (listed.patient_id, listed.resource_id) == (None, None)
    assert listed.patient_ids == f"[{','.join(str(p['id']) for p in patients)}]"


async def test_search_is_case_insensitive_on_name_or_username(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await create_patient(db, username="ada.lovelace", full_name="Augusta Ada King")
    await create_patient(db, username="grace_h", full_name="Grace HOPPER")
    headers = await world.headers(db, settings, "admin")
    assert await search(client, headers, "LOVELACE") == ["ada.lovelace"]
    assert await search(client, headers, "augusta ada") == ["ada.lovelace"]
    assert await search(client, headers, "hopper") == ["grace_h"]
    assert await search(client, headers, "GRACE_") == ["grace_h"]
    assert await search(client, headers, "nobody-like-this") == []


async def test_search_folds_case_beyond_ascii(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await create_patient(db, username="anna.g", full_name="Anna Große-Öztürk")
    headers = await world.headers(db, settings, "admin")
    assert await search(client, headers, "GROSSE") == ["anna.g"]
    assert await search(client, headers, "große-ÖZTÜRK") == ["anna.g"]


async def test_like_wildcards_are_literal(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await create_patient(db, username="percent", full_name="Half 50% Done")
    await create_patient(db, username="under_score", full_name="Plain Name")
    await create_patient(db, username="underXscore", full_name="Other Name")
    headers = await world.headers(db, settings, "doctor_own")
    assert await search(client, headers, "%") == ["percent"]
    assert await search(client, headers, "50%") == ["percent"]
    assert await search(client, headers, "under_") == ["under_score"]
    assert await search(client, headers, "_") == [
        p for p in await search(client, headers, "") if "_" in p
    ]
    assert await search(client, headers, "\\") == []
    assert await search(client, headers, "' OR 1=1 --") == []


async def test_non_ascii_names_match_as_typed(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await create_patient(db, username="zoe", full_name="Zoë Ångström")
    headers = await world.headers(db, settings, "doctor_own")
    assert await search(client, headers, "Ångström") == ["zoe"]
    assert await search(client, headers, "zoë") == ["zoe"]


async def test_non_ascii_capitals_fold(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await create_patient(db, username="anders", full_name="Anders Ångström")
    headers = await world.headers(db, settings, "doctor_own")
    assert await search(client, headers, "ÅNGSTRÖM") == ["anders"]
    assert await search(client, headers, "ångström") == ["anders"]


@pytest.mark.parametrize("q", ["x" * 101, "nul\x00"])
async def test_bad_search_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, q: str
) -> None:
    response = await client.get(
        PATIENTS, params={"q": q}, headers=await world.headers(db, settings, "admin")
    )
    assert response.status_code == 422


async def test_search_pages_keep_the_filter(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    for _ in range(3):  # doctors of the name among them: a page of patients skips them
        await create_doctor(db, full_name="Smith Doctor")
        await create_patient(db, full_name="Smith Family")
    headers = await world.headers(db, settings, "admin")
    names: list[str] = []
    url: str | None = f"{PATIENTS}?q=smith&limit=2"
    while url:
        response = await client.get(url, headers=headers)
        names += [p["full_name"] for p in response.json()]
        url = next_page(response.headers.get("Link"))
    assert names == ["Smith Family"] * 3


@pytest.mark.parametrize("caller", ["admin", "doctor_own", "doctor_none", "patient_owner"])
async def test_read_a_patient(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    patient = world.users["patient_owner"]
    response = await client.get(
        f"{PATIENTS}{patient.id}", headers=await world.headers(db, settings, caller)
    )
    assert response.status_code == 200
    assert response.json()["username"] == patient.username
    assert response.headers["Cache-Control"] == "no-store"
    [event] = await events(db, "patient.read")
    assert (event.outcome, event.patient_id, event.resource_id) == (
        "allowed",
        patient.id,
        patient.id,
    )


async def test_another_patient_is_404_like_a_missing_one(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "patient_other")
    hidden = await client.get(f"{PATIENTS}{world.users['patient_owner'].id}", headers=headers)
    missing = await client.get(f"{PATIENTS}{10**9}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert [e.outcome for e in await events(db, "patient.read")] == ["denied", "denied"]


@pytest.mark.parametrize("target", ["doctor_own", "admin"])
async def test_a_non_patient_id_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, target: str
) -> None:
    response = await client.get(
        f"{PATIENTS}{world.users[target].id}", headers=await world.headers(db, settings, "admin")
    )
    assert response.status_code == 404
