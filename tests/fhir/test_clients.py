"""Real FHIR clients against the real server on loopback: fhirpy (async) pages through
Patient and Condition searches, reads, vreads and sees 304; fhirclient (R4 4.0.1 models,
strict) reads the CapabilityStatement and a Patient. As a doctor, a patient and an admin,
each sees exactly what the REST API shows the same caller."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, ResourceNotFound

from app.core.db import create_engine, create_sessionmaker
from tests.conftest import make_settings
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
)
from tests.fhir.records import record_of, rest_record
from tests.fhir.validation import validate
from tests.live import start
from tests.records.world import next_page

ROLES = ("doctor", "patient", "admin")


@dataclass(frozen=True)
class Hospital:
    base: str  # the server's origin
    usernames: dict[str, str]  # a caller of each role
    patient_id: int  # the patient caller
    other_patient_id: int
    record_ids: list[int]  # records of the patient caller in the doctor's department
    hidden_id: int  # the patient caller's record in another department (the doctor's hidden)
    others_record_id: int  # a record of another patient (the patient caller's hidden)

    def hidden_from(self, role: str) -> int:
        return self.hidden_id if role == "doctor" else self.others_record_id

    @property
    def fhir(self) -> str:
        return f"{self.base}/fhir/R4"


async def _seed(database_url: str) -> dict[str, Any]:
    engine = create_engine(make_settings(database_url))
    try:
        async with create_sessionmaker(engine)() as session:
            ward, other = await create_department(session), await create_department(session)
            doctor, colleague = (
                await create_doctor(session, ward),
                await create_doctor(session, other),
            )
            admin = await create_admin(session)
            patient, other_patient = await create_patient(session), await create_patient(session)
            records = [
                await create_record(
                    session,
                    patient=patient,
                    doctor=doctor,
                    department=ward,
                    diagnosis=f"Finding {n}",
                )
                for n in range(5)
            ]
            others = [
                await create_record(session, patient=other_patient, doctor=doctor, department=ward)
                for _ in range(2)
            ]
            hidden = await create_record(
                session, patient=patient, doctor=colleague, department=other
            )
            return {
                "usernames": {
                    "doctor": doctor.username,
                    "patient": patient.username,
                    "admin": admin.username,
                },
                "patient_id": patient.id,
                "other_patient_id": other_patient.id,
                "record_ids": [record.id for record in records],
                "hidden_id": hidden.id,
                "others_record_id": others[0].id,
            }
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def hospital(
    fresh_database_url: Callable[[], Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hospital]:
    database_url = await fresh_database_url()
    seeded = await _seed(database_url)
    folder: Path = tmp_path_factory.mktemp("fhir-live")
    async with await start(database_url, folder) as live:
        yield Hospital(base=live.url, **seeded)


async def _login(hospital: Hospital, role: str) -> str:
    async with httpx.AsyncClient(base_url=hospital.base) as http:
        body = {"username": hospital.usernames[role], "password": DEFAULT_PASSWORD}
        response = await http.post("/auth/login/", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


async def _rest_all(hospital: Hospital, token: str, url: str) -> list[Any] | None:
    """Every item of a REST list (None when the caller's role is refused)."""
    found: list[Any] = []
    async with httpx.AsyncClient(base_url=hospital.base) as http:
        next_url: str | None = url
        while next_url:
            response = await http.get(next_url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 403:
                return None
            assert response.status_code == 200, response.text
            found.extend(response.json())
            next_url = next_page(response.headers.get("link"))
    return found


async def _rest_one(hospital: Hospital, token: str, url: str) -> Any:
    async with httpx.AsyncClient(base_url=hospital.base) as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        return response.json() if response.status_code == 200 else response.status_code


def _shown(resources: list[Any]) -> list[dict[str, Any]]:
    found = []
    for resource in resources:
        data = resource.serialize()
        validate(data)
        found.append(data)
    return found


@pytest.mark.parametrize("role", ROLES)
async def test_fhirpy_sees_what_rest_shows(hospital: Hospital, role: str) -> None:
    token = await _login(hospital, role)
    client = AsyncFHIRClient(hospital.fhir, authorization=f"Bearer {token}")

    # Patients: a patient finds only himself (REST lists no patients for him).
    rest_patients = await _rest_all(hospital, token, "/api/patients/?limit=200")
    if rest_patients is None:
        rest_patients = [await _rest_one(hospital, token, f"/api/patients/{hospital.patient_id}")]
    patients = _shown(await client.resources("Patient").limit(2).fetch_all())
    assert [int(p["id"]) for p in patients] == [p["id"] for p in rest_patients]
    assert [p["identifier"][0]["value"] for p in patients] == [p["username"] for p in rest_patients]

    # Conditions: all the caller may see, and one patient's, page by page.
    for fhir_params, rest_query in (
        ({}, ""),
        ({"patient": f"Patient/{hospital.patient_id}"}, f"&patient_id={hospital.patient_id}"),
    ):
        rest = await _rest_all(hospital, token, f"/api/patient_records/?limit=200{rest_query}")
        search = client.resources("Condition").search(**fhir_params).limit(2)
        if rest is None:  # an admin reads no records, in FHIR either
            with pytest.raises(ForbiddenError):
                await search.fetch_all()
            continue
        shown = _shown(await search.fetch_all())
        assert [record_of(c) for c in shown] == [rest_record(r) for r in rest]
        assert hospital.hidden_from(role) not in [int(c["id"]) for c in shown]


@pytest.mark.parametrize("role", ["doctor", "patient"])
async def test_fhirpy_reads_vreads_and_revalidates(hospital: Hospital, role: str) -> None:
    token = await _login(hospital, role)
    client = AsyncFHIRClient(hospital.fhir, authorization=f"Bearer {token}")
    record_id = hospital.record_ids[0]
    rest = await _rest_one(hospital, token, f"/api/patient_records/{record_id}")

    condition = await client.reference("Condition", str(record_id)).to_resource()
    validate(condition.serialize())
    assert record_of(condition.serialize()) == rest_record(rest)
    version = await client.execute(f"Condition/{record_id}/_history/1", method="get")
    validate(dict(version))
    assert record_of(dict(version)) == rest_record(rest)

    etag = f'W/"{condition["meta"]["versionId"]}"'
    answer, status = await client._do_request(
        "get",
        f"Condition/{record_id}",
        extra_headers={"If-None-Match": etag},
        returning_status=True,
    )
    assert (answer, status) == (None, 304)
    refreshed = await condition.refresh()  # fhirpy sends the bare version: 304 too
    assert refreshed.serialize() == condition.serialize()

    hidden = hospital.hidden_from(role)
    with pytest.raises(ResourceNotFound):  # a record he may not see: 404, as in REST
        await client.reference("Condition", str(hidden)).to_resource()
    assert await _rest_one(hospital, token, f"/api/patient_records/{hidden}") == 404


def _fhirclient_reads(hospital: Hospital, token: str, patient_id: int) -> tuple[Any, Any]:
    server = FHIRServer(None, base_uri=f"{hospital.fhir}/")
    server.session.headers["Authorization"] = f"Bearer {token}"
    statement = server.capabilityStatement
    patient = Patient.read(str(patient_id), server)
    return statement, patient


@pytest.mark.parametrize("role", ROLES)
async def test_fhirclient_reads_the_statement_and_a_patient(hospital: Hospital, role: str) -> None:
    token = await _login(hospital, role)
    rest = await _rest_one(hospital, token, f"/api/patients/{hospital.patient_id}")
    statement, patient = await asyncio.to_thread(
        _fhirclient_reads, hospital, token, hospital.patient_id
    )
    assert isinstance(statement, CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    assert statement.rest[0].security.service[0].coding[0].code == "OAuth"
    types = {resource.type for resource in statement.rest[0].resource}
    assert types == {"Patient", "Practitioner", "PractitionerRole", "Organization", "Condition"}
    assert patient.id == str(rest["id"])
    assert patient.identifier[0].value == rest["username"]
    assert patient.name[0].text == rest["full_name"]
    assert patient.telecom[0].value == rest["email"]
    if role == "patient":  # another patient is a 404, in REST and FHIR alike
        other = hospital.other_patient_id
        assert await _rest_one(hospital, token, f"/api/patients/{other}") == 404
        with pytest.raises(Exception, match="404"):
            await asyncio.to_thread(_fhirclient_reads, hospital, token, other)
