"""Every list endpoint runs the same number of SQL statements for a page of 1 and of 50.

Statements are counted as the database receives them (tests.statements). The audit
trail's append is counted apart: it writes any number of events in a constant number of
statements (one on PostgreSQL, three on SQLite), so it is bounded rather than compared.
"""

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.emergency.models import EmergencyGrant
from app.records.models import PatientRecord
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.statements import is_append, recording

ITEMS = 55  # more than the larger page, so both pages have a next one
MAX_AUDIT_STATEMENTS = 3


def counts(statements: list[str]) -> dict[str, int]:
    """How many of the statements wrote the audit trail, and how many did anything else."""
    audit = sum(is_append(statement) for statement in statements)
    return {"data": len(statements) - audit, "audit": audit}


@pytest.fixture
async def hospital(db: AsyncSession, settings: Settings) -> dict[str, Any]:
    """Enough of everything for two full pages of 50, in one department."""
    department = await create_department(db)
    elsewhere = await create_department(db)
    doctor = await create_doctor(db, department)
    visitor = await create_doctor(db, elsewhere)
    for _ in range(ITEMS):
        await create_department(db)
        await create_doctor(db, department)
    patients = [await create_patient(db) for _ in range(ITEMS)]
    records = [
        await create_record(db, patient=patient, doctor=doctor, department=department)
        for patient in patients
    ]
    # One patient with many records and a record with many versions.
    busy = patients[0]
    for _ in range(ITEMS):
        await create_record(db, patient=busy, doctor=doctor, department=department)
    versioned = records[0]
    now = utcnow()
    for version in range(2, ITEMS + 2):  # each update keeps its version (the database does)
        await db.execute(
            update(PatientRecord)
            .where(PatientRecord.id == versioned.id)
            .values(version=version, diagnosis=f"v{version}")
        )
    db.add(
        EmergencyGrant(
            doctor_id=visitor.id,
            patient_id=busy.id,
            reason="Unconscious on arrival",
            expires_at=now + timedelta(minutes=60),
        )
    )
    await db.commit()
    return {
        "department": department,
        "busy": busy,
        "versioned": versioned,
        "doctor": (await tokens_for(db, settings, doctor)).headers,
        "visitor": (await tokens_for(db, settings, visitor)).headers,
        "patient": (await tokens_for(db, settings, busy)).headers,
    }


LISTS = [
    ("doctor", "/api/doctors/"),
    ("doctor", "/api/doctors/?department_id={department}"),
    ("doctor", "/api/patients/"),
    ("doctor", "/api/patients/?q=patient"),
    ("doctor", "/api/patient_records/"),
    ("doctor", "/api/patient_records/?patient_id={busy}"),
    ("visitor", "/api/patient_records/?patient_id={busy}"),
    ("patient", "/api/patient_records/"),
    ("doctor", "/api/patient_records/{versioned}/history"),
    ("visitor", "/api/patient_records/{versioned}/history"),
    ("patient", "/api/department/"),
    ("doctor", "/api/department/{department}/doctors"),
    ("doctor", "/api/department/{department}/patients"),
]


@pytest.mark.parametrize(("caller", "path"), LISTS)
async def test_statements_do_not_grow_with_the_page(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: Any,
    hospital: dict[str, Any],
    caller: str,
    path: str,
) -> None:
    url = path.format(
        department=hospital["department"].id,
        busy=hospital["busy"].id,
        versioned=hospital["versioned"].id,
    )
    separator = "&" if "?" in url else "?"
    measured = {}
    for limit in (1, 50):
        async with recording(engine, sessionmaker) as statements:
            response = await client.get(f"{url}{separator}limit={limit}", headers=hospital[caller])
        assert response.status_code == 200, response.text
        assert len(response.json()) == limit
        assert 'rel="next"' in response.headers["Link"]
        measured[limit] = counts(statements)
    assert measured[1]["data"] == measured[50]["data"], measured
    assert all(m["audit"] <= MAX_AUDIT_STATEMENTS for m in measured.values()), measured


BOUND_LIMIT = re.compile(r"LIMIT\s+(\$\d|\?|%\(|:)")


async def test_page_sizes_are_written_into_the_sql_not_bound(
    client: httpx.AsyncClient, engine: AsyncEngine, sessionmaker: Any, hospital: dict[str, Any]
) -> None:
    """A bound LIMIT makes PostgreSQL plan each execution (see core.pagination.keyset)."""
    async with recording(engine, sessionmaker) as statements:
        for caller, path in LISTS:
            url = path.format(
                department=hospital["department"].id,
                busy=hospital["busy"].id,
                versioned=hospital["versioned"].id,
            )
            response = await client.get(url, headers=hospital[caller])
            assert response.status_code == 200, url
    assert [s for s in statements if BOUND_LIMIT.search(s)] == []
    assert any("LIMIT 51" in s for s in statements)
