"""A domain write's audit append and the end of its transaction reach PostgreSQL in one
message: the append locks the chain head, and a commit sent only once the process comes
back to the request (behind every other request in its event loop) kept that lock, and
every other writer of the process and of the others, waiting meanwhile."""

from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit import repository as audit_repository
from app.core.config import Settings
from app.core.db import postgres_string
from app.departments.models import Department
from app.users.models import User
from bench.seed import server_url
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.statements import recording

pytestmark = pytest.mark.postgres_only  # the driver's path of PostgreSQL

AWKWARD = [
    "",
    "plain",
    "it's",
    "''",
    "\\",
    "\\'",
    "back\\slash at the end\\",
    "'; DROP TABLE audit_events; --",
    "E'nested'",
    "$$dollar$$",
    "naïve — ünïcödé ✓ 漢字 \U0001f600",
    "tab\tnew\nline\rcr",
    '{"json": "with \\"quotes\\" and \\\\ and \\u0000"}',
]


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_a_string_constant_reads_back_as_written(settings: Settings, conforming: str) -> None:
    connection = await asyncpg.connect(server_url(settings.database_url))
    try:
        await connection.execute(f"SET standard_conforming_strings = {conforming}")
        for value in AWKWARD:
            assert await connection.fetchval(f"SELECT {postgres_string(value)}") == value
    finally:
        await connection.close()


def test_a_string_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        postgres_string("a\x00b")


def _ends_its_transaction(statement: str) -> bool:
    return statement.startswith("EXECUTE audit_append") and statement.rstrip().endswith(
        "RELEASE SAVEPOINT write"  # COMMIT outside the test's own transaction
    )


@dataclass
class Ward:
    doctor: User
    department: Department
    patient: User
    headers: dict[str, str]  # the doctor's

    @property
    def new_record(self) -> dict[str, Any]:
        return {"patient_id": self.patient.id, "diagnosis": "d", "observations": "o",
                "treatments": "t"}  # fmt: skip


@pytest.fixture
async def ward(db: AsyncSession, settings: Settings) -> Ward:
    department = await create_department(db)
    doctor = await create_doctor(db, department)
    patient = await create_patient(db)
    await db.commit()
    return Ward(doctor, department, patient, (await tokens_for(db, settings, doctor)).headers)


async def test_a_write_sends_its_append_with_its_commit(
    client: httpx.AsyncClient, db: AsyncSession, ward: Ward, engine: AsyncEngine, sessionmaker: Any
) -> None:
    record = await create_record(
        db, patient=ward.patient, doctor=ward.doctor, department=ward.department
    )
    other = await create_department(db)
    colleague = await create_doctor(db, other)
    elsewhere = await create_record(db, patient=ward.patient, doctor=colleague, department=other)
    await db.commit()
    writes = [
        ("POST", "/api/patient_records/", ward.new_record, 201),
        ("PATCH", f"/api/patient_records/{record.id}", {"notes": "seen"}, 200),
        # a refusal commits its own event the same way
        ("PATCH", f"/api/patient_records/{elsewhere.id}", {"notes": "seen"}, 404),
    ]
    for method, path, payload, status in writes:
        async with recording(engine, sessionmaker) as statements:
            answer = await client.request(method, path, json=payload, headers=ward.headers)
        assert answer.status_code == status, answer.text
        assert _ends_its_transaction(statements[-1]), (method, path, statements[-1])
        assert not any(_ends_its_transaction(s) for s in statements[:-1])


async def test_the_append_is_prepared_once_per_connection(
    client: httpx.AsyncClient, ward: Ward, engine: AsyncEngine, sessionmaker: Any
) -> None:
    answer = await client.post("/api/patient_records/", json=ward.new_record, headers=ward.headers)
    assert answer.status_code == 201, answer.text
    # A connection the process no longer knows to have it prepared (as after a failure
    # between the two) finds it prepared on the server, and uses it.
    audit_repository._prepared_on.clear()
    for _ in range(2):
        async with recording(engine, sessionmaker, setup=True) as statements:
            answer = await client.post(
                "/api/patient_records/", json=ward.new_record, headers=ward.headers
            )
        assert answer.status_code == 201, answer.text
        assert not any(s.startswith("PREPARE") for s in statements)
        assert _ends_its_transaction(statements[-1])
