"""What one audit append costs, by the number of events it writes (PostgreSQL).

    python -m bench.audit_append [--sizes 1 10 50 200 800] [--runs 300] [--writers 16]
                                 [--server postgresql://postgres@127.0.0.1:5432/postgres]

The append is the application's own (`audit.repository.append_on_driver`, the statement
the hot reads' group commit runs), on one connection to a throwaway migrated database,
one append after another, each committing on its own. Reported per append: wall time,
this client's CPU time, and the server backend's CPU time (read from /proc, so the server
must run on this host).

`--writers N` measures instead what the chain allows writes: N connections at once, each
committing one event per transaction as a write does (`then="COMMIT"`), against the same
connections committing the same row without the chain. An append holds the chain head's
row lock until its commit is on disk, so chained commits take turns at the WAL flush, and
unchained ones share it. The database is dropped at the end.
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.audit.repository import NewEvent, append_on_driver
from bench import servers
from bench.audit_verify import DEFAULT_SERVER, create_database, drop_database, migrate


def events(count: int) -> list[NewEvent]:
    """`count` events of one patient each, as the group commit writes those of `count`
    reads waiting together."""
    at = datetime.now(UTC)
    return [
        NewEvent(
            at=at, actor_id=4, action="record.list", resource_type="record", resource_id=None,
            outcome="allowed", ip="127.0.0.1", request_id="bench", patient_id=1000 + n,
            department_id=3,
        )
        for n in range(count)
    ]  # fmt: skip


async def measure(url: str, sizes: list[int], runs: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        print("events  wall ms  client ms  server ms  server µs/event")
        for size in sizes:
            batch = events(size)
            count = max(10, runs // max(1, size // 10))  # fewer runs of the big appends
            for _ in range(5):  # warm: the statement prepared, the pages cached
                await append_on_driver(connection, batch)
            wall, cpu, server = (
                time.perf_counter(),
                time.process_time(),
                servers.cpu_seconds([backend]),
            )
            for _ in range(count):
                await append_on_driver(connection, batch)
            wall = (time.perf_counter() - wall) / count * 1000
            cpu = (time.process_time() - cpu) / count * 1000
            server = (servers.cpu_seconds([backend]) - server) / count * 1000
            per_event = server * 1000 / size
            print(f"{size:>6} {wall:>8.2f} {cpu:>10.2f} {server:>10.2f} {per_event:>16.1f}")
    finally:
        await connection.close()


WRITE_SECONDS = 5.0

# The row of `events(1)`, inserted without the chain head (and its lock).
_UNCHAINED = """
    INSERT INTO audit_events (at, actor_id, action, resource_type, outcome, ip, request_id,
        patient_id, department_id, hash)
    VALUES (now(), 4, 'record.list', 'record', 'allowed', '127.0.0.1', 'bench', 1000, 3,
        repeat('0', 64))
"""


async def _commits(connections: list[Any], commit_one: Callable[[Any], Awaitable[None]]) -> float:
    """Transactions committed per second by all the connections, each committing in turn."""
    deadline = time.perf_counter() + WRITE_SECONDS
    done = 0

    async def loop(connection: Any) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await commit_one(connection)
            done += 1

    await asyncio.gather(*(loop(connection) for connection in connections))
    return done / WRITE_SECONDS


async def measure_writers(url: str, writers: int) -> None:
    connections = [await asyncpg.connect(url) for _ in range(writers)]
    batch = events(1)

    async def chained(connection: asyncpg.Connection) -> None:
        await connection.execute("BEGIN")
        await append_on_driver(connection, batch, then="COMMIT")

    async def unchained(connection: asyncpg.Connection) -> None:
        await connection.execute("BEGIN")
        await connection.execute(f"{_UNCHAINED};\nCOMMIT")

    try:
        for connection in connections:  # warm: the statement prepared on every connection
            await chained(connection)
        with_chain = await _commits(connections, chained)
        without = await _commits(connections, unchained)
        print(f"{writers} connections, one event per transaction:")
        print(f"  chained (the application's append): {with_chain:8.0f} commits/s")
        print(f"  the same row, unchained:            {without:8.0f} commits/s")
    finally:
        for connection in connections:
            await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200, 800])
    parser.add_argument("--runs", type=int, default=300, help="appends of 1 to 10 events")
    parser.add_argument("--writers", type=int, help="concurrent one-event commits instead")
    parser.add_argument("--server", default=DEFAULT_SERVER)
    args = parser.parse_args()
    name, url = asyncio.run(create_database(args.server))
    try:
        migrate(url)
        if args.writers:
            asyncio.run(measure_writers(url, args.writers))
        else:
            asyncio.run(measure(url, args.sizes, args.runs))
    finally:
        asyncio.run(drop_database(args.server, name))


if __name__ == "__main__":
    main()
