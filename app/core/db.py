"""Engine, sessions and the declarative base shared by every domain's models."""

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import BigInteger, CompoundSelect, DateTime, Integer, MetaData, Row, Select, event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from app.core import clock
from app.core.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Rows and queries of any columns (SQLAlchemy 2.1 types them by a tuple of columns).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyCompound: TypeAlias = CompoundSelect[*tuple[Any, ...]]

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC instants on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg decodes every timestamptz as an aware datetime in UTC (the wire carries
        # UTC microseconds, whatever the session's time zone): a page would otherwise
        # call the no-op below for every instant of every row.
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def postgres_string(value: str) -> str:
    """`value` as a PostgreSQL string constant in the escape syntax (E'…'), which reads
    alike whatever `standard_conforming_strings` says: for a value written into a statement
    that cannot take parameters (a script of several statements)."""
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "E'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def utcnow() -> datetime:
    return clock.now()


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_pool_timeout,
        "command_timeout": settings.db_statement_timeout_ms / 1000 or None,
        "server_settings": {"application_name": "hospital-api"},
    }
    if settings.db_pgbouncer:
        # In transaction mode each transaction may run on another server connection: a
        # statement prepared on one is unknown on the next, and names must not collide.
        connect_args |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        hide_parameters=True,  # errors and logs never carry the values (patient data)
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "handle_error", _unavailable_is_disconnect)
    return engine


# A server that cannot serve now: connection exceptions (08), shutting down, crashed or
# starting up (57P01-57P03), too many connections (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _unavailable_sqlstate(error: BaseException) -> bool:
    return str(getattr(error, "sqlstate", None) or "").startswith(_UNAVAILABLE_SQLSTATES)


def _is_unavailable(error: BaseException | None) -> bool:
    """The driver's own errors that mean the server cannot serve this connection now."""
    if error is None:
        return False
    if _unavailable_sqlstate(error):
        return True
    # asyncpg's InterfaceError (connection closed) and InternalClientError (protocol state
    # broken by an interrupted connect); OSError covers resets and the command timeout.
    return type(error).__name__ in ("InterfaceError", "InternalClientError") or isinstance(
        error, OSError
    )


def _unavailable_is_disconnect(context: ExceptionContext) -> None:
    """Count such errors as disconnects, also when they happen while connecting: the pool
    drops the connection, and the error handler answers 503 instead of 500."""
    error = context.original_exception
    # asyncpg's protocol state broken by an interrupted connect: the connection is unusable
    broken = type(error.__cause__).__name__ == "InternalClientError"
    if _unavailable_sqlstate(error) or broken:
        context.is_disconnect = True


@asynccontextmanager
async def driver_connection(bind: AsyncEngine | AsyncConnection) -> AsyncIterator[Any]:
    """An asyncpg connection of the pool, for a statement compiled ahead (core.compiled):
    nothing here begins a transaction (a write begins its own: transaction.write_unit), so
    each statement commits on its own. Given a
    connection instead of an engine (tests hold one in a transaction they roll back), the
    statement runs in it.

    A connection the server dropped is invalidated, so that the pool replaces it, and the
    failure surfaces as a ConnectionError (503 with Retry-After, as for SQLAlchemy's own).
    """
    # The pool's own connection record: a SQLAlchemy Connection around it would cost more
    # than the statement itself.
    try:
        pooled = await (
            _checkout(bind) if isinstance(bind, AsyncEngine) else bind.get_raw_connection()
        )
    except Exception as error:  # a new connection refused: the server is down or starting
        if _is_unavailable(error) or _is_unavailable(error.__cause__):
            raise ConnectionError(f"database unavailable: {type(error).__name__}") from error
        raise
    try:
        yield pooled.driver_connection
    except Exception as error:
        if not _is_unavailable(error):
            raise
        await greenlet_spawn(pooled.invalidate, error)
        raise ConnectionError(f"database unavailable: {type(error).__name__}") from error
    finally:
        if isinstance(bind, AsyncEngine):
            driver = pooled.driver_connection
            if driver is not None and driver.is_in_transaction():
                # A transaction neither committed nor rolled back (its end failed or was
                # cancelled): the connection must not serve another request.
                await greenlet_spawn(pooled.invalidate)
            await _checkin(bind, pooled)


# SQLAlchemy's pool runs in a greenlet so that it may await (connect, close, wait for a
# free connection); switching into one copies the request's deep stack, which costs more
# than the pool's own work. Taking an idle connection or giving one back to a pool with
# room awaits nothing, so those two run directly.


async def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool) and pool.checkedin() > 0:
        # An idle connection that was invalidated must reconnect, which awaits: the pool
        # gives its record back, and the connect it prepared, never started, is dropped.
        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
            try:
                return engine.sync_engine.raw_connection()
            except MissingGreenlet:
                pass
    return await engine.raw_connection()


async def _checkin(engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
    pool = engine.sync_engine.pool
    if pooled.is_valid and isinstance(pool, QueuePool) and pool.checkedin() < pool.size():
        pooled.close()
    else:  # a connection to close (invalidated, or beyond the pool's size) awaits it
        await greenlet_spawn(pooled.close)


async def close_engine(engine: AsyncEngine, *, wait_seconds: float = 3.0) -> None:
    """Dispose of the engine once the connections lent out have come back, waiting up to
    `wait_seconds` for them.

    At the end of the grace period the server cancels the requests still running and goes
    on to shut the app down at once. A request cancelled in a statement has the server
    cancel that statement, which rolls its transaction back, before its connection is
    closed; if the process exited first, a write whose COMMIT had already gone out with
    its last statement (transaction.DriverTransaction) would commit once that statement
    ran, though its client was told nothing."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while pool.checkedout() and loop.time() < deadline:
            await asyncio.sleep(0.01)
    await engine.dispose()


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


# SQLite connections run without a transaction when this execution option is set: the
# driver is in autocommit mode, and it is BEGIN IMMEDIATE (below) that opens one.
AUTOCOMMIT_OPTION = "sqlite_autocommit"


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine (its pool) with every statement committing on its own."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{AUTOCOMMIT_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so concurrent writers queue, never deadlock.

    A deferred SQLite transaction that reads and then writes fails at once with
    "database is locked" when another writer got there first; taking the write lock
    at BEGIN makes the second writer wait up to the busy timeout instead.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads run each statement on its own (app/transaction.py): no write lock for them.
        if not connection.get_execution_options().get(AUTOCOMMIT_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def dialect_name(bind: AsyncSession | AsyncConnection) -> str:
    """`postgresql` or `sqlite`, for the few statements each writes its own way."""
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name
    return bind.dialect.name
