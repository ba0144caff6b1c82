"""Recording the statements a request sends to the database, on either database."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import is_postgres


@asynccontextmanager
async def recording(engine: AsyncEngine, sessionmaker: Any) -> AsyncIterator[list[str]]:
    """Every statement sent to the database: on PostgreSQL as the driver sends them (reads
    and their appends run on it directly), on SQLite as SQLAlchemy executes them."""
    statements: list[str] = []

    def keep(statement: str) -> None:
        # Neither the test's nesting nor the driver's own look-up of a new type (with JIT
        # switched off around it).
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")) and not any(
            mark in statement for mark in ("pg_catalog", "'jit'")
        ):
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
