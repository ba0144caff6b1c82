"""Database faults: a private PostgreSQL cluster is stopped while requests flow. Requests
then answer 503 with Retry-After within the pool timeout (no hang, no 500) and /readyz is
503; once the database is back the same processes recover without a restart, and every
write that was answered 2xx is in the database."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.records.models import PatientRecord
from tests.live import start
from tests.reliability.cluster import PostgresCluster
from tests.reliability.hospital import Hospital, Traffic

pytestmark = pytest.mark.postgres_only  # a private PostgreSQL cluster

POOL_TIMEOUT = 2
# A request may wait the pool timeout, then the connect timeout (both POOL_TIMEOUT).
LONGEST_ANSWER = 2 * POOL_TIMEOUT + 2


@pytest.fixture
async def two_servers(
    cluster: PostgresCluster, hospital: Hospital, tmp_path: Path
) -> AsyncIterator[list[str]]:
    pool = {"db_pool_timeout": POOL_TIMEOUT, "db_pool_size": 5, "db_max_overflow": 0}
    async with (
        await start(hospital.database_url, tmp_path, **pool) as a,
        await start(hospital.database_url, tmp_path, **pool) as b,
    ):
        yield [a.url, b.url]
    for server in (a, b):
        assert server.exit_code in (0, -15), server.log()
        assert "Traceback" not in server.log(), server.log()


async def readiness(urls: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as http:
        return [(await http.get(f"{url}/readyz")).status_code for url in urls]


async def test_outage_answers_503_then_the_same_processes_recover(
    cluster: PostgresCluster, hospital: Hospital, two_servers: list[str]
) -> None:
    traffic = Traffic(two_servers, hospital)
    async with traffic.running():
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.stop, "fast")
        down_at = time.monotonic()
        await asyncio.sleep(1)
        assert await readiness(two_servers) == [503, 503]
        await asyncio.sleep(POOL_TIMEOUT + 1)
        restart_at = time.monotonic()
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        deadline = up_at + 15
        while time.monotonic() < deadline:
            recent = [o for o in traffic.outcomes if o.at > time.monotonic() - 1]
            if {o.server for o in recent if o.status in (200, 201)} == set(two_servers):
                break
            await asyncio.sleep(0.2)
        recovered_at = time.monotonic()
        await asyncio.sleep(1.5)
    ended_at = time.monotonic()

    outcomes = traffic.outcomes
    counts = Counter(o.status for o in outcomes)
    assert set(counts) <= {200, 201, 503}, counts
    assert [o.error for o in outcomes if o.error] == []
    assert all(o.retry_after for o in outcomes if o.status == 503)
    slowest = max(o.elapsed for o in outcomes)
    assert slowest < LONGEST_ANSWER, f"a request took {slowest:.1f} s"

    outage = traffic.between(down_at, restart_at)
    assert outage
    assert all(o.status == 503 for o in outage), Counter(o.status for o in outage)
    assert recovered_at - up_at < 10, "the servers did not recover"
    after = traffic.between(recovered_at + 0.5, ended_at)
    assert after
    assert all(o.status in (200, 201) for o in after), Counter(o.status for o in after)
    assert await readiness(two_servers) == [200, 200]

    written = {o.record["id"]: o.record["diagnosis"] for o in outcomes if o.record}
    assert len(written) > 10
    engine = create_async_engine(hospital.database_url)
    try:
        async with engine.connect() as connection:
            stored = dict(
                (await connection.execute(select(PatientRecord.id, PatientRecord.diagnosis))).all()
            )
    finally:
        await engine.dispose()
    missing = {id_: diagnosis for id_, diagnosis in written.items() if stored.get(id_) != diagnosis}
    assert missing == {}, "writes answered 201 are not in the database"


async def test_requests_before_the_database_ever_answers_are_503(
    cluster: PostgresCluster, hospital: Hospital, tmp_path: Path
) -> None:
    """A process that starts while the database is down serves 503s, then recovers."""
    await asyncio.to_thread(cluster.stop, "immediate")
    try:
        async with await start(
            hospital.database_url, tmp_path, ready="/healthz", db_pool_timeout=POOL_TIMEOUT
        ) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                started = time.monotonic()
                response = await http.get("/api/department/", headers=hospital.doctor)
                assert time.monotonic() - started < LONGEST_ANSWER
                assert response.status_code == 503
                assert response.headers["Retry-After"]
                assert (await http.get("/readyz")).status_code == 503
                assert (await http.get("/healthz")).status_code == 200

                await asyncio.to_thread(cluster.start)
                response = await http.get("/api/department/", headers=hospital.doctor)
                assert response.status_code == 200
                assert (await http.get("/readyz")).status_code == 200
        assert "Traceback" not in server.log(), server.log()
    finally:
        if not cluster.running:
            cluster.start()
