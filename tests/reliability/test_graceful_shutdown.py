"""Graceful shutdown: SIGTERM while a request is in flight. The request completes with its
normal answer and the process then exits cleanly, within the configured grace period; a
request that outlasts the grace period does not keep the process alive: it answers 503,
and what it was writing is rolled back.

The request is made slow by holding the audit chain head's row lock from the test."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.records.models import PatientRecord
from tests.live import start
from tests.reliability.hospital import Hospital, audit_lock, lock_waiters, wait_for

pytestmark = pytest.mark.postgres_only  # a private PostgreSQL cluster

CLEAN_EXITS = (0, -15)  # uvicorn re-raises SIGTERM after a complete shutdown


async def waiting(hospital: Hospital) -> bool:
    return await lock_waiters(hospital.database_url) >= 1


@asynccontextmanager
async def write_held_at_commit(
    http: httpx.AsyncClient, hospital: Hospital, diagnosis: str
) -> AsyncIterator["asyncio.Task[httpx.Response]"]:
    """A record write in flight, waiting at its commit for the chain head the test holds;
    released when the block ends."""
    async with audit_lock(hospital.database_url):
        in_flight = asyncio.create_task(
            http.post(
                "/api/patient_records/",
                json={"patient_id": hospital.patient_id, "diagnosis": diagnosis},
                headers=hospital.doctor,
            )
        )
        await wait_for(lambda: waiting(hospital))
        yield in_flight


async def count_records(hospital: Hospital) -> int:
    engine = create_async_engine(hospital.database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(PatientRecord)))
    finally:
        await engine.dispose()


async def test_sigterm_lets_the_request_in_flight_complete(
    hospital: Hospital, tmp_path: Path
) -> None:
    grace = 10
    server = await start(hospital.database_url, tmp_path, graceful_timeout=grace)
    try:
        async with write_held_at_commit(server.client, hospital, "In flight") as in_flight:
            server.terminate()
            signalled_at = time.monotonic()
            await asyncio.sleep(1)
            assert server.poll() is None, "exited with a request in flight"
            assert not in_flight.done()
        response = await in_flight
        assert response.status_code == 201, response.text
        assert response.json()["diagnosis"] == "In flight"
        code = await asyncio.to_thread(server.wait, grace + 5)
        assert time.monotonic() - signalled_at < grace
    finally:
        await server.stop()
    assert code in CLEAN_EXITS, server.log()
    log = server.log()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log, log


async def test_a_request_past_the_grace_period_does_not_hold_the_process(
    hospital: Hospital, tmp_path: Path
) -> None:
    grace = 2
    server = await start(hospital.database_url, tmp_path, graceful_timeout=grace)
    before = await count_records(hospital)
    try:
        async with write_held_at_commit(server.client, hospital, "Cut short") as in_flight:
            server.terminate()
            signalled_at = time.monotonic()
            code = await asyncio.to_thread(server.wait, grace + 10)
            exited_after = time.monotonic() - signalled_at
        outcome = await asyncio.gather(in_flight, return_exceptions=True)
    finally:
        await server.stop()
    assert exited_after < grace + 5
    assert code in CLEAN_EXITS, server.log()
    [response] = outcome
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "The server is shutting down; retry the request"}
    assert await count_records(hospital) == before  # the cut-short write was rolled back
