"""Patient, Practitioner, PractitionerRole and Organization: the REST profiles in FHIR,
under the same policies, searched with FHIR's parameters and modifiers."""

from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.fhir import systems
from tests.conftest import make_settings
from tests.factories import create_department, create_doctor, create_patient
from tests.fhir.helpers import entries, fhir, issue
from tests.records.world import World, events

USERNAME = "https://hospital.example.org/identifier/username"
LICENSE = "https://hospital.example.org/identifier/license-number"


def _ids(bundle: dict[str, Any]) -> set[int]:
    return {int(resource["id"]) for resource in entries(bundle)}


async def test_a_patient_is_his_rest_profile(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    patient = await create_patient(
        db, date_of_birth=date(1980, 2, 29), sex="female", phone="+44 20 7946 0000"
    )
    headers = await world.headers(db, settings, "doctor_own")
    rest = (await client.get(f"/api/patients/{patient.id}", headers=headers)).json()
    response = await fhir(client, f"/Patient/{patient.id}", headers)
    shown = response.json()
    assert shown["identifier"] == [{"system": USERNAME, "value": rest["username"]}]
    assert shown["name"] == [{"text": rest["full_name"]}]
    assert shown["telecom"] == [
        {"system": "email", "value": rest["email"]},
        {"system": "phone", "value": rest["phone"]},
    ]
    assert (shown["gender"], shown["birthDate"]) == ("female", "1980-02-29")
    assert shown["active"] is True
    version = shown["meta"]["versionId"]
    assert response.headers["ETag"] == f'W/"{version}"'
    again = await fhir(
        client, f"/Patient/{patient.id}", {**headers, "If-None-Match": f'W/"{version}"'}
    )
    assert again.status_code == 304
    assert [e.resource_id for e in await events(db, "patient.read")] == [patient.id] * 3


async def test_a_patient_reads_and_finds_only_himself(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    own, other = world.users["patient_owner"], world.users["patient_other"]
    headers = await world.headers(db, settings, "patient_owner")
    assert (await fhir(client, f"/Patient/{own.id}", headers)).status_code == 200
    refused = await fhir(client, f"/Patient/{other.id}", headers)
    assert refused.status_code == 404
    assert issue(refused)["code"] == "not-found"
    assert [e.outcome for e in await events(db, "patient.read")] == ["allowed", "denied"]
    for query in ("", f"?_id={other.id}", "?name=name", f"?identifier={other.username}"):
        assert _ids((await fhir(client, f"/Patient{query}", headers)).json()) <= {own.id}, query
    assert _ids((await fhir(client, "/Patient", headers)).json()) == {own.id}


async def test_patient_search_parameters(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    ada = await create_patient(
        db, full_name="Ada María López", date_of_birth=date(1990, 6, 15), sex="female"
    )
    bob = await create_patient(
        db, full_name="Bob Lopezky", date_of_birth=date(1985, 1, 1), sex="male"
    )
    cy = await create_patient(db, full_name="Cy 100%_off", sex="other")
    headers = await world.headers(db, settings, "doctor_own")
    cases = {
        "name=lóp": {ada.id},
        "name=LOPEZ": {bob.id},
        "name=ada": {ada.id},
        "name=mar,bob": {ada.id, bob.id},
        "name=ló&name=ada": {ada.id},
        "name=lop": {bob.id},  # case-insensitive, not accent-insensitive
        "name:contains=pez": {ada.id, bob.id},
        "name:contains=0%25_": {cy.id},
        "name:contains=0%25x": set(),
        "name:exact=Ada María López": {ada.id},
        "name:exact=ada maría lópez": set(),
        f"identifier={ada.username.upper()}": {ada.id},
        f"identifier={USERNAME}|{bob.username}": {bob.id},
        f"identifier=urn:other|{bob.username}": set(),
        f"identifier=|{bob.username}": set(),
        "birthdate=1990-06-15": {ada.id},
        "birthdate=1990": {ada.id},
        "birthdate=eq1990-06": {ada.id},
        "birthdate=lt1990": {bob.id},
        "birthdate=le1990-06-15&birthdate=gt1985": {ada.id},
        "birthdate=ge1985-01-02": {ada.id},
        "birthdate=ne1990": {bob.id},
        "gender=female&name=l": {ada.id},
        "gender=male,other&name:contains=o": {bob.id, cy.id},
        "gender=http://hl7.org/fhir/administrative-gender|other": {cy.id},
        f"_id={ada.id},{cy.id}&name:contains=a": {ada.id},
    }
    for query, expected in cases.items():
        response = await fhir(client, f"/Patient?{query}&_count=200", headers)
        assert response.status_code == 200, (query, response.text)
        found = _ids(response.json()) & {ada.id, bob.id, cy.id}
        assert found == expected, query
    [*_, last] = await events(db, "patient.list")
    assert last.actor_id == world.users["doctor_own"].id


async def test_the_patient_list_pages_as_rest(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    for _ in range(3):
        await create_patient(db)
    headers = await world.headers(db, settings, "admin")
    rest = (await client.get("/api/patients/?limit=200", headers=headers)).json()
    seen: list[int] = []
    url: str | None = "/Patient?_count=2&_total=accurate"
    while url:
        bundle = (await fhir(client, url, headers)).json()
        assert bundle["total"] == len(rest)
        seen.extend(int(patient["id"]) for patient in entries(bundle))
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert seen == [patient["id"] for patient in rest]


async def test_practitioners_and_their_roles(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    doctor = world.users["doctor_own"]
    headers = await world.headers(db, settings, "admin")
    rest = (await client.get(f"/api/doctors/{doctor.id}", headers=headers)).json()
    practitioner = (await fhir(client, f"/Practitioner/{doctor.id}", headers)).json()
    assert practitioner["identifier"] == [{"system": LICENSE, "value": rest["license_number"]}]
    assert practitioner["name"] == [{"text": rest["full_name"]}]
    role = (await fhir(client, f"/PractitionerRole/{doctor.id}", headers)).json()
    assert role["practitioner"]["reference"] == f"Practitioner/{doctor.id}"
    assert role["organization"] == {"reference": f"Organization/{rest['department_id']}"}
    assert role["specialty"] == [{"text": rest["specialization"]}]
    unassigned = (
        await fhir(client, f"/PractitionerRole/{world.users['doctor_none'].id}", headers)
    ).json()
    assert "organization" not in unassigned

    by_license = f"/Practitioner?identifier={LICENSE}|{rest['license_number']}"
    assert _ids((await fhir(client, by_license, headers)).json()) == {doctor.id}
    named = f"/Practitioner?name:exact={rest['full_name']}"
    assert _ids((await fhir(client, named, headers)).json()) == {doctor.id}
    in_department = f"/PractitionerRole?organization=Organization/{world.department.id}"
    assert _ids((await fhir(client, in_department, headers)).json()) == {doctor.id}
    by_doctor = f"/PractitionerRole?practitioner={doctor.id}"
    assert _ids((await fhir(client, by_doctor, headers)).json()) == {doctor.id}
    wrong_type = f"/PractitionerRole?practitioner=Patient/{doctor.id}"
    assert _ids((await fhir(client, wrong_type, headers)).json()) == set()
    rest_all = (await client.get("/api/doctors/?limit=200", headers=headers)).json()
    everyone = (await fhir(client, "/Practitioner?_count=200", headers)).json()
    assert [int(p["id"]) for p in entries(everyone)] == [d["id"] for d in rest_all]


@pytest.mark.parametrize("caller", ["patient_owner", "patient_other"])
async def test_patients_may_not_read_practitioners(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, caller: str
) -> None:
    headers = await world.headers(db, settings, caller)
    for path in (f"/Practitioner/{world.users['doctor_own'].id}", "/PractitionerRole"):
        response = await fhir(client, path, headers)
        assert response.status_code == 403
        assert issue(response)["code"] == "forbidden"


async def test_organizations_are_the_departments(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    ward = await create_department(
        db, name="Cardiology Ward", location="Wing C", description="Heart"
    )
    await create_doctor(db, ward)
    headers = await world.headers(db, settings, "patient_owner")
    rest = (await client.get(f"/api/department/{ward.id}", headers=headers)).json()
    shown = (await fhir(client, f"/Organization/{ward.id}", headers)).json()
    assert shown["name"] == rest["name"]
    assert shown["address"] == [{"text": "Wing C"}]
    assert shown["type"][0]["coding"][0]["code"] == "dept"
    for query, expected in {
        "name=ward": {ward.id},
        "name=cardio": {ward.id},
        "name:contains=DIOLOGY W": {ward.id},
        "name:exact=cardiology ward": set(),
        f"_id={ward.id}": {ward.id},
    }.items():
        assert _ids((await fhir(client, f"/Organization?{query}", headers)).json()) == expected
    rest_all = (await client.get("/api/department/?limit=200", headers=headers)).json()
    everyone = (await fhir(client, "/Organization?_count=200", headers)).json()
    assert [int(o["id"]) for o in entries(everyone)] == [d["id"] for d in rest_all]


def test_identifier_systems_come_from_the_configured_base(database_url: str) -> None:
    configured = systems.of_settings(make_settings(database_url, fhir_system_base="urn:x-ward:"))
    assert configured.username == "urn:x-ward:/identifier/username"
    base = systems.of_settings(make_settings(database_url, fhir_system_base="https://h.example/"))
    assert base.license_number == "https://h.example/identifier/license-number"
    assert (
        base.extension("record-notes") == "https://h.example/fhir/StructureDefinition/record-notes"
    )
