"""Test fixtures: a real database (SQLite or PostgreSQL), migrated once, one transaction per test.

`TEST_DATABASE_URL` names a PostgreSQL server (any database on it, used to connect):
the suite creates a database of its own there and drops it at the end. Without it, the
suite runs on a SQLite file in a temporary folder.
"""

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app

if TYPE_CHECKING:
    from tests.live import Live

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "test-" + "k" * 40


def alembic_config(database_url: str) -> Config:
    return migrations.alembic_config(database_url, configure_logger=False)


class ThrowawayDatabases:
    """Creates PostgreSQL databases for this run on the server of TEST_DATABASE_URL."""

    def __init__(self, server_url: str) -> None:
        self.server_url = Settings(database_url=server_url).database_url
        self.created: list[str] = []

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(self.server_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(statement))
        await engine.dispose()

    async def create(self) -> str:
        name = f"hms_test_{secrets.token_hex(6)}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        for name in self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def is_postgres() -> bool:
    return bool(os.environ.get("TEST_DATABASE_URL"))


@pytest.fixture(scope="session")
async def throwaway_databases() -> AsyncIterator[ThrowawayDatabases | None]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield None
        return
    databases = ThrowawayDatabases(server)
    yield databases
    await databases.drop_all()


@pytest.fixture(scope="session")
async def fresh_database_url(
    throwaway_databases: ThrowawayDatabases | None, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Any]:
    """Make a new, empty, migrated database (for tests that must commit for real)."""

    async def make() -> str:
        if throwaway_databases is None:
            path = tmp_path_factory.mktemp("db") / f"{secrets.token_hex(4)}.db"
            url = f"sqlite+aiosqlite:///{path}"
        else:
            url = await throwaway_databases.create()
        await _run_sync(command.upgrade, alembic_config(url), "head")
        return url

    return make


async def _run_sync(function: Callable[..., Any], *args: Any) -> None:
    """Alembic's env.py runs its own event loop; give it a thread without one."""
    import asyncio

    await asyncio.to_thread(function, *args)


@pytest.fixture(scope="session")
async def database_url(fresh_database_url: Callable[[], Any]) -> str:
    url: str = await fresh_database_url()
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        environment="test",
        secret_key=TEST_SECRET_KEY,
        **overrides,
    )


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings, engine: AsyncEngine) -> Any:
    application = create_app(settings)
    application.state.engine = engine
    return application


@pytest.fixture
async def sessionmaker(
    app: Any, engine: AsyncEngine
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Everything a test does, through the app or directly, happens in one transaction
    that is rolled back at the end; each session works in a savepoint inside it."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        maker = async_sessionmaker(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        app.state.sessionmaker = maker
        try:
            yield maker
        finally:
            await transaction.rollback()


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def client(app: Any, sessionmaker: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def live(fresh_database_url: Callable[[], Any], tmp_path: Path) -> AsyncIterator["Live"]:
    """The app served by a uvicorn process of its own on a new database, committing for
    real (races): a pool in which each of 20 racers holds a connection at once."""
    from tests.live import start

    url = await fresh_database_url()
    async with await start(url, tmp_path, db_pool_size=20, db_max_overflow=5) as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move time without sleeping: `frozen_clock.advance(minutes=61)`."""
    from datetime import timedelta

    from app.core import clock

    class Clock:
        def __init__(self) -> None:
            self.current = clock.now()

        def now(self) -> Any:
            return self.current

        def advance(self, **delta: float) -> None:
            self.current += timedelta(**delta)

    fake = Clock()
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (row locks, triggers, several processes) are not collected on
    SQLite: the same run on PostgreSQL covers them."""
    if is_postgres():
        return
    kept = [item for item in items if item.get_closest_marker("postgres_only") is None]
    deselected = [item for item in items if item.get_closest_marker("postgres_only")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
