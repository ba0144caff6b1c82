"""What the bench measures: every endpoint, the ceiling it is compared with, its target.

(b) one row, (d) 50 rows and (w) one committed INSERT are bench/ceiling.py's. A single
object is judged against (b), a page of 50 against (d), a versioned and audited write
against (w); the login is argon2 bound and has no ceiling (its check is the login storm).
"""

import json
from dataclasses import dataclass
from typing import Any

CEILINGS = {
    "b": "ceiling (b) one row",
    "d": "ceiling (d) 50 rows",
    "w": "ceiling (w) one write",
}
# The ratio each kind of endpoint must reach to its ceiling.
ONE, PAGE, HOT, WRITE = 0.6, 0.6, 0.7, 0.5

FHIR = "/fhir/R4"
PATCH_BODY = '{"notes": "bench note {n}"}'  # {n}: a new value each request (bench/wrk.py)


@dataclass(frozen=True)
class Target:
    name: str
    server: str  # "api" or "ceiling"
    path: str
    reference: str | None  # "b", "d" or "w": the ceiling its ratio is taken against
    method: str = "GET"
    body: str | None = None
    content_type: str | None = None
    caller: str = "doctor"  # whose token it sends: "doctor", "admin" or none ("")
    target: float | None = None  # the ratio it must reach
    flat: bool = False  # also compared between the small and the large seed
    ids: tuple[int, ...] = ()  # the path's last segment, one of these at each request in turn


def _get(name: str, path: str, reference: str, target: float, caller: str = "doctor") -> Target:
    return Target(name, "api", path, reference, caller=caller, target=target, flat=True)


def targets(f: Any) -> list[Target]:
    """Every endpoint measured, for the fixture `f` (bench.run.Fixture)."""
    login = json.dumps({"username": f.doctor_username, "password": f.password})
    record = json.dumps(
        {
            "patient_id": f.patient_id,
            "diagnosis": "Hypertension, stage 1 " * 15,
            "observations": "Blood pressure 145/95 at rest " * 11,
            "treatments": "Lifestyle changes, follow-up in four weeks " * 8,
        }
    )
    dept = f.department_id
    return [
        Target(CEILINGS["b"], "ceiling", f"/b/{f.record_id}", None),
        Target(CEILINGS["d"], "ceiling", f"/d?department_id={dept}", None),
        Target(CEILINGS["w"], "ceiling", "/w", None, "POST", record, "application/json"),
        _get("GET /api/patient_records/{id}", f"/api/patient_records/{f.record_id}", "b", HOT),
        _get("GET /api/patient_records/?limit=50", "/api/patient_records/?limit=50", "d", HOT),
        _get(
            "GET /api/patient_records/{id}/history",
            f"/api/patient_records/{f.history_id}/history",
            "d",
            PAGE,
        ),
        _get("GET /api/patients/{id}", f"/api/patients/{f.patient_id}", "b", ONE),
        _get("GET /api/patients/?q=", f"/api/patients/?q={f.query}", "d", PAGE),
        _get("GET /api/patients/?limit=50", "/api/patients/?limit=50", "d", PAGE),
        _get("GET /api/doctors/{id}", f"/api/doctors/{f.doctor_id}", "b", ONE),
        _get("GET /api/doctors/?limit=50", "/api/doctors/?limit=50", "d", PAGE),
        _get("GET /api/department/{id}", f"/api/department/{dept}", "b", ONE),
        _get("GET /api/department/", "/api/department/", "d", PAGE),
        _get(
            "GET /api/department/{id}/doctors?limit=50",
            f"/api/department/{dept}/doctors?limit=50",
            "d",
            PAGE,
        ),
        _get(
            "GET /api/department/{id}/patients?limit=50",
            f"/api/department/{dept}/patients?limit=50",
            "d",
            PAGE,
        ),
        _get("GET /api/audit/?limit=50", "/api/audit/?limit=50", "d", PAGE, "admin"),
        _get(
            "GET /api/patients/{id}/access-log?limit=50",
            f"/api/patients/{f.patient_id}/access-log?limit=50",
            "d",
            PAGE,
            "admin",
        ),
        _get("GET /auth/me", "/auth/me", "b", ONE),
        _get(f"GET {FHIR}/Condition/{{id}}", f"{FHIR}/Condition/{f.record_id}", "b", ONE),
        _get(
            f"GET {FHIR}/Condition?patient=&_count=50",
            f"{FHIR}/Condition?patient={f.patient_id}&_count=50",
            "d",
            PAGE,
        ),
        _get(f"GET {FHIR}/Patient/{{id}}", f"{FHIR}/Patient/{f.patient_id}", "b", ONE),
        Target(
            "POST /api/patient_records/",
            "api",
            "/api/patient_records/",
            "w",
            "POST",
            record,
            "application/json",
            target=WRITE,
        ),
        Target(
            "PATCH /api/patient_records/{id}",
            "api",
            f"/api/patient_records/{f.patch_ids[0]}",
            "w",
            "PATCH",
            PATCH_BODY,
            "application/json",
            target=WRITE,
            ids=tuple(f.patch_ids),
        ),
        Target(
            "POST /auth/login/",
            "api",
            "/auth/login/",
            None,
            "POST",
            login,
            "application/json",
            caller="",
        ),
    ]
