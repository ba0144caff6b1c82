"""Condition search: the records the REST list shows, narrowed by FHIR's parameters, in
keyset pages linked absolutely; `_include` of the subject; nothing hidden in any Bundle."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.emergency.models import EmergencyGrant
from tests.factories import create_record
from tests.fhir.helpers import entries, fhir, issue, link
from tests.fhir.records import record_of, rest_record
from tests.records.world import World, events, next_page

RECORDS = "/api/patient_records/"


async def _records(
    db: AsyncSession, world: World, count: int, patient: str = "patient_owner"
) -> list[Any]:
    return [
        await create_record(
            db,
            patient=world.users[patient],
            doctor=world.users["doctor_own"],
            department=world.department,
            diagnosis=f"Finding {number}",
        )
        for number in range(count)
    ]


async def _all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Any]:
    """Every match of a search, following `next` to the end (each link absolute, same origin)."""
    found: list[Any] = []
    while url:
        response = await fhir(client, url, headers)
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["type"] == "searchset"
        found.extend(entries(bundle))
        url = link(bundle, "next") or ""
        assert not url or url.startswith("http://test/fhir/R4/Condition?")
    return found


async def _rest_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Any]:
    found: list[Any] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url, headers=headers)
        found.extend(response.json())
        next_url = next_page(response.headers.get("link"))
    return found


@pytest.mark.parametrize("caller", ["doctor_own", "doctor_other", "patient_owner", "patient_other"])
async def test_pages_hold_what_the_rest_list_holds(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    await _records(db, world, 4)
    await _records(db, world, 2, patient="patient_other")
    headers = await world.headers(db, settings, caller)
    patient_id = world.users["patient_owner"].id
    for fhir_query, rest_query in (
        ("_count=2", "limit=2"),
        (f"patient={patient_id}&_count=2", f"patient_id={patient_id}&limit=2"),
        (f"subject=Patient/{patient_id}&_count=3", f"patient_id={patient_id}&limit=3"),
    ):
        shown = await _all_pages(client, f"/Condition?{fhir_query}", headers)
        rest = await _rest_pages(client, f"{RECORDS}?{rest_query}", headers)
        assert [record_of(c) for c in shown] == [rest_record(r) for r in rest], fhir_query


async def test_the_next_link_keeps_the_search_and_its_origin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await _records(db, world, 2)
    headers = await world.headers(db, settings, "doctor_own")
    patient_id = world.users["patient_owner"].id
    query = f"patient={patient_id}&_count=1&recorded-date=ge2000"
    response = await client.get(
        f"https://ward.example:8443/fhir/R4/Condition?{query}", headers=headers
    )
    bundle = response.json()
    assert link(bundle, "self") == f"https://ward.example:8443/fhir/R4/Condition?{query}"
    following = link(bundle, "next")
    assert following is not None
    assert following.startswith(f"https://ward.example:8443/fhir/R4/Condition?{query}&_cursor=")
    fulls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert fulls == [f"https://ward.example:8443/fhir/R4/Condition/{world.record.id}"]


async def test_include_adds_each_visible_subject_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await _records(db, world, 2)
    await _records(db, world, 1, patient="patient_other")
    headers = await world.headers(db, settings, "doctor_own")
    bundle = (await fhir(client, "/Condition?_include=Condition:subject", headers)).json()
    matched, included = entries(bundle), entries(bundle, "include")
    assert len(matched) == 4
    patients = {world.users[name].id for name in ("patient_owner", "patient_other")}
    assert {int(p["id"]) for p in included} == patients
    assert len(included) == 2
    rest = (
        await client.get(f"/api/patients/{world.users['patient_owner'].id}", headers=headers)
    ).json()
    [owner] = [p for p in included if p["id"] == str(rest["id"])]
    assert owner["identifier"][0]["value"] == rest["username"]
    [shown] = await events(db, "patient.list")
    assert shown.patient_ids == str(sorted(patients)).replace(" ", "")


async def test_hidden_records_are_in_no_bundle_nor_include(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    hidden = await create_record(
        db,
        patient=world.users["patient_owner"],
        doctor=world.users["doctor_other"],
        department=world.other_department,
    )
    patient_id = world.users["patient_owner"].id
    doctor = await world.headers(db, settings, "doctor_own")
    for query in (
        f"patient={patient_id}&_include=Condition:subject",
        f"_id={hidden.id},{world.record.id}&_include=Condition:subject",
        "_include=Condition:subject&_total=accurate",
    ):
        bundle = (await fhir(client, f"/Condition?{query}", doctor)).json()
        assert [int(c["id"]) for c in entries(bundle)] == [world.record.id], query
        urls = [entry["fullUrl"] for entry in bundle["entry"]]
        assert f"/Condition/{hidden.id}" not in str(urls)
    stranger = await world.headers(db, settings, "patient_other")
    bundle = (
        await fhir(client, f"/Condition?patient={patient_id}&_include=Condition:subject", stranger)
    ).json()
    assert "entry" not in bundle
    counted = (
        await fhir(client, f"/Condition?patient={patient_id}&_total=accurate", stranger)
    ).json()
    assert counted["total"] == 0
    stranger_id = world.users["patient_other"].id
    assert [e for e in await events(db, "patient.list") if e.actor_id == stranger_id] == []


async def test_an_emergency_grant_opens_the_named_patients_records(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    grant = EmergencyGrant(
        doctor_id=world.users["doctor_other"].id,
        patient_id=world.users["patient_owner"].id,
        reason="Unconscious on arrival",
        expires_at=utcnow() + timedelta(minutes=60),
    )
    db.add(grant)
    await db.commit()
    headers = await world.headers(db, settings, "doctor_other")
    patient_id = world.users["patient_owner"].id
    bundle = (await fhir(client, f"/Condition?patient={patient_id}", headers)).json()
    assert [int(c["id"]) for c in entries(bundle)] == [world.record.id]
    [listed] = await events(db, "record.list")
    assert listed.emergency_grant_id == grant.id
    read = await fhir(client, f"/Condition/{world.record.id}", headers)
    assert read.status_code == 200
    own = (await fhir(client, "/Condition", headers)).json()  # no patient named: own only
    assert "entry" not in own


async def test_total_counts_every_page_only_when_asked(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await _records(db, world, 4)
    headers = await world.headers(db, settings, "doctor_own")
    patient_id = world.users["patient_owner"].id
    plain = (await fhir(client, f"/Condition?patient={patient_id}&_count=2", headers)).json()
    assert "total" not in plain
    for query in ("", f"patient={patient_id}&"):
        counted = (
            await fhir(client, f"/Condition?{query}_count=2&_total=accurate", headers)
        ).json()
        assert counted["total"] == 5
        assert len(counted["entry"]) == 2


async def test_dates_and_ids_narrow_the_search(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    now = utcnow()
    first = await create_record(
        db,
        patient=world.users["patient_owner"],
        doctor=world.users["doctor_own"],
        department=world.department,
        created_at=now - timedelta(days=400),
        updated_at=now - timedelta(days=30),
    )
    [second] = await _records(db, world, 1)
    headers = await world.headers(db, settings, "doctor_own")
    last_year = (now - timedelta(days=400)).date().isoformat()
    cases = {
        f"recorded-date={last_year}": {first.id},
        f"recorded-date=eq{last_year[:7]}": {first.id},
        f"recorded-date=lt{now.date().isoformat()}": {first.id},
        f"recorded-date=ge{now.date().isoformat()}": {world.record.id, second.id},
        f"recorded-date=ne{last_year}": {world.record.id, second.id},
        f"recorded-date=gt{last_year}&recorded-date=le{now.year + 1}": {world.record.id, second.id},
        f"_lastUpdated=lt{(now - timedelta(days=1)):%Y-%m-%dT%H:%M:%S.%fZ}": {first.id},
        f"_lastUpdated=ge{(now - timedelta(days=40)).date().isoformat()}": {
            world.record.id,
            first.id,
            second.id,
        },
        f"_id={second.id},{first.id}": {first.id, second.id},
        "_id=nothing": set(),
    }
    for query, expected in cases.items():
        response = await fhir(client, f"/Condition?{query}", headers)
        assert response.status_code == 200, response.text
        assert {int(c["id"]) for c in entries(response.json())} == expected, query


async def test_post_search_answers_as_get(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    await _records(db, world, 3)
    headers = await world.headers(db, settings, "doctor_own")
    patient_id = world.users["patient_owner"].id
    got = (await fhir(client, f"/Condition?patient={patient_id}&_count=2", headers)).json()
    posted = await fhir(
        client,
        "/Condition/_search",
        headers,
        method="POST",
        data={"patient": str(patient_id), "_count": "2"},
    )
    assert posted.status_code == 200
    assert posted.json()["entry"] == got["entry"]
    assert link(posted.json(), "next") == link(got, "next")
    as_json = await fhir(client, "/Condition/_search", headers, method="POST", json={"a": 1})
    assert as_json.status_code == 415


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("_count=0", 400),
        ("_count=201", 400),
        ("_count=many", 400),
        ("_count=%C2%B2", 400),
        ("_count=%EF%BC%95", 400),
        ("_cursor=not-a-cursor", 400),
        ("_total=maybe", 400),
        ("recorded-date=yesterday", 400),
        ("recorded-date=2024-13", 400),
        ("recorded-date=sa2024", 400),
        ("recorded-date=9999", 400),
        ("patient:identifier=x", 400),
        ("patient=%00", 400),
        ("_format=xml", 406),
        ("_format=application/fhir+xml", 406),
    ],
)
async def test_what_cannot_be_searched_is_a_clear_4xx(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    query: str,
    status: int,
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    response = await fhir(client, f"/Condition?{query}", headers)
    assert response.status_code == status, response.text
    assert issue(response)["diagnostics"]


async def test_unknown_parameters_are_ignored_unless_strict(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    for query in ("colour=blue", "_sort=-date", "_include=Condition:recorder"):
        lenient = await fhir(client, f"/Condition?{query}", headers)
        assert lenient.status_code == 200
        assert len(entries(lenient.json())) == 1
        strict = await fhir(client, f"/Condition?{query}", {**headers, "Prefer": "handling=strict"})
        assert strict.status_code == 400, query
        assert issue(strict)["code"] == "invalid"
    known = await fhir(client, "/Condition?_format=json", {**headers, "Prefer": "handling=strict"})
    assert known.status_code == 200
    assert (
        await fhir(client, "/Condition", {**headers, "Accept": "application/xml"})
    ).status_code == 406
