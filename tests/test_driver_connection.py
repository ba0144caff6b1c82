"""PostgreSQL's driver connections (core.db.driver_connection), as reads and writes use
them: a connection whose transaction did not end never serves another request."""

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.core.config import Settings
from app.core.db import create_engine, driver_connection

pytestmark = pytest.mark.postgres_only  # the asyncpg driver itself


async def test_a_connection_left_in_a_transaction_is_not_pooled(settings: Settings) -> None:
    engine: AsyncEngine = create_engine(settings)
    try:
        async with driver_connection(engine) as connection:
            await connection.execute("BEGIN")
            await connection.execute("SELECT 1")
            left = connection  # as a write whose COMMIT failed or was cancelled leaves it
        assert left.is_closed()
        async with driver_connection(engine) as connection:
            assert connection is not left
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()


async def test_a_connection_whose_transaction_ended_is_pooled(settings: Settings) -> None:
    engine: AsyncEngine = create_engine(settings)
    try:
        async with driver_connection(engine) as connection:
            transaction = connection.transaction()
            await transaction.start()
            await transaction.commit()
            kept = connection
        async with driver_connection(engine) as connection:
            assert connection is kept
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_server_dropped_is_replaced(settings: Settings) -> None:
    engine: AsyncEngine = create_engine(settings)
    try:
        with pytest.raises(ConnectionError):
            async with driver_connection(engine) as connection:
                await connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert _pool(engine).checkedin() == 1  # its record, pooled without a connection
        async with driver_connection(engine) as connection:
            assert await connection.fetchval("SELECT 1") == 1
        assert _pool(engine).checkedin() == 1
    finally:
        await engine.dispose()


async def test_a_connection_beyond_the_pool_size_is_closed_when_returned(
    settings: Settings,
) -> None:
    engine: AsyncEngine = create_engine(
        settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 1})
    )
    try:
        async with driver_connection(engine) as first, driver_connection(engine) as second:
            assert await first.fetchval("SELECT 1") == await second.fetchval("SELECT 1") == 1
        assert _pool(engine).checkedin() == 1
        assert _pool(engine).checkedout() == 0
        assert first.is_closed() != second.is_closed()
    finally:
        await engine.dispose()


def _pool(engine: AsyncEngine) -> QueuePool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool
