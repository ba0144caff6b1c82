"""Updating records: partial PATCH, versions kept, ETag and If-Match, the history."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.records.models import PatientRecord, PatientRecordVersion
from tests.factories import create_doctor, tokens_for
from tests.records.world import World, build_world, count, events, next_page

RECORDS = "/api/patient_records/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def patch(
    client: httpx.AsyncClient,
    world: World,
    headers: dict[str, str],
    body: dict[str, Any],
    if_match: str | None = None,
) -> httpx.Response:
    extra = {"If-Match": if_match} if if_match is not None else {}
    return await client.patch(
        f"{RECORDS}{world.record.id}", json=body, headers={**headers, **extra}
    )


async def stored(db: AsyncSession, record_id: int) -> Any:
    query = select(PatientRecord.diagnosis, PatientRecord.notes, PatientRecord.version).where(
        PatientRecord.id == record_id
    )
    return (await db.execute(query)).one()


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    # A second doctor of the same department updates: he becomes the author.
    colleague = await create_doctor(db, world.department)
    headers = (await tokens_for(db, settings, colleague)).headers
    response = await patch(client, world, headers, {"notes": "Follow-up in 2 weeks"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["notes"] == "Follow-up in 2 weeks"
    assert body["diagnosis"] == "Hypertension"
    assert body["observations"] == "BP 150/95"
    assert body["version"] == 2
    assert body["author_id"] == colleague.id
    assert body["department_id"] == world.department.id
    assert body["updated_at"] >= body["created_at"]
    assert response.headers["ETag"] == '"2"'
    assert response.headers["Cache-Control"] == "no-store"
    [event] = await events(db, "record.update")
    assert event.patient_id == world.users["patient_owner"].id


async def test_fields_can_be_cleared_but_diagnosis_cannot(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    cleared = await patch(client, world, headers, {"observations": None})
    assert cleared.status_code == 200
    assert cleared.json()["observations"] is None
    refused = await patch(client, world, headers, {"diagnosis": None})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "diagnosis"]


@pytest.mark.parametrize(
    "body", [{"department_id": 2}, {"author_id": 1}, {"version": 9}, {"patient_id": 1}]
)
async def test_patch_cannot_name_server_fields(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    body: dict[str, Any],
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    assert (await patch(client, world, headers, body)).status_code == 422
    assert (await stored(db, world.record.id)).version == 1


@pytest.mark.parametrize("if_match", ['"1"', "1", "*", ' "1" ', '"7", "1"', 'W/"1", "1"'])
async def test_matching_if_match_forms_are_accepted(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, if_match: str
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    response = await patch(client, world, headers, {"notes": "n"}, if_match)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "if_match", ['"2"', '"0"', "abc", '"1', "", "W/", '"1"x', 'W/"1"', "W/1", 'W/"1", W/"2"']
)
async def test_stale_weak_or_malformed_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, if_match: str
) -> None:
    """If-Match takes the strong comparison (RFC 9110): a weak tag never matches, even the
    current version's."""
    headers = await world.headers(db, settings, "doctor_own")
    response = await patch(client, world, headers, {"diagnosis": "Overwritten"}, if_match)
    assert response.status_code == 412
    assert await stored(db, world.record.id) == ("Hypertension", None, 1)
    assert await events(db, "record.update") == []


