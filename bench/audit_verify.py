"""Time `hospital-api audit-verify` over a long audit chain on PostgreSQL, and its peak memory.

    python -m bench.audit_verify [--events 1000000] [--runs 3] [--keep | --database NAME]
                                 [--server postgresql://postgres@127.0.0.1:5432/postgres]

A throwaway database `hms_bench_audit_<hex>` is created and migrated (`alembic upgrade
head`), then filled with a valid chain of N events: hashes computed in Python with the
application's own chain functions, rows sent with COPY (asyncpg), the chain head set to the
last event, the table vacuumed (hint bits, visibility map) and analysed. The verification
then runs as an operator runs it, `python -m app.cli audit-verify`, in a fresh process
each time: its wall time, CPU time and peak RSS (GNU time, /usr/bin/time) are reported.
A last run alters one event in the middle and checks that verify names it and exits 1.
The database is dropped at the end unless --keep.
"""

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from alembic import command

from app.audit.chain import CONTENT_FIELDS, GENESIS_HASH, content_digest, link
from app.migrations import alembic_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 50_000
COLUMNS = ("id", *CONTENT_FIELDS, "hash")
ACTIONS = [
    ("record.read", "record"),
    ("record.list", "record"),
    ("patient.read", "patient"),
    ("record.update", "record"),
    ("auth.login", "user"),
    ("access.forbidden", "endpoint"),
]


def events(count: int, seed: int = 2026) -> Iterator[tuple[Any, ...]]:
    """A valid chain of `count` plausible events, in order, as COPY records."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    previous = GENESIS_HASH
    for event_id in range(1, count + 1):
        action, resource_type = ACTIONS[event_id % len(ACTIONS)]
        fields: dict[str, Any] = {
            "at": start + timedelta(milliseconds=event_id * 37 + rng.randrange(37)),
            "actor_id": rng.randrange(1, 5_000),
            "action": action,
            "resource_type": resource_type,
            "resource_id": rng.randrange(1, 1_000_000) if resource_type != "endpoint" else None,
            "outcome": "denied" if event_id % 50 == 0 else "allowed",
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "request_id": secrets.token_hex(16),
            "emergency_grant_id": rng.randrange(1, 500) if event_id % 200 == 0 else None,
            "patient_id": rng.randrange(1, 100_000) if resource_type != "user" else None,
            "department_id": rng.randrange(1, 11),
            "patient_ids": None,
        }
        previous = link(previous, content_digest(**fields))
        yield (event_id, *fields.values(), previous)


def batches(iterator: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in iterator:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def create_database(server: str) -> tuple[str, str]:
    name = f"hms_bench_audit_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, server.rsplit("/", 1)[0] + "/" + name


async def drop_database(server: str, name: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migrate(url: str) -> None:
    asyncpg_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    command.upgrade(alembic_config(asyncpg_url, configure_logger=False), "head")


async def load(url: str, count: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        last: tuple[Any, ...] | None = None
        for batch in batches(events(count), BATCH):
            await connection.copy_records_to_table("audit_events", records=batch, columns=COLUMNS)
            last = batch[-1]
        assert last is not None
        await connection.execute(
            "UPDATE audit_chain_head SET last_event_id = $1, last_hash = $2 WHERE id = 1",
            last[0],
            last[-1],
        )
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), $1)", last[0]
        )
        await connection.execute("VACUUM (ANALYZE) audit_events")
        size = await connection.fetchval(
            "SELECT pg_size_pretty(pg_total_relation_size('audit_events'))"
        )
        print(f"audit_events: {count} rows, {size} with indexes")
    finally:
        await connection.close()


async def rewrite(url: str, event_id: int, outcome: str, actor_id: int) -> tuple[str, int]:
    """Change one event as an intruder would (trigger disabled); returns what it held."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            before = await connection.fetchrow(
                "SELECT outcome, actor_id FROM audit_events WHERE id = $1", event_id
            )
            await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            await connection.execute(
                "UPDATE audit_events SET outcome = $2, actor_id = $3 WHERE id = $1",
                event_id,
                outcome,
                actor_id,
            )
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    finally:
        await connection.close()
    return before["outcome"], before["actor_id"]


def timed_verify(url: str) -> tuple[float, float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `audit-verify` process.

    Measured by GNU time around the command: the child's own getrusage would also count
    the pages it inherited from this (large) process at fork, before exec.
    """
    environment = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "development"}
    with tempfile.NamedTemporaryFile("r") as measured:
        started = time.perf_counter()
        result = subprocess.run(
            [
                "/usr/bin/time",
                "-o",
                measured.name,
                "-f",
                "%M %U %S",
                sys.executable,
                "-m",
                "app.cli",
                "audit-verify",
            ],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        peak_kib, user, system = measured.read().split()[-3:]
    return elapsed, float(user) + float(system), int(peak_kib) / 1024, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--database", help="time an existing database kept by --keep (not loaded, not altered)"
    )
    args = parser.parse_args()

    if args.database:
        url = args.server.rsplit("/", 1)[0] + "/" + args.database
        for run in range(1, args.runs + 1):
            elapsed, cpu, peak, result = timed_verify(url)
            print(
                f"verify run {run}: {elapsed:.2f} s wall, {cpu:.2f} s CPU (client process), "
                f"peak RSS {peak:.0f} MiB: {(result.stdout or result.stderr).strip()}"
            )
        return 0

    name, url = asyncio.run(create_database(args.server))
    print(f"database {name}")
    try:
        migrate(url)
        started = time.perf_counter()
        asyncio.run(load(url, args.events))
        print(f"generated and loaded in {time.perf_counter() - started:.1f} s")

        for run in range(1, args.runs + 1):
            elapsed, cpu, peak, result = timed_verify(url)
            print(
                f"verify run {run}: {elapsed:.2f} s wall, {cpu:.2f} s CPU (client process), "
                f"peak RSS {peak:.0f} MiB, "
                f"exit {result.returncode}: {(result.stdout or result.stderr).strip()}"
            )
            if result.returncode != 0:
                return 1

        middle = args.events // 2
        original = asyncio.run(rewrite(url, middle, "allowed", 1))
        elapsed, _cpu, _peak, result = timed_verify(url)
        asyncio.run(rewrite(url, middle, *original))  # intact again for --keep
        print(
            f"after altering event {middle}: {elapsed:.2f} s, exit {result.returncode}: "
            f"{result.stderr.strip()}"
        )
        if result.returncode != 1 or f"event {middle} " not in result.stderr:
            return 1
    finally:
        if not args.keep:
            asyncio.run(drop_database(args.server, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
