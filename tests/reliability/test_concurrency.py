"""Concurrency on PostgreSQL: racing requests against one live server with real
commits (a fresh database, not the rolled-back test transaction). Exactly one writer wins a
version race, exactly one registration takes a username, the lock-out counts every failure
exactly once, and concurrent record writes lose nothing."""

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.auth.models import LoginFailure
from app.records.models import PatientRecord, PatientRecordVersion
from app.users.models import User
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import Live, race, start

pytestmark = pytest.mark.postgres_only  # row locks and real concurrency

RACERS = 20


@pytest.fixture
async def live(fresh_database_url: Callable[[], Any], tmp_path: Path) -> AsyncIterator[Live]:
    url = await fresh_database_url()
    async with await start(url, tmp_path, db_pool_size=RACERS, db_max_overflow=5) as server:
        yield server


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


async def test_concurrent_patches_with_one_if_match_have_one_winner(live: Live) -> None:
    async with live.sessionmaker() as session:
        department = await create_department(session)
        doctor = await create_doctor(session, department)
        patient = await create_patient(session)
        record = await create_record(session, patient=patient, doctor=doctor, department=department)
        headers = {**(await tokens_for(session, live.settings, doctor)).headers, "If-Match": '"1"'}

    responses = await race(
        *(
            live.client.patch(
                f"/api/patient_records/{record.id}",
                json={"diagnosis": f"Diagnosis {n}"},
                headers=headers,
            )
            for n in range(RACERS)
        )
    )

    assert statuses(responses) == {200: 1, 412: RACERS - 1}
    [winner] = [response for response in responses if response.status_code == 200]
    assert winner.json()["version"] == 2
    assert winner.headers["ETag"] == '"2"'
    versions = await live.scalar(
        select(func.count())
        .select_from(PatientRecordVersion)
        .where(PatientRecordVersion.record_id == record.id)
    )
    assert versions == 2
    stored = await live.scalar(select(PatientRecord).where(PatientRecord.id == record.id))
    assert (stored.version, stored.diagnosis) == (2, winner.json()["diagnosis"])
    history = await live.client.get(f"/api/patient_records/{record.id}/history", headers=headers)
    assert [item["version"] for item in history.json()] == [1, 2]


async def test_concurrent_registrations_of_one_username_have_one_winner(live: Live) -> None:
    spellings = ["racer", "Racer", "RACER", "rAcEr"]
    responses = await race(
        *(
            live.client.post(
                "/auth/register/",
                json={
                    "username": spellings[n % len(spellings)],
                    "email": f"racer{n}@example.org",
                    "password": "a long and unusual passphrase",
                    "full_name": f"Racer {n}",
                },
            )
            for n in range(RACERS)
        )
    )

    assert statuses(responses) == {201: 1, 409: RACERS - 1}, [r.text for r in responses]
    users = await live.scalar(
        select(func.count()).select_from(User).where(User.username_key == "racer")
    )
    assert users == 1


async def test_concurrent_wrong_passwords_are_counted_exactly(live: Live) -> None:
    async with live.sessionmaker() as session:
        patient = await create_patient(session, username="lockme")
    limit = live.settings.login_max_failures

    responses = await race(
        *(
            live.client.post("/auth/login/", json={"username": "lockme", "password": f"wrong {n}"})
            for n in range(RACERS)
        )
    )

    assert statuses(responses) == {401: limit, 429: RACERS - limit}
    assert all(
        int(response.headers["Retry-After"]) > 0
        for response in responses
        if response.status_code == 429
    )
    failures = await live.scalar(
        select(LoginFailure.failures).where(LoginFailure.username_key == "lockme")
    )
    assert failures == limit
    right = await live.client.post(
        "/auth/login/", json={"username": patient.username, "password": DEFAULT_PASSWORD}
    )
    assert right.status_code == 429


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
