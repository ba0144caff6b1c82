"""Concurrent record writes against a live server, with real commits: If-Match lets exactly
one writer win; without it every update lands as a version; concurrent creates and updates
lose nothing and leave an intact audit chain."""

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from app.records.models import PatientRecord, PatientRecordVersion
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import Live, race

WRITERS = 20


async def one_record_and_its_doctor(live: Live) -> tuple[PatientRecord, dict[str, str]]:
    """A record, and the headers of a doctor of its department."""
    async with live.sessionmaker() as session:
        department = await create_department(session)
        doctor = await create_doctor(session, department)
        patient = await create_patient(session)
        record = await create_record(session, patient=patient, doctor=doctor, department=department)
        return record, (await tokens_for(session, live.settings, doctor)).headers


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


async def test_concurrent_patches_with_one_if_match_have_one_winner(live: Live) -> None:
    record, headers = await one_record_and_its_doctor(live)

    responses = await race(
        *(
            live.client.patch(
                f"/api/patient_records/{record.id}",
                json={"diagnosis": f"Writer {index}"},
                headers={**headers, "If-Match": '"1"'},
            )
            for index in range(WRITERS)
        )
    )
    answered = sorted(response.status_code for response in responses)
    assert answered == [200] + [412] * (WRITERS - 1), answered
    [winner] = [response for response in responses if response.status_code == 200]
    assert winner.json()["version"] == 2
    assert winner.headers["ETag"] == '"2"'

    async with live.sessionmaker() as session:
        current = await session.scalar(select(PatientRecord).where(PatientRecord.id == record.id))
        versions = (
            await session.scalars(
                select(PatientRecordVersion)
                .where(PatientRecordVersion.record_id == record.id)
                .order_by(PatientRecordVersion.version)
            )
        ).all()
    assert current is not None
    assert (current.version, current.diagnosis) == (2, winner.json()["diagnosis"])
    assert [(v.version, v.diagnosis) for v in versions] == [
        (1, "Hypertension"),
        (2, winner.json()["diagnosis"]),
    ]
    history = await live.client.get(f"/api/patient_records/{record.id}/history", headers=headers)
    assert [item["version"] for item in history.json()] == [1, 2]


async def test_concurrent_patches_without_if_match_all_land_as_versions(live: Live) -> None:
    record, headers = await one_record_and_its_doctor(live)

    responses = await asyncio.gather(
        *(
            live.client.patch(
                f"/api/patient_records/{record.id}",
                json={"notes": f"note {index}"},
                headers=headers,
            )
            for index in range(WRITERS)
        )
    )
    assert {response.status_code for response in responses} == {200}
    returned = sorted(response.json()["version"] for response in responses)
    assert returned == list(range(2, WRITERS + 2))
    async with live.sessionmaker() as session:
        versions = (
            await session.scalars(
                select(PatientRecordVersion.version)
                .where(PatientRecordVersion.record_id == record.id)
                .order_by(PatientRecordVersion.version)
            )
        ).all()
    assert list(versions) == list(range(1, WRITERS + 2))


@pytest.mark.postgres_only  # row locks and real concurrency
async def test_concurrent_record_writes_lose_nothing(live: Live) -> None:
    async with live.sessionmaker() as session:
        department = await create_department(session)
        doctors = [await create_doctor(session, department) for _ in range(2)]
        patients = [await create_patient(session) for _ in range(3)]
        headers = [(await tokens_for(session, live.settings, d)).headers for d in doctors]
        admin_headers = (
            await tokens_for(session, live.settings, await create_admin(session))
        ).headers
    writes = 30

    created = await race(
        *(
            live.client.post(
                "/api/patient_records/",
                json={"patient_id": patients[n % 3].id, "diagnosis": f"Case {n}"},
                headers=headers[n % 2],
            )
            for n in range(writes)
        )
    )

    assert statuses(created) == {201: writes}
    ids = {response.json()["id"] for response in created}
    assert len(ids) == writes
    assert await live.scalar(select(func.count()).select_from(PatientRecord)) == writes
    assert await live.scalar(select(func.count()).select_from(PatientRecordVersion)) == writes

    updated = await race(
        *(
            live.client.patch(
                f"/api/patient_records/{record_id}",
                json={"notes": "second look"},
                headers=headers[n % 2],
            )
            for n, record_id in enumerate(sorted(ids))
        )
    )
    assert statuses(updated) == {200: writes}
    assert await live.scalar(select(func.count()).select_from(PatientRecordVersion)) == 2 * writes

    verify = await live.client.get("/api/audit/verify", headers=admin_headers)
    assert verify.status_code == 200
    assert verify.json()["ok"] is True
