"""Pool exhaustion: more concurrent slow requests than the connection pool holds. Those
that cannot get a connection answer 503 with Retry-After once the pool timeout passes (no
hang); the slow ones finish normally once the database lets them; no connection leaks.

The requests are made slow legitimately: the test holds the audit chain head's row lock
from its own connection, so every audited write (a record's update) waits at its commit,
holding its pooled connection, until the test lets go. (A read holds a connection only for
its statement; its events wait in the group commit, which holds one.)"""

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.live import start
from tests.reliability.hospital import (
    Hospital,
    app_connections,
    audit_lock,
    lock_waiters,
    wait_for,
)

pytestmark = pytest.mark.postgres_only  # a private PostgreSQL cluster

POOL_SIZE = 2
POOL_TIMEOUT = 1
CALLERS = 6


async def test_exhausted_pool_answers_503_then_recovers_without_leaks(
    hospital: Hospital, tmp_path: Path
) -> None:
    pool = {"db_pool_size": POOL_SIZE, "db_max_overflow": 0, "db_pool_timeout": POOL_TIMEOUT}
    async with await start(hospital.database_url, tmp_path, **pool) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            record = f"/api/patient_records/{hospital.record_id}"
            changes = iter(range(1_000_000))

            async def update() -> httpx.Response:
                note = {"notes": f"seen {next(changes)}"}  # each a change: each a version
                return await http.patch(record, json=note, headers=hospital.doctor)

            for _ in range(3):  # warm the pool
                assert (await update()).status_code == 200
            baseline = await app_connections(hospital.database_url)
            assert len(baseline) <= POOL_SIZE

            async def timed(path: str | None = None) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                response = await (
                    update() if path is None else http.get(path, headers=hospital.doctor)
                )
                return response, time.monotonic() - started

            async with audit_lock(hospital.database_url):
                slow = [asyncio.create_task(timed()) for _ in range(POOL_SIZE)]
                await wait_for(lambda: _waiting(hospital, POOL_SIZE))
                refused = await asyncio.gather(
                    *(timed() for _ in range(CALLERS - POOL_SIZE)),
                    timed("/api/department/"),  # a read, unaudited: it needs a connection too
                )
                held_for = time.monotonic()
                assert not any(task.done() for task in slow)
            released_at = time.monotonic()
            finished = await asyncio.gather(*slow)

            for response, elapsed in refused:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"]
                assert POOL_TIMEOUT * 0.9 <= elapsed < POOL_TIMEOUT + 4
            for response, elapsed in finished:
                assert response.status_code == 200, response.text
                assert elapsed >= released_at - held_for
            statuses = Counter([(await update()).status_code for _ in range(10)])
            assert statuses == {200: 10}

            after = await app_connections(hospital.database_url)
            assert len(after) <= POOL_SIZE
            assert set(after) <= {"idle"}, after
    assert server.exit_code in (0, -15), server.log()
    assert "Traceback" not in server.log(), server.log()
    await wait_for(lambda: _no_connections(hospital))


async def _waiting(hospital: Hospital, count: int) -> bool:
    return await lock_waiters(hospital.database_url) >= count


async def _no_connections(hospital: Hospital) -> bool:
    return not await app_connections(hospital.database_url)
