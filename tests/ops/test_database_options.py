"""Engine options for operations: PgBouncer's transaction mode, SQL parameters kept out of logs."""

from sqlalchemy import text

from app.core.config import Settings
from app.core.db import create_engine
from tests.conftest import is_postgres


async def test_sql_parameters_never_appear_in_errors_or_logs(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        assert engine.sync_engine.hide_parameters is True
    finally:
        await engine.dispose()


async def test_pgbouncer_mode_turns_off_prepared_statement_caches(settings: Settings) -> None:
    engine = create_engine(settings.model_copy(update={"db_pgbouncer": True}))
    try:
        for value in range(3):  # several transactions, each free to land on another server
            async with engine.begin() as connection:
                result = await connection.execute(
                    text("SELECT CAST(:value AS INTEGER)"), {"value": value}
                )
                assert result.scalar_one() == value
        if is_postgres():
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                assert driver._stmt_cache.get_max_size() == 0
                assert raw.dbapi_connection._prepared_statement_cache is None
    finally:
        await engine.dispose()
