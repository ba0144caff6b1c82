"""Condition read, vread and history: the record as REST shows it, field for field, under
the same policy (404 for what the caller may not see, never 403) and the same audit."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import create_record
from tests.fhir.helpers import fhir, issue
from tests.fhir.records import record_of, rest_record
from tests.records.world import World, events

RECORDS = "/api/patient_records/"


async def test_a_condition_is_its_record_field_for_field(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    record = await create_record(
        db,
        patient=world.users["patient_owner"],
        doctor=world.users["doctor_own"],
        department=world.department,
        diagnosis=" Asthma, mild ",
        observations="",
        treatments=None,
        notes="  kept\nexactly  ",
    )
    for caller in ("doctor_own", "patient_owner"):
        headers = await world.headers(db, settings, caller)
        rest = (await client.get(f"{RECORDS}{record.id}", headers=headers)).json()
        response = await fhir(client, f"/Condition/{record.id}", headers)
        assert response.status_code == 200
        assert record_of(response.json()) == rest_record(rest)
        assert response.headers["ETag"] == 'W/"1"'


async def test_versions_and_history_are_the_records(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    url = f"{RECORDS}{world.record.id}"
    changed = await client.patch(url, json={"notes": "", "treatments": None}, headers=headers)
    assert changed.status_code == 200
    assert (await client.patch(url, json={"diagnosis": "Revised"}, headers=headers)).is_success
    rest = (await client.get(f"{url}/history", headers=headers)).json()
    assert [version["version"] for version in rest] == [1, 2, 3]

    for version in rest:
        vread = await fhir(
            client, f"/Condition/{world.record.id}/_history/{version['version']}", headers
        )
        assert vread.status_code == 200
        assert record_of(vread.json()) == rest_record(version)
        assert vread.headers["ETag"] == f'W/"{version["version"]}"'
    current = await fhir(client, f"/Condition/{world.record.id}", headers)
    assert record_of(current.json()) == rest_record(rest[-1])

    history = (await fhir(client, f"/Condition/{world.record.id}/_history", headers)).json()
    assert history["type"] == "history"
    shown = [record_of(entry["resource"]) for entry in history["entry"]]
    assert shown == [rest_record(version) for version in reversed(rest)]  # newest first
    assert [entry["request"]["method"] for entry in history["entry"]] == ["PUT", "PUT", "POST"]
    assert history["entry"][0]["response"]["etag"] == 'W/"3"'

    paged = (await fhir(client, f"/Condition/{world.record.id}/_history?_count=2", headers)).json()
    assert [entry["resource"]["meta"]["versionId"] for entry in paged["entry"]] == ["3", "2"]
    [following] = [link["url"] for link in paged["link"] if link["relation"] == "next"]
    rest_page = (await fhir(client, following, headers)).json()
    assert [entry["resource"]["meta"]["versionId"] for entry in rest_page["entry"]] == ["1"]
    assert all(link["relation"] != "next" for link in rest_page["link"])

    missing = await fhir(client, f"/Condition/{world.record.id}/_history/9", headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "tag",
    ['W/"1"', '"1"', "1", ' W/"7", W/"1" ', "*"],
    ids=["weak", "strong", "bare", "list", "any"],
)
async def test_if_none_match_of_the_version_is_304(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, tag: str
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    url = f"/Condition/{world.record.id}"
    response = await fhir(client, url, {**headers, "If-None-Match": tag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"1"'
    other = await fhir(client, url, {**headers, "If-None-Match": 'W/"2"'})
    assert other.status_code == 200
    # A 304 still read the record: audited as the read it is.
    assert len(await events(db, "record.read")) == 2


@pytest.mark.parametrize("caller", ["doctor_other", "doctor_none", "patient_other"])
async def test_a_hidden_condition_is_404_and_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await world.headers(db, settings, caller)
    for path in ("", "/_history", "/_history/1"):
        response = await fhir(client, f"/Condition/{world.record.id}{path}", headers)
        assert response.status_code == 404, path
        assert issue(response)["code"] == "not-found"
    [read] = await events(db, "record.read")
    assert (read.outcome, read.resource_id) == ("denied", world.record.id)
    assert [event.outcome for event in await events(db, "record.history")] == ["denied"] * 2


async def test_an_admin_is_refused_as_in_rest(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    for path in (f"/Condition/{world.record.id}", "/Condition", "/Condition/_search"):
        method = "POST" if path.endswith("_search") else "GET"
        response = await fhir(client, path, headers, method=method)
        assert response.status_code == 403, path
        assert issue(response)["code"] == "forbidden"
    assert [e.outcome for e in await events(db, "access.forbidden")] == ["denied"] * 3


@pytest.mark.parametrize("resource_id", ["0", "abc", "9223372036854775808", "-1", "1.0"])
async def test_an_id_that_is_no_record_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, resource_id: str
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    response = await fhir(client, f"/Condition/{resource_id}", headers)
    assert response.status_code == 404
    assert issue(response)["code"] == "not-found"


async def test_reads_leave_the_rest_twins_events_in_the_access_log(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = await world.headers(db, settings, "doctor_own")
    patient = world.users["patient_owner"]
    assert (await fhir(client, f"/Condition/{world.record.id}", doctor)).status_code == 200
    assert (await fhir(client, f"/Condition/{world.record.id}/_history", doctor)).is_success
    assert (await fhir(client, f"/Condition?patient={patient.id}", doctor)).is_success
    assert (await fhir(client, f"/Patient/{patient.id}", doctor)).is_success
    for action in ("record.read", "record.history", "record.list", "patient.read"):
        [event] = await events(db, action)
        assert event.actor_id == world.users["doctor_own"].id
        assert event.outcome == "allowed"
    own = await world.headers(db, settings, "patient_owner")
    log = await client.get(f"/api/patients/{patient.id}/access-log", headers=own)
    actions = {entry["action"] for entry in log.json()}
    assert {"record.read", "record.history", "record.list", "patient.read"} <= actions
