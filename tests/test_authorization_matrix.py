"""The whole role matrix of the contract, as one table walked through HTTP.

Every route under /api and /fhir and every kind of caller has an expected status here
(from API.md); the /auth routes, open to anyone or to any signed-in caller whatever his
role, are tested in tests/auth and tests/mfa. After each refused write the object is read
again from the database to prove that nothing changed. A route missing from the table
fails `test_every_route_is_covered`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import TotpCredential
from app.core.config import Settings
from app.departments.models import Department
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord, PatientRecordVersion
from app.users.models import DoctorProfile, User
from tests.factories import enrol_confirmed
from tests.records.world import CALLERS, World, build_world, count

Snapshot = Callable[[AsyncSession, World], Awaitable[Any]]


def expect(
    admin: int,
    doctor_own: int,
    doctor_other: int,
    doctor_none: int,
    patient_owner: int,
    patient_other: int,
) -> dict[str, int]:
    """Expected statuses per caller; without a token every route here is a 401."""
    return {
        "admin": admin,
        "doctor_own": doctor_own,
        "doctor_other": doctor_other,
        "doctor_none": doctor_none,
        "patient_owner": patient_owner,
        "patient_other": patient_other,
        "anonymous": 401,
    }


async def _doctor_profile(db: AsyncSession, world: World) -> Any:
    query = select(
        DoctorProfile.department_id, DoctorProfile.specialization, DoctorProfile.license_number
    ).where(DoctorProfile.user_id == world.users["doctor_own"].id)
    return (await db.execute(query)).one()


async def _patient_user(db: AsyncSession, world: World) -> Any:
    query = select(User.is_active, User.tokens_valid_after).where(
        User.id == world.users["patient_owner"].id
    )
    return (await db.execute(query)).one()


async def _patient_factor(db: AsyncSession, world: World) -> Any:
    """The patient's authenticator (enrolled for this row), and his logins' freshness."""
    patient = world.users["patient_owner"]
    if await db.get(TotpCredential, patient.id) is None:
        await enrol_confirmed(db, patient)
    return await count(db, TotpCredential, TotpCredential.user_id == patient.id), (
        await _patient_user(db, world)
    )


async def _record_counts(db: AsyncSession, _world: World) -> Any:
    return await count(db, PatientRecord), await count(db, PatientRecordVersion)


async def _record(db: AsyncSession, world: World) -> Any:
    query = select(
        PatientRecord.diagnosis,
        PatientRecord.notes,
        PatientRecord.version,
        PatientRecord.author_id,
        PatientRecord.updated_at,
    ).where(PatientRecord.id == world.record.id)
    return (await db.execute(query)).one(), await count(db, PatientRecordVersion)


async def _departments(db: AsyncSession, _world: World) -> Any:
    query = select(Department.id, Department.name, Department.description)
    return (await db.execute(query.order_by(Department.id))).all()


async def _grants(db: AsyncSession, _world: World) -> Any:
    return await count(db, EmergencyGrant)


@dataclass(frozen=True)
class Rule:
    expected: dict[str, int]
    body: dict[str, Any] | None = None
    # Which department `{department_id}` names (the emptied one for DELETE).
    department: str = "department"
    snapshot: Snapshot | None = None  # for writes: what must not change when refused
    headers: dict[str, str] = field(default_factory=dict)
    resource: str = "record_id"  # which id a FHIR path's `{resource_id}` names


def anyone(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


FHIR = "/fhir/R4"


POLICY: dict[tuple[str, str], Rule] = {
    # Users and staff
    ("GET", "/api/doctors/"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("GET", "/api/doctors/{doctor_id}"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("PATCH", "/api/doctors/{doctor_id}"): Rule(
        expect(200, 403, 403, 403, 403, 403),
        body={"specialization": "Changed", "license_number": "NEW-1"},
        snapshot=_doctor_profile,
    ),
    ("GET", "/api/patients/"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("GET", "/api/patients/{patient_id}"): Rule(expect(200, 200, 200, 200, 200, 404)),
    ("PATCH", "/api/users/{user_id}"): Rule(
        expect(200, 403, 403, 403, 403, 403), body={"is_active": False}, snapshot=_patient_user
    ),
    # The patient has an authenticator: a reset removes it and ends his logins.
    ("DELETE", "/api/users/{user_id}/mfa"): Rule(
        expect(204, 403, 403, 403, 403, 403), snapshot=_patient_factor
    ),
    # Patient records
    ("GET", "/api/patient_records/"): Rule(expect(403, 200, 200, 200, 200, 200)),
    ("POST", "/api/patient_records/"): Rule(
        expect(403, 201, 201, 409, 403, 403),
        body={"patient_id": "{patient_id}", "diagnosis": "Asthma"},
        snapshot=_record_counts,
    ),
    ("GET", "/api/patient_records/{record_id}"): Rule(expect(403, 200, 404, 404, 200, 404)),
    ("PATCH", "/api/patient_records/{record_id}"): Rule(
        expect(403, 200, 404, 404, 403, 403),
        body={"diagnosis": "Revised", "notes": "changed"},
        headers={"If-Match": '"1"'},
        snapshot=_record,
    ),
    ("GET", "/api/patient_records/{record_id}/history"): Rule(expect(403, 200, 404, 404, 200, 404)),
    # Departments
    ("GET", "/api/department/"): Rule(expect(200, 200, 200, 200, 200, 200)),
    ("GET", "/api/department/{department_id}"): Rule(expect(200, 200, 200, 200, 200, 200)),
    ("POST", "/api/department/"): Rule(
        expect(201, 403, 403, 403, 403, 403),
        body={"name": "Matrix Unit", "location": "Wing C"},
        snapshot=_departments,
    ),
    ("PATCH", "/api/department/{department_id}"): Rule(
        expect(200, 403, 403, 403, 403, 403),
        body={"name": "Renamed Unit", "description": "changed"},
        snapshot=_departments,
    ),
    ("DELETE", "/api/department/{department_id}"): Rule(
        expect(204, 403, 403, 403, 403, 403),
        department="empty_department",
        snapshot=_departments,
    ),
    ("GET", "/api/department/{department_id}/doctors"): Rule(expect(200, 200, 200, 200, 403, 403)),
    # Every doctor lists any department's patients (a consult needs to see whom it treats).
    ("GET", "/api/department/{department_id}/patients"): Rule(expect(403, 200, 200, 200, 403, 403)),
    # Audit
    ("GET", "/api/audit/"): Rule(expect(200, 403, 403, 403, 403, 403)),
    ("GET", "/api/audit/verify"): Rule(expect(200, 403, 403, 403, 403, 403)),
    ("GET", "/api/audit/emergency-access"): Rule(expect(200, 403, 403, 403, 403, 403)),
    # Emergency access and the patient's access log
    ("POST", "/api/patients/{patient_id}/emergency-access"): Rule(
        expect(403, 201, 201, 201, 403, 403),
        body={"reason": "Unconscious on arrival, no relatives reachable"},
        snapshot=_grants,
    ),
    ("GET", "/api/patients/{patient_id}/access-log"): Rule(expect(200, 403, 403, 403, 200, 404)),
    # FHIR (API.md, section 5): the same readers as the REST twins
    ("GET", f"{FHIR}/metadata"): Rule(anyone(200)),
    ("GET", f"{FHIR}/Condition/{{resource_id}}"): Rule(expect(403, 200, 404, 404, 200, 404)),
    ("GET", f"{FHIR}/Condition/{{resource_id}}/_history"): Rule(
        expect(403, 200, 404, 404, 200, 404)
    ),
    ("GET", f"{FHIR}/Condition/{{resource_id}}/_history/{{version_id}}"): Rule(
        expect(403, 200, 404, 404, 200, 404)
    ),
    ("GET", f"{FHIR}/Condition"): Rule(expect(403, 200, 200, 200, 200, 200)),
    ("POST", f"{FHIR}/Condition/_search"): Rule(expect(403, 200, 200, 200, 200, 200)),
    ("GET", f"{FHIR}/Patient/{{resource_id}}"): Rule(
        expect(200, 200, 200, 200, 200, 404), resource="patient_id"
    ),
    # A patient's search finds himself only.
    ("GET", f"{FHIR}/Patient"): Rule(expect(200, 200, 200, 200, 200, 200)),
    ("POST", f"{FHIR}/Patient/_search"): Rule(expect(200, 200, 200, 200, 200, 200)),
    ("GET", f"{FHIR}/Practitioner/{{resource_id}}"): Rule(
        expect(200, 200, 200, 200, 403, 403), resource="doctor_id"
    ),
    ("GET", f"{FHIR}/Practitioner"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("POST", f"{FHIR}/Practitioner/_search"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("GET", f"{FHIR}/PractitionerRole/{{resource_id}}"): Rule(
        expect(200, 200, 200, 200, 403, 403), resource="doctor_id"
    ),
    ("GET", f"{FHIR}/PractitionerRole"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("POST", f"{FHIR}/PractitionerRole/_search"): Rule(expect(200, 200, 200, 200, 403, 403)),
    ("GET", f"{FHIR}/Organization/{{resource_id}}"): Rule(
        expect(200, 200, 200, 200, 200, 200), resource="department_id"
    ),
    ("GET", f"{FHIR}/Organization"): Rule(expect(200, 200, 200, 200, 200, 200)),
    ("POST", f"{FHIR}/Organization/_search"): Rule(expect(200, 200, 200, 200, 200, 200)),
}

# Routes that no role decides (public, any signed-in caller, operational): outside the matrix.
UNCOVERED_PREFIXES = (
    "/auth/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
)


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _ids(world: World, rule: Rule) -> dict[str, int]:
    department: Department = getattr(world, rule.department)
    ids = {
        "doctor_id": world.users["doctor_own"].id,
        "patient_id": world.users["patient_owner"].id,
        "user_id": world.users["patient_owner"].id,
        "record_id": world.record.id,
        "department_id": department.id,
        "version_id": 1,
    }
    return {**ids, "resource_id": ids[rule.resource]}


CASES = [
    pytest.param(method, path, caller, id=f"{method} {path} as {caller}")
    for (method, path) in POLICY
    for caller in CALLERS
]


async def _call(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    method: str,
    path: str,
    caller: str,
    rule: Rule,
) -> httpx.Response:
    ids = _ids(world, rule)
    headers = {**await world.headers(db, settings, caller), **rule.headers}
    body = _fill(rule.body, ids)
    return await client.request(method, path.format(**ids), json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "caller"), CASES)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    method: str,
    path: str,
    caller: str,
) -> None:
    world = await build_world(db)
    rule = POLICY[(method, path)]
    before = await rule.snapshot(db, world) if rule.snapshot else None

    response = await _call(client, db, settings, world, method, path, caller, rule)

    assert response.status_code == rule.expected[caller], response.text
    if rule.snapshot is not None and response.status_code >= 400:
        assert await rule.snapshot(db, world) == before, "a refused write changed the object"


@pytest.mark.parametrize(("method", "path"), list(POLICY))
async def test_twin_path_answers_the_same(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, method: str, path: str
) -> None:
    """With or without the trailing slash, the same answer (no redirect)."""
    world = await build_world(db)
    twin = path[:-1] if path.endswith("/") else path + "/"
    caller = "doctor_own"
    rule = POLICY[(method, path)]
    response = await _call(client, db, settings, world, method, twin, caller, rule)
    assert response.status_code == rule.expected[caller], response.text


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/"


def test_every_route_is_covered(app: Any) -> None:
    covered = {(method, _normalise(path)) for method, path in POLICY}
    routes = {
        (method, _normalise(route.path_format))
        for route in app.routes
        if isinstance(route, APIRoute) and not route.path.startswith(UNCOVERED_PREFIXES)
        for method in route.methods
    }
    missing = sorted(routes - covered)
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    schema_paths = {
        (method.upper(), _normalise(path))
        for path, operations in app.openapi()["paths"].items()
        if not path.startswith(UNCOVERED_PREFIXES)
        for method in operations
    }
    assert not sorted(schema_paths - covered)