async def test_second_writer_with_the_old_etag_gets_412(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    read = await client.get(f"{RECORDS}{world.record.id}", headers=headers)
    etag = read.headers["ETag"]
    first = await patch(client, world, headers, {"diagnosis": "First"}, etag)
    second = await patch(client, world, headers, {"diagnosis": "Second"}, etag)
    assert (first.status_code, second.status_code) == (200, 412)
    assert (await stored(db, world.record.id)).diagnosis == "First"
    again = await patch(client, world, headers, {"diagnosis": "Second"}, first.headers["ETag"])
    assert again.status_code == 200
    assert again.json()["version"] == 3


async def test_patch_of_another_departments_record_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_other")
    response = await patch(client, world, headers, {"diagnosis": "Hijacked"}, '"1"')
    assert response.status_code == 404
    assert await stored(db, world.record.id) == ("Hypertension", None, 1)
    [event] = await events(db, "record.update")
    assert (event.outcome, event.resource_id, event.patient_id) == (
        "denied",
        world.record.id,
        None,
    )


async def test_history_lists_every_version_oldest_first(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = await world.headers(db, settings, "doctor_own")
    await patch(client, world, doctor, {"diagnosis": "Second"}, '"1"')
    await patch(client, world, doctor, {"notes": "third"}, '"2"')
    owner = await world.headers(db, settings, "patient_owner")
    response = await client.get(f"{RECORDS}{world.record.id}/history", headers=owner)
    assert response.status_code == 200
    history = response.json()
    assert [(v["version"], v["diagnosis"], v["notes"]) for v in history] == [
        (1, "Hypertension", None),
        (2, "Second", None),
        (3, "Second", "third"),
    ]
    assert {v["id"] for v in history} == {world.record.id}
    assert response.headers["ETag"] == '"3"'
    assert response.headers["Cache-Control"] == "no-store"
    current = await client.get(f"{RECORDS}{world.record.id}", headers=owner)
    assert history[-1] == current.json()
    [event] = await events(db, "record.history")
    assert event.patient_id == world.users["patient_owner"].id


async def test_history_pages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = await world.headers(db, settings, "doctor_own")
    for version in range(1, 5):
        await patch(client, world, doctor, {"notes": f"v{version + 1}"}, f'"{version}"')
    versions: list[int] = []
    url: str | None = f"{RECORDS}{world.record.id}/history?limit=2"
    while url:
        response = await client.get(url, headers=doctor)
        assert response.status_code == 200
        versions += [v["version"] for v in response.json()]
        url = next_page(response.headers.get("Link"))
    assert versions == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("caller", ["doctor_other", "doctor_none", "patient_other"])
async def test_history_is_hidden_like_the_record(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await world.headers(db, settings, caller)
    response = await client.get(f"{RECORDS}{world.record.id}/history", headers=headers)
    assert response.status_code == 404
    [event] = await events(db, "record.history")
    assert event.outcome == "denied"


async def test_empty_patch_makes_no_new_version(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    response = await patch(client, world, headers, {}, '"1"')
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert await stored(db, world.record.id) == ("Hypertension", None, 1)
    assert (await patch(client, world, headers, {}, '"5"')).status_code == 412


@pytest.mark.parametrize(
    "body",
    [
        {"notes": None},
        {"diagnosis": "Hypertension"},
        {"observations": "BP 150/95", "notes": None},
        {"diagnosis": "Hypertension", "treatments": "Lisinopril 10 mg"},
    ],
)
@pytest.mark.parametrize("if_match", [None, '"1"', "*"])
async def test_patch_to_the_current_values_makes_no_new_version(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    body: dict[str, Any],
    if_match: str | None,
) -> None:
    """Every field sent already has that value: nothing changes, so no version is made and
    the author stays; the answer is the current record, audited as a read."""
    colleague = await create_doctor(db, world.department)  # would become the author
    headers = (await tokens_for(db, settings, colleague)).headers
    response = await patch(client, world, headers, body, if_match)
    assert response.status_code == 200, response.text
    assert (response.json()["version"], response.headers["ETag"]) == (1, '"1"')
    assert response.json()["author_id"] == world.users["doctor_own"].id
    assert await stored(db, world.record.id) == ("Hypertension", None, 1)
    assert await count(db, PatientRecordVersion) == 1
    assert await events(db, "record.update") == []
    [event] = await events(db, "record.read")
    assert (event.resource_id, event.outcome) == (world.record.id, "allowed")
    history = await client.get(f"{RECORDS}{world.record.id}/history", headers=headers)
    assert [version["version"] for version in history.json()] == [1]
    # A stale If-Match is refused whether or not the change is empty.
    assert (await patch(client, world, headers, body, '"2"')).status_code == 412


async def test_patch_with_one_changed_field_among_unchanged_ones_makes_a_version(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    body = {"diagnosis": "Hypertension", "notes": "Now noted"}
    response = await patch(client, world, headers, body, '"1"')
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["notes"]) == (2, "Now noted")
    assert await stored(db, world.record.id) == ("Hypertension", "Now noted", 2)
