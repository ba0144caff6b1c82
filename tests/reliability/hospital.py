"""A seeded hospital on a private PostgreSQL cluster, a lock that makes requests slow, and
a bounded traffic generator, shared by the fault, pool and shutdown suites."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core.db import create_engine, create_sessionmaker
from tests.conftest import make_settings
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    tokens_for,
)
from tests.live import migrate
from tests.reliability.cluster import PostgresCluster


@dataclass
class Hospital:
    database_url: str
    doctor: dict[str, str]  # headers
    admin: dict[str, str]
    patient_id: int
    record_id: int


async def seed_hospital(cluster: PostgresCluster, database: str = "hospital") -> Hospital:
    cluster.psql(f'CREATE DATABASE "{database}"')
    url = cluster.url(database)
    await asyncio.to_thread(migrate, url)
    settings = make_settings(url)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session)
            doctor = await create_doctor(session, department)
            patient = await create_patient(session)
            admin = await create_admin(session)
            record = await create_record(
                session, patient=patient, doctor=doctor, department=department
            )
            return Hospital(
                url,
                (await tokens_for(session, settings, doctor)).headers,
                (await tokens_for(session, settings, admin)).headers,
                patient.id,
                record.id,
            )
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def audit_lock(database_url: str) -> AsyncIterator[AsyncConnection]:
    """Hold the audit chain head's row lock: every request that records an audit event
    (a record read, for one) then waits at its commit, holding its pool connection."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            locked = await connection.scalar(
                text("SELECT id FROM audit_chain_head WHERE id = 1 FOR UPDATE")
            )
            assert locked == 1
            try:
                yield connection
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def app_connections(database_url: str) -> list[str]:
    """The states of the service's connections (application_name hospital-api)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT coalesce(state, '') FROM pg_stat_activity "
                    "WHERE application_name = 'hospital-api'"
                )
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def lock_waiters(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'hospital-api' AND wait_event_type = 'Lock'"
                )
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def wait_for(condition: Any, timeout: float = 15, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass
class Outcome:
    at: float
    server: str
    kind: str
    status: int
    elapsed: float
    retry_after: str | None
    record: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Traffic:
    """Reads and writes from `workers` concurrent clients per server until stopped."""

    servers: list[str]
    hospital: Hospital
    workers: int = 3
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _sequence: int = 0

    async def _worker(self, base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            while not self._stop.is_set():
                self._sequence += 1
                n = self._sequence
                if n % 3 == 0:
                    kind, request = (
                        "read",
                        http.get(
                            f"/api/patient_records/{self.hospital.record_id}",
                            headers=self.hospital.doctor,
                        ),
                    )
                elif n % 3 == 1:
                    kind, request = (
                        "list",
                        http.get("/api/department/", headers=self.hospital.doctor),
                    )
                else:
                    kind, request = (
                        "write",
                        http.post(
                            "/api/patient_records/",
                            json={"patient_id": self.hospital.patient_id, "diagnosis": f"w{n}"},
                            headers=self.hospital.doctor,
                        ),
                    )
                started = time.monotonic()
                try:
                    response = await request
                except httpx.TransportError as error:
                    self.outcomes.append(
                        Outcome(started, base_url, kind, 0, time.monotonic() - started, None,
                                error=repr(error))
                    )  # fmt: skip
                    await asyncio.sleep(0.05)
                    continue
                record = response.json() if kind == "write" and response.is_success else None
                self.outcomes.append(
                    Outcome(started, base_url, kind, response.status_code,
                            time.monotonic() - started, response.headers.get("Retry-After"),
                            record)
                )  # fmt: skip
                if response.status_code == 503:
                    await asyncio.sleep(0.05)  # a polite client backs off a little

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Traffic"]:
        tasks = [
            asyncio.create_task(self._worker(url))
            for url in self.servers
            for _ in range(self.workers)
        ]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.at and o.at + o.elapsed <= end]
