"""Read requests on a real engine: on PostgreSQL each statement commits on its own
(autocommit), so the audit append must still chain, and verify must still stream."""

import asyncio

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import Live


async def test_concurrent_reads_leave_one_valid_chain(live: Live) -> None:
    async with live.sessionmaker() as db:
        department = await create_department(db)
        doctor = await create_doctor(db, department)
        patient = await create_patient(db)
        records = [
            await create_record(db, patient=patient, doctor=doctor, department=department)
            for _ in range(3)
        ]
        doctor_headers = (await tokens_for(db, live.settings, doctor)).headers
        admin_headers = (await tokens_for(db, live.settings, await create_admin(db))).headers

    async def read(index: int) -> int:
        record = records[index % len(records)]
        path = f"/api/patient_records/{record.id}" if index % 2 else "/api/patient_records/"
        return (await live.client.get(path, headers=doctor_headers)).status_code

    statuses = await asyncio.gather(*(read(index) for index in range(30)))
    assert statuses == [200] * 30
    hidden = await live.client.get("/api/patient_records/999999", headers=doctor_headers)
    assert hidden.status_code == 404

    async with live.sessionmaker() as db:
        reads = await db.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.actor_id == doctor.id)
        )
    assert reads == 31  # one per read (one patient per list page), and the refusal

    verified = await live.client.get("/api/audit/verify", headers=admin_headers)
    assert verified.status_code == 200
    assert verified.json() == {"ok": True, "events": 31}
