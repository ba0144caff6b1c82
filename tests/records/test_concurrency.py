"""Concurrent updates against a live server, with real commits: If-Match lets exactly one
writer win; none is lost."""

import asyncio

from sqlalchemy import select

from app.records.models import PatientRecord, PatientRecordVersion
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import Live

WRITERS = 20


async def one_record_and_its_doctor(live: Live) -> tuple[PatientRecord, dict[str, str]]:
    """A record, and the headers of a doctor of its department."""
    async with live.sessionmaker() as session:
        department = await create_department(session)
        doctor = await create_doctor(session, department)
        patient = await create_patient(session)
        record = await create_record(session, patient=patient, doctor=doctor, department=department)
        return record, (await tokens_for(session, live.settings, doctor)).headers


async def test_concurrent_patches_with_one_etag_have_one_winner(live: Live) -> None:
    record, headers = await one_record_and_its_doctor(live)

    responses = await asyncio.gather(
        *(
            live.client.patch(
                f"/api/patient_records/{record.id}",
                json={"diagnosis": f"Writer {index}"},
                headers={**headers, "If-Match": '"1"'},
            )
            for index in range(WRITERS)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (WRITERS - 1), statuses
    [winner] = [r.json() for r in responses if r.status_code == 200]

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
    assert (current.version, current.diagnosis) == (2, winner["diagnosis"])
    assert [(v.version, v.diagnosis) for v in versions] == [
        (1, "Hypertension"),
        (2, winner["diagnosis"]),
    ]


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
