"""The migrations build exactly the models' schema, and go down and up again cleanly."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.models import Base, include_in_autogenerate
from tests.conftest import alembic_config


async def _schema_differences(url: str) -> list[Any]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:

        def compare(sync_connection: Any) -> list[Any]:
            context = MigrationContext.configure(
                sync_connection,
                opts={
                    "compare_server_default": True,
                    "include_object": include_in_autogenerate,
                },
            )
            return list(compare_metadata(context, Base.metadata))

        differences = await connection.run_sync(compare)
    await engine.dispose()
    return differences


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


async def test_migrations_match_the_models(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    assert await _schema_differences(url) == []


async def test_downgrade_to_base_and_upgrade_again(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _tables(url) <= {"alembic_version"}
    await asyncio.to_thread(command.upgrade, config, "head")
    assert set(Base.metadata.tables) <= await _tables(url)
    assert await _schema_differences(url) == []


async def test_full_name_keys_are_filled_in_for_existing_users(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (username, username_key, email, email_key, full_name, "
                "password_hash, role, is_active, tokens_valid_after, created_at) VALUES "
                "('gross', 'gross', 'g@example.org', 'g@example.org', 'Anna GROSSE-Straße', "
                "'x', 'patient', true, :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    await asyncio.to_thread(command.upgrade, config, "head")
    async with engine.connect() as connection:
        key = await connection.scalar(text("SELECT full_name_key FROM users"))
    await engine.dispose()
    assert key == "anna grosse-strasse"
