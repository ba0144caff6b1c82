"""Several processes on the embedded SQLite database: concurrent writers through two
processes wait for the file lock and all succeed; lock-outs and logouts hold across both."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.db import create_engine, create_sessionmaker
from tests.conftest import make_settings
from tests.factories import (
    DEFAULT_PASSWORD,
    create_department,
    create_doctor,
    create_patient,
)
from tests.live import migrate, start


@pytest.fixture
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[tuple[list[httpx.AsyncClient], dict]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hospital.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(make_settings(url))
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session)
            doctor = await create_doctor(session, department)
            patient = await create_patient(session)
            seeded = {"doctor": doctor.username, "patient": patient.username, "pid": patient.id}
    finally:
        await engine.dispose()
    async with await start(url, tmp_path) as one, await start(url, tmp_path) as other:
        yield [one.client, other.client], seeded
    for server in (one, other):
        assert "Traceback" not in server.log(), server.log()


async def login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post(
        "/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_concurrent_writers_through_two_processes_all_succeed(
    sqlite_pair: tuple[list[httpx.AsyncClient], dict],
) -> None:
    (a, b), seeded = sqlite_pair
    headers = await login(a, seeded["doctor"])
    writes = 40

    responses = await asyncio.gather(
        *(
            (a if n % 2 else b).post(
                "/api/patient_records/",
                json={"patient_id": seeded["pid"], "diagnosis": f"Visit {n}"},
                headers=headers,
            )
            for n in range(writes)
        )
    )

    assert Counter(r.status_code for r in responses) == {201: writes}
    listed = await b.get(f"/api/patient_records/?patient_id={seeded['pid']}&limit=200",
                         headers=headers)  # fmt: skip
    assert len(listed.json()) == writes


async def test_lockouts_and_logouts_hold_across_sqlite_processes(
    sqlite_pair: tuple[list[httpx.AsyncClient], dict],
) -> None:
    (a, b), seeded = sqlite_pair
    headers = await login(a, seeded["doctor"])
    assert (await b.post("/auth/logout/", headers=headers)).status_code == 204
    assert (await a.get("/auth/me", headers=headers)).status_code == 401

    failures = await asyncio.gather(
        *(
            (a if n % 2 else b).post(
                "/auth/login/", json={"username": seeded["patient"], "password": f"wrong {n}"}
            )
            for n in range(10)
        )
    )
    assert Counter(r.status_code for r in failures) == {401: 5, 429: 5}
