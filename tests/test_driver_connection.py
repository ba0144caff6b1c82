"""PostgreSQL's driver connections (core.db.driver_connection), as reads and writes use
them: a connection whose transaction did not end never serves another request."""

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

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
