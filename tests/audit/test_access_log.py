"""GET /api/patients/{id}/access-log: who touched the patient's data, for him and admins."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.config import Settings
from app.core.context import RequestMeta
from app.transaction import commit
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)

FIELDS = {
    "at",
    "actor_id",
    "actor_name",
    "actor_role",
    "department_id",
    "action",
    "outcome",
    "emergency",
}


def log_url(patient_id: int, query: str = "") -> str:
    return f"/api/patients/{patient_id}/access-log{query}"


async def test_patient_sees_every_access_newest_first(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    cardiology, oncology = await create_department(db), await create_department(db)
    own_doctor = await create_doctor(db, cardiology, full_name="Dr. Own")
    outsider = await create_doctor(db, oncology, full_name="Dr. Outsider")
    patient = await create_patient(db)
    record = await create_record(db, patient=patient, doctor=own_doctor, department=cardiology)
    own = await tokens_for(db, settings, own_doctor)
    other = await tokens_for(db, settings, outsider)
    mine = await tokens_for(db, settings, patient)

    # A department read, then an outsider's grant and a read under it.
    record_url = f"/api/patient_records/{record.id}"
    assert (await client.get(record_url, headers=own.headers)).status_code == 200
    grant = await client.post(
        f"/api/patients/{patient.id}/emergency-access",
        json={"reason": "Collapsed in the waiting room"},
        headers=other.headers,
    )
    assert grant.status_code == 201
    assert (await client.get(record_url, headers=other.headers)).status_code == 200

    response = await client.get(log_url(patient.id), headers=mine.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    entries = response.json()
    assert all(set(entry) == FIELDS for entry in entries)
    summary = [(e["actor_name"], e["action"], e["outcome"], e["emergency"]) for e in entries]
    assert summary == [
        ("Dr. Outsider", "record.read", "allowed", True),
        ("Dr. Outsider", "emergency.grant", "allowed", True),
        ("Dr. Own", "record.read", "allowed", False),
    ]
    newest = entries[0]
    assert (newest["actor_id"], newest["actor_role"], newest["department_id"]) == (
        outsider.id,
        "doctor",
        oncology.id,
    )
    assert entries[2]["department_id"] == cardiology.id
    assert entries[0]["at"] >= entries[1]["at"] >= entries[2]["at"]

    # Reading the log is an access too: it shows up in the next read of it.
    again = (await client.get(log_url(patient.id), headers=mine.headers)).json()
    assert (again[0]["actor_id"], again[0]["action"], again[0]["actor_role"]) == (
        patient.id,
        "patient.access_log",
        "patient",
    )


async def test_admin_reads_any_patients_log(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin_user = await create_admin(db, full_name="The Admin")
    admin = await tokens_for(db, settings, admin_user)
    patient = await create_patient(db)
    response = await client.get(log_url(patient.id), headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == []
    entry = (await client.get(log_url(patient.id), headers=admin.headers)).json()[0]
    assert (entry["actor_name"], entry["actor_role"], entry["department_id"]) == (
        "The Admin",
        "admin",
        None,
    )


async def test_another_patient_gets_404_and_the_attempt_is_logged(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    patient = await create_patient(db)
    prying = await create_patient(db)
    tokens = await tokens_for(db, settings, prying)
    response = await client.get(log_url(patient.id), headers=tokens.headers)
    assert response.status_code == 404
    # Same answer as for an id that is no patient at all.
    assert (await client.get(log_url(10**12), headers=tokens.headers)).status_code == 404
    own = (
        await client.get(
            log_url(patient.id), headers=(await tokens_for(db, settings, patient)).headers
        )
    ).json()
    assert [(e["actor_id"], e["outcome"]) for e in own] == [(prying.id, "denied")]


async def test_doctor_gets_403(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    tokens = await tokens_for(db, settings, doctor)
    patient = await create_patient(db)
    for patient_id in (patient.id, 10**12):
        response = await client.get(log_url(patient_id), headers=tokens.headers)
        assert response.status_code == 403
    forbidden = (await db.scalars(select(AuditEvent).where(AuditEvent.actor_id == doctor.id))).all()
    assert [e.action for e in forbidden] == ["access.forbidden", "access.forbidden"]
    assert (await client.get(log_url(patient.id))).status_code == 401


@pytest.mark.parametrize("patient_id", ["doctor", "unknown"])
async def test_admin_gets_404_for_an_id_that_is_no_patient(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, patient_id: str
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    target = (await create_doctor(db)).id if patient_id == "doctor" else 10**12
    assert (await client.get(log_url(target), headers=admin.headers)).status_code == 404
    assert (await client.get(log_url(0), headers=admin.headers)).status_code == 422
    assert (await client.get(log_url(2**63), headers=admin.headers)).status_code == 422


async def test_pages_by_descending_id(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """Events naming the patient alone and pages naming him among others, interleaved:
    one walk, newest first, each exactly once."""
    patient, other = await create_patient(db), await create_patient(db)
    tokens = await tokens_for(db, settings, patient)
    for index in range(6):
        audit.record(
            db,
            meta=RequestMeta(None, None),
            actor_id=9_000_000_000 + index,
            action="record.read" if index % 3 else "record.list",
            resource_type="record",
            patient_id=patient.id if index % 3 else None,
            patients=() if index % 3 else (patient.id, other.id),
            emergency_grant_id=index if index % 2 else None,
        )
        audit.record(  # another patient's: never in this log
            db, meta=RequestMeta(None, None), actor_id=1, action="record.read",
            resource_type="record", patient_id=other.id,
        )  # fmt: skip
        await commit(db)
    seen: list[Any] = []
    url = log_url(patient.id, "?limit=2")
    while url:
        response = await client.get(url, headers=tokens.headers)
        assert response.status_code == 200
        assert len(response.json()) == 2
        seen.extend(response.json())
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    # Each page read is itself logged, but after the walk began: the walk sees the 6 events.
    assert [(e["actor_id"] - 9_000_000_000, e["action"]) for e in seen] == [
        (5, "record.read"),
        (4, "record.read"),
        (3, "record.list"),
        (2, "record.read"),
        (1, "record.read"),
        (0, "record.list"),
    ]
    assert [e["emergency"] for e in seen] == [True, False, True, False, True, False]
