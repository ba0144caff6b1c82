"""The hot reads (records.reads on PostgreSQL, the service elsewhere) answer exactly what
the response model would, and on PostgreSQL each is one read and one audit append."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.models import AuditEvent
from app.audit.repository import chain_head
from app.audit.verify import verify_chain
from app.core.config import Settings
from app.records.models import PatientRecord
from app.records.schemas import RecordPublic
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)


@pytest.fixture
async def record_and_reader(db: AsyncSession, settings: Settings) -> tuple[PatientRecord, Any]:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    record = await create_record(
        db,
        patient=await create_patient(db),
        doctor=doctor,
        department=department,
        notes=None,
        observations='Quotes " and \\ and ü→😀 and a\nnewline',
    )
    return record, (await tokens_for(db, settings, doctor)).headers


def expected(record: PatientRecord) -> dict[str, Any]:
    return RecordPublic.model_validate(record).model_dump(mode="json")


@pytest.mark.parametrize(
    "instant",
    [datetime(2026, 11, 27, 9, 30, 15, 120000, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)],
    ids=["with microseconds", "a whole second"],
)
async def test_a_record_reads_as_its_response_model(
    client: httpx.AsyncClient,
    db: AsyncSession,
    record_and_reader: tuple[PatientRecord, Any],
    instant: datetime,
) -> None:
    record, headers = record_and_reader
    await db.execute(
        update(PatientRecord)
        .where(PatientRecord.id == record.id)
        .values(created_at=instant, updated_at=instant)
    )
    await db.commit()
    await db.refresh(record)

    one = await client.get(f"/api/patient_records/{record.id}", headers=headers)
    listed = await client.get(
        f"/api/patient_records/?patient_id={record.patient_id}", headers=headers
    )

    assert one.status_code == 200
    assert one.headers["content-type"] == "application/json"
    assert one.headers["ETag"] == '"1"'
    assert one.json() == expected(record)
    assert listed.status_code == 200
    assert listed.json() == [expected(record)]


@pytest.mark.postgres_only  # the one-statement reads are PostgreSQL's
async def test_each_hot_read_is_one_read_and_one_append(
    client: httpx.AsyncClient,
    sessionmaker: Any,
    record_and_reader: tuple[PatientRecord, Any],
) -> None:
    record, headers = record_and_reader
    bind: AsyncConnection = sessionmaker.kw["bind"]
    driver = (await bind.get_raw_connection()).driver_connection
    statements: list[str] = []

    def log(query: Any) -> None:
        statements.append(query.query)

    driver.add_query_logger(log)
    try:
        for path in (
            f"/api/patient_records/{record.id}",
            "/api/patient_records/",
            f"/api/patient_records/?patient_id={record.patient_id}",
            f"/api/patient_records/{record.id + 1000}",  # a refusal, audited in it too
        ):
            statements.clear()
            response = await client.get(path, headers=headers)
            await asyncio.sleep(0)  # the driver reports each statement on the next loop turn
            assert response.status_code in (200, 404)
            assert len(statements) == 2, (path, statements)
            read, append = statements
            assert "audit" not in read
            assert "INSERT INTO audit_events" in append
    finally:
        driver.remove_query_logger(log)


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
