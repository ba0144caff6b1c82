"""Recording the statements a request sends to the database, on either database."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import is_postgres


@asynccontextmanager
async def recording(
    engine: AsyncEngine, sessionmaker: Any, *, setup: bool = False
) -> AsyncIterator[list[str]]:
    """Every statement sent to the database: on PostgreSQL as the driver sends them (reads
    and their appends run on it directly), on SQLite as SQLAlchemy executes them.

    Without `setup`, not what a connection does once: the driver's look-up of a new type
    (with JIT switched off around it), the preparation of the audit append."""
    statements: list[str] = []

    def keep(statement: str) -> None:
        if statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # the test's nesting
            return
        if setup or not _is_setup(statement):
            statements.append(statement)

    if is_postgres():
        connection = sessionmaker.kw["bind"]  # the test's connection, lent to the app
        driver = (await connection.get_raw_connection()).driver_connection

        def log(query: Any) -> None:
            keep(query.query)

        driver.add_query_logger(log)
        try:
            yield statements
            await asyncio.sleep(0)  # the driver reports each statement on the next loop turn
        finally:
            driver.remove_query_logger(log)
        return

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        keep(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def _is_setup(statement: str) -> bool:
    return statement.startswith("PREPARE audit_append") or any(
        mark in statement for mark in ("pg_catalog", "'jit'", "pg_prepared_statements")
    )


def is_append(statement: str) -> bool:
    """A statement of the audit append: on PostgreSQL one, the prepared append (or, through
    SQLAlchemy, its text); on SQLite three (the head read, the inserts, the head moved)."""
    return (
        statement.startswith("EXECUTE audit_append")
        or "INSERT INTO audit_events" in statement
        or "UPDATE audit_chain_head" in statement
        or statement.startswith("SELECT audit_chain_head.last_hash")
    )
