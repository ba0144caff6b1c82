"""A page of a list is one audit event: one patient named in `patient_id`, several in
`patient_ids` and linked to the event (audit.links), so that each patient's access log
shows the page."""

from collections.abc import Collection
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.repository import NewEvent, append
from app.audit.verify import verify_chain
from app.core.config import Settings
from app.core.context import RequestMeta
from app.users.models import User
from tests.audit.helpers import patient_links, write_events
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.records.world import events, next_page

RECORDS = "/api/patient_records/"


async def access_log(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, patient: User
) -> list[dict[str, Any]]:
    headers = (await tokens_for(db, settings, patient)).headers
    response = await client.get(f"/api/patients/{patient.id}/access-log", headers=headers)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_a_department_page_of_three_patients_is_one_event_in_each_access_log(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    department, elsewhere = await create_department(db), await create_department(db)
    doctor = await create_doctor(db, department, full_name="Dr. Ward")
    first, second, third, outsider = [await create_patient(db) for _ in range(4)]
    # Records in an order other than the patients' ids: the event names them sorted, once.
    for patient in (third, first, second, third):
        await create_record(db, patient=patient, doctor=doctor, department=department)
    await create_record(
        db, patient=outsider, doctor=await create_doctor(db, elsewhere), department=elsewhere
    )
    headers = (await tokens_for(db, settings, doctor)).headers

    response = await client.get(RECORDS, headers=headers)

    assert response.status_code == 200
    assert len(response.json()) == 4
    [event] = await events(db, "record.list")
    assert (event.actor_id, event.department_id, event.outcome) == (
        doctor.id,
        department.id,
        "allowed",
    )
    assert (event.resource_type, event.resource_id) == ("record", None)
    assert (event.patient_id, event.emergency_grant_id) == (None, None)
    assert event.patient_ids == f"[{first.id},{second.id},{third.id}]"
    assert await patient_links(db) == [(event.id, p.id) for p in (first, second, third)]
    for patient in (first, second, third):
        entries = await access_log(client, db, settings, patient)
        assert [
            (e["actor_id"], e["actor_name"], e["action"], e["outcome"], e["emergency"])
            for e in entries
        ] == [(doctor.id, "Dr. Ward", "record.list", "allowed", False)]
        assert (entries[0]["actor_role"], entries[0]["department_id"]) == ("doctor", department.id)
    assert await access_log(client, db, settings, outsider) == []
    assert (await verify_chain(db)).ok


async def test_a_patients_own_list_is_one_event_naming_him(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    for _ in range(3):
        await create_record(db, patient=patient, doctor=doctor, department=department)
    headers = (await tokens_for(db, settings, patient)).headers

    response = await client.get(RECORDS, headers=headers)

    assert response.status_code == 200
    assert len(response.json()) == 3
    [event] = await events(db, "record.list")
    assert (event.actor_id, event.patient_id, event.patient_ids) == (patient.id, patient.id, None)
    assert await patient_links(db) == []
    [entry] = await access_log(client, db, settings, patient)
    assert (entry["actor_id"], entry["action"], entry["outcome"]) == (
        patient.id,
        "record.list",
        "allowed",
    )


async def test_each_page_is_one_event_naming_its_patients(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patients = [await create_patient(db) for _ in range(3)]
    for patient in patients:
        await create_record(db, patient=patient, doctor=doctor, department=department)
    headers = (await tokens_for(db, settings, doctor)).headers

    first = await client.get(f"{RECORDS}?limit=2", headers=headers)
    assert first.status_code == 200
    second = await client.get(str(next_page(first.headers.get("Link"))), headers=headers)
    assert second.status_code == 200
    assert next_page(second.headers.get("Link")) is None

    pages = await events(db, "record.list")
    assert [(e.patient_id, e.patient_ids) for e in pages] == [
        (None, f"[{patients[0].id},{patients[1].id}]"),
        (patients[2].id, None),
    ]


@pytest.mark.parametrize("per_transaction", [1, 3], ids=["one event", "several events"])
async def test_the_patients_of_every_append_naming_several_are_linked(
    db: AsyncSession, per_transaction: int
) -> None:
    """The session's appends: on PostgreSQL the one-event and the many-event statements."""
    await write_events(db, 3, per_transaction=per_transaction, patients=[12, 10, 11, 10])
    await write_events(db, 3, per_transaction=per_transaction, patient_id=10)
    page_events = [e.id for e in await events(db, "record.read") if e.patient_ids]
    assert len(page_events) == 3
    assert await patient_links(db) == [(e, p) for e in page_events for p in (10, 11, 12)]
    assert (await verify_chain(db)).ok


async def test_the_patients_of_each_event_of_one_append_are_linked(
    db: AsyncSession,
) -> None:
    meta = RequestMeta(ip="192.0.2.1", request_id="batch")

    def event(patient_id: int | None = None, patients: Collection[int] = ()) -> NewEvent:
        return audit.new_event(
            meta=meta, actor_id=1, department_id=None, action="record.list", resource_type="record",
            patient_id=patient_id, patients=patients,
        )  # fmt: skip

    batch = [event(patients=[3, 1, 2]), event(patient_id=4), event(), event(patients=[5, 6])]
    await append(await db.connection(), batch)  # as the group commit appends

    stored = await events(db, "record.list")
    assert [(e.patient_id, e.patient_ids) for e in stored] == [
        (None, "[1,2,3]"),
        (4, None),
        (None, None),
        (None, "[5,6]"),
    ]
    first, *_, last = stored
    assert await patient_links(db) == [(first.id, 1), (first.id, 2), (first.id, 3)] + [
        (last.id, 5),
        (last.id, 6),
    ]
    assert (await verify_chain(db)).ok
