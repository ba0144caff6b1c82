"""The read path, on both databases, for every GET route of the API:

- each read is one statement (the token is checked in it, auth.caller.scoped) and, when it
  shows patient data or the trail, one append of its audit events (the group commit);
- each answers exactly the response model its route declares (the JSON is written from
  rows, not through the model);
- a record reads as the contract writes it, every field pinned by hand.

A GET route of the app without a row in READS fails `test_every_get_route_is_read_here`.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.audit.repository import chain_head
from app.audit.verify import verify_chain
from app.core.config import Settings
from app.core.routing import all_routes
from app.emergency.models import EmergencyGrant
from tests.conftest import is_postgres
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.records.world import World, build_world
from tests.statements import is_append, recording

# (caller, path template, whether its answer is audited). Ids come from the world.
READS = [
    ("doctor_own", "/api/patient_records/", True),
    ("doctor_own", "/api/patient_records/?patient_id={patient}", True),
    ("patient_owner", "/api/patient_records/{record}", True),
    ("doctor_own", "/api/patient_records/{record}/history", True),
    ("doctor_own", "/api/patients/", True),
    ("doctor_own", "/api/patients/?q=name", True),
    ("patient_owner", "/api/patients/{patient}", True),
    ("admin", "/api/patients/{patient}/access-log", True),
    ("doctor_own", "/api/doctors/", False),
    ("admin", "/api/doctors/{doctor}", False),
    ("patient_owner", "/api/department/", False),
    ("patient_owner", "/api/department/{department}", False),
    ("admin", "/api/department/{department}/doctors", False),
    ("doctor_other", "/api/department/{department}/patients", True),
    ("admin", "/api/audit/", True),
    ("admin", "/api/audit/emergency-access", True),
    ("doctor_own", "/auth/me", False),
]
# Not a one-statement read: the walk of the whole chain, in one transaction of its own.
VERIFY = "/api/audit/verify"


def _url(world: World, template: str) -> str:
    return template.format(
        record=world.record.id,
        patient=world.users["patient_owner"].id,
        doctor=world.users["doctor_own"].id,
        department=world.department.id,
    )


@pytest.fixture
async def world(client: httpx.AsyncClient, db: AsyncSession, settings: Settings) -> World:
    world = await build_world(db)
    # One read, so that the trail and the patient's access log have something to show.
    headers = await world.headers(db, settings, "doctor_own")
    assert (
        await client.get(f"/api/patient_records/{world.record.id}", headers=headers)
    ).status_code == 200
    # A grant, so that the emergency review has a row to show.
    db.add(
        EmergencyGrant(
            doctor_id=world.users["doctor_other"].id,
            patient_id=world.users["patient_owner"].id,
            reason="Unconscious on arrival",
            expires_at=datetime.now(UTC) + timedelta(minutes=30),
        )
    )
    await db.commit()
    return world


@pytest.mark.parametrize(("caller", "path", "audited"), READS)
async def test_each_read_is_one_statement_and_one_append(
    client: httpx.AsyncClient,
    db: AsyncSession,
    engine: AsyncEngine,
    sessionmaker: Any,
    settings: Settings,
    world: World,
    caller: str,
    path: str,
    audited: bool,
) -> None:
    headers = await world.headers(db, settings, caller)
    async with recording(engine, sessionmaker) as statements:
        response = await client.get(_url(world, path), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() != []  # something was shown (so an audited read appends)
    appends = [statement for statement in statements if is_append(statement)]
    reads = [statement for statement in statements if not is_append(statement)]
    assert len(reads) == 1, reads
    assert len(appends) == ((1 if is_postgres() else 3) if audited else 0), appends


def _get_routes(app: Any) -> dict[str, APIRoute]:
    """Every documented GET route by its full path."""
    routes = {}
    for context in all_routes(app):
        route = getattr(context, "route", context)
        if isinstance(route, APIRoute) and "GET" in route.methods and route.include_in_schema:
            routes[context.path] = route
    return routes


def test_every_get_route_is_read_here(app: Any) -> None:
    covered = {path.split("?")[0] for _caller, path, _audited in READS}
    templates = {
        path.replace("{record_id}", "{record}")
        .replace("{patient_id}", "{patient}")
        .replace("{doctor_id}", "{doctor}")
        .replace("{department_id}", "{department}")
        for path in _get_routes(app)
        if path.startswith(("/api", "/auth"))
    }
    assert templates - {VERIFY} == covered


@pytest.mark.parametrize(("caller", "path", "_audited"), READS)
async def test_each_read_answers_exactly_its_response_model(
    app: Any,
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    caller: str,
    path: str,
    _audited: bool,
) -> None:
    """Validated by the declared model and written back, the answer is unchanged: no field
    missing, none extra, every value in the model's own JSON form."""
    response = await client.get(
        _url(world, path), headers=await world.headers(db, settings, caller)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    template = (
        path.split("?")[0]
        .replace("{record}", "{record_id}")
        .replace("{patient}", "{patient_id}")
        .replace("{doctor}", "{doctor_id}")
        .replace("{department}", "{department_id}")
    )
    model = TypeAdapter(_get_routes(app)[template].response_model)
    answer = response.json()
    assert model.dump_python(model.validate_python(answer), mode="json") == answer


async def test_a_record_reads_as_the_contract_writes_it(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    record = await create_record(
        db,
        patient=patient,
        doctor=doctor,
        department=department,
        diagnosis="Hypertension, stage 1",
        observations='Quotes " and \\ and ü→😀 and a\nnewline',
        treatments="Lisinopril 10 mg",
        notes=None,
        created_at=datetime(2026, 11, 27, 9, 30, 15, 120000, tzinfo=UTC),
        updated_at=datetime(2026, 11, 28, tzinfo=UTC),  # a whole second: no fraction written
    )
    expected = {
        "id": record.id,
        "patient_id": patient.id,
        "department_id": department.id,
        "author_id": doctor.id,
        "diagnosis": "Hypertension, stage 1",
        "observations": 'Quotes " and \\ and ü→😀 and a\nnewline',
        "treatments": "Lisinopril 10 mg",
        "notes": None,
        "version": 1,
        "created_at": "2026-11-27T09:30:15.120000Z",
        "updated_at": "2026-11-28T00:00:00Z",
    }
    headers = (await tokens_for(db, settings, doctor)).headers
    one = await client.get(f"/api/patient_records/{record.id}", headers=headers)
    listed = await client.get(f"/api/patient_records/?patient_id={patient.id}", headers=headers)
    history = await client.get(f"/api/patient_records/{record.id}/history", headers=headers)

    assert (one.status_code, one.headers["ETag"]) == (200, '"1"')
    assert one.json() == expected
    assert (listed.status_code, listed.json()) == (200, [expected])
    assert (history.status_code, history.json()) == (200, [expected])


async def test_an_empty_page_appends_nothing_and_leaves_the_chain_intact(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    missing = await client.get("/api/patient_records/999999", headers=headers)  # audited
    assert missing.status_code == 404
    before = await db.scalar(select(func.count()).select_from(AuditEvent))
    head = await chain_head(db)

    response = await client.get("/api/patient_records/", headers=headers)

    assert response.status_code == 200
    assert response.json() == []
    assert await db.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert await chain_head(db) == head
    assert (await verify_chain(db)).ok
