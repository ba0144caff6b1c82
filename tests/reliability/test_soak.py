"""Load soak (`make soak`, never in the quick suite): SOAK_SECONDS (default 60) of mixed
traffic - reads, writes, logins - from a bounded load generator on loopback against one
server with two uvicorn workers on PostgreSQL. No 5xx, no error or traceback in the server
log, and each worker's resident memory stays stable (the figures are printed)."""

import asyncio
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.db import create_engine, create_sessionmaker
from tests.conftest import make_settings
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
)
from tests.live import Live, start

pytestmark = pytest.mark.postgres_only  # the soak runs on PostgreSQL

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
WORKERS = 2
# Memory after warm-up may grow this much by the end (caches filling, allocator slack).
RSS_GROWTH_LIMIT_KIB = 40 * 1024


@dataclass
class Cast:
    doctors: list[str]  # usernames, password DEFAULT_PASSWORD
    patients: list[int]
    records: list[int]
    admin: str


async def seed(database_url: str) -> Cast:
    settings = make_settings(database_url)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session)
            doctors = [await create_doctor(session, department) for _ in range(4)]
            patients = [await create_patient(session) for _ in range(20)]
            records = [
                await create_record(
                    session, patient=patient, doctor=doctors[0], department=department
                )
                for patient in patients
            ]
            admin = await create_admin(session)
            return Cast(
                [d.username for d in doctors],
                [p.id for p in patients],
                [r.id for r in records],
                admin.username,
            )
    finally:
        await engine.dispose()


@dataclass
class Load:
    server: Live
    cast: Cast
    deadline: float
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    async def client(self, number: int) -> None:
        chooser = random.Random(number)
        # No keep-alive: each request is a new connection, which the kernel hands to
        # whichever worker accepts first, so both workers carry the load.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.server.url, timeout=30, limits=limits) as http:
            username = self.cast.doctors[number % len(self.cast.doctors)]
            headers = await self.login(http, username)
            while time.monotonic() < self.deadline:
                roll = chooser.random()
                if roll < 0.03:
                    headers = await self.login(http, username)
                elif roll < 0.05:
                    await self.call(
                        "bad-login",
                        http.post(
                            "/auth/login/",
                            json={"username": "nobody-at-all", "password": "wrong password"},
                        ),
                    )
                elif roll < 0.25:
                    await self.call(
                        "write",
                        http.post(
                            "/api/patient_records/",
                            json={
                                "patient_id": chooser.choice(self.cast.patients),
                                "diagnosis": f"soak {number}",
                            },
                            headers=headers,
                        ),
                    )
                elif roll < 0.35:
                    record = chooser.choice(self.cast.records)
                    await self.call(
                        "update",
                        http.patch(
                            f"/api/patient_records/{record}",
                            json={"notes": f"seen by {number}"},
                            headers=headers,
                        ),
                    )
                elif roll < 0.6:
                    record = chooser.choice(self.cast.records)
                    await self.call(
                        "read", http.get(f"/api/patient_records/{record}", headers=headers)
                    )
                elif roll < 0.8:
                    await self.call(
                        "list", http.get("/api/patient_records/?limit=20", headers=headers)
                    )
                else:
                    await self.call("departments", http.get("/api/department/", headers=headers))

    async def login(self, http: httpx.AsyncClient, username: str) -> dict[str, str]:
        response = await self.call(
            "login",
            http.post("/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}),
        )
        assert response is not None
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def call(self, kind: str, request: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response: httpx.Response = await request
        except httpx.HTTPError as error:
            self.errors.append(f"{kind}: {error!r}")
            return None
        self.latencies.append(time.monotonic() - started)
        self.statuses[(kind, response.status_code)] += 1
        return response


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def memory(server: Live) -> dict[int, int]:
    return {pid: rss_kib(pid) for pid in server.worker_pids()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def test_soak(fresh_database_url: Callable[[], Any], tmp_path: Path) -> None:
    database_url = await fresh_database_url()
    cast = await seed(database_url)
    server = await start(database_url, tmp_path, web_concurrency=WORKERS)
    try:
        await asyncio.sleep(1)
        assert len(server.worker_pids()) == WORKERS
        started = time.monotonic()
        load = Load(server, cast, started + SECONDS)
        clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
        at_start = memory(server)
        await asyncio.sleep(min(10, SECONDS / 6))
        warm = memory(server)
        await asyncio.gather(*clients)
        at_end = memory(server)
        cpu = {pid: cpu_seconds(pid) for pid in at_end}
        elapsed = time.monotonic() - started
    finally:
        await server.stop()

    total = sum(load.statuses.values())
    latencies = sorted(load.latencies)
    report(f"\nsoak: {total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s), "
           f"{CLIENTS} clients, {WORKERS} workers")  # fmt: skip
    report(f"  p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
           f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms")  # fmt: skip
    for (kind, status), count in sorted(load.statuses.items()):
        report(f"  {kind:12} {status}: {count}")
    for pid in at_start:
        report(f"  worker {pid}: RSS start {at_start[pid] / 1024:.1f} MiB, after warm-up "
               f"{warm[pid] / 1024:.1f} MiB, end {at_end[pid] / 1024:.1f} MiB, "
               f"CPU {cpu[pid]:.1f} s")  # fmt: skip

    assert load.errors == []
    server_errors = {key: n for key, n in load.statuses.items() if key[1] >= 500}
    assert server_errors == {}
    assert total > SECONDS * 10
    unexpected = {
        (kind, status): n
        for (kind, status), n in load.statuses.items()
        if status not in ({401, 429} if kind == "bad-login" else {200, 201})
    }
    assert unexpected == {}
    log = server.log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, [line for line in log.splitlines() if " ERROR " in line][:20]
    for pid in at_start:
        assert cpu[pid] > SECONDS / 20, f"worker {pid} carried no load"
        assert at_end[pid] - warm[pid] < RSS_GROWTH_LIMIT_KIB, (pid, warm[pid], at_end[pid])
