"""How every request's work ends: the one place that decides what commits, and when.

GET and HEAD (a `Reader`, auth.reader), and FHIR's `POST …/_search` (a search whose
parameters come as a form):
- their statements each commit on their own (autocommit); behind PgBouncer, in one
  transaction;
- their audit events go to the group commit (`AuditBatcher`), awaited before the answer
  leaves; a refusal's events go the same way, then the refusal is answered;
- `GET /api/audit/verify` is the exception: its walk of the chain is one transaction (one
  snapshot), and its event is recorded in it, as a write's.

POST, PATCH and DELETE, one transaction each: `write_unit` for the writes of records,
departments and emergency grants (Core statements, run on PostgreSQL's driver as the reads'
are), `write_session` for those of accounts (users, logins, registrations, MFA: the ORM's):
- their audit events are appended as the transaction's last statement, then it commits;
- a refusal (401, 403, 404, 429, a wrong current password or second-factor code) commits
  too: what the request recorded about it (its events, a failed login counted, a login
  revoked on refresh-token reuse, an MFA token spent);
- any other error rolls everything back, events included.

Why writes do not use the group commit: a write's event must commit with the write, or not
at all (no change without its event, no event for a change rolled back), and the group
commit appends in a transaction of its own. Reads change nothing but the trail, so theirs
can share one append with every other read waiting.

A write's audit append locks the chain head: taken as the transaction's last statement, and
sent to the server in one message with the commit (on PostgreSQL's driver), the lock is held
only while the server appends and commits.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from asyncpg import exceptions as driver_errors  # type: ignore[import-untyped]
from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import ClauseElement

from app.audit import repository as audit_repository
from app.audit.repository import NewEvent
from app.core import compiled, db
from app.core.context import Principal
from app.core.errors import (
    Forbidden,
    IncorrectCode,
    IncorrectPassword,
    NotFound,
    TooManyRequests,
    Unauthorized,
)

READS = frozenset({"GET", "HEAD"})
REFUSALS = (Unauthorized, Forbidden, NotFound, TooManyRequests, IncorrectPassword, IncorrectCode)
_PENDING = "audit_events"


class Unit(Protocol):
    """A write's transaction, a session or a `Write`: what it records goes in its `info`."""

    @property
    def info(self) -> dict[str, Any]: ...


def pending_events(unit: Unit) -> list[NewEvent]:
    """The events a write has recorded so far: appended when it commits."""
    events: list[NewEvent] = unit.info.setdefault(_PENDING, [])
    return events


async def commit(session: AsyncSession) -> None:
    """Append the session's pending events (the last statement), then commit."""
    events: Sequence[NewEvent] = session.info.pop(_PENDING, [])
    if events:
        await audit_repository.append(await session.connection(), events)
    await session.commit()


async def rollback(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)
    await session.rollback()


@asynccontextmanager
async def write_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A write request's transaction: commit on success and on a refusal, else roll back."""
    async with sessionmaker() as session:
        try:
            yield session
        except REFUSALS:
            await commit(session)
            raise
        except BaseException:
            await rollback(session)
            raise
        else:
            await commit(session)


@dataclass(frozen=True, slots=True)
class ReadBinds:
    """Where a read's statements go, where its group commit appends, and whether they run
    on the driver itself (PostgreSQL reached directly: core.compiled)."""

    read: AsyncEngine | AsyncConnection
    append: AsyncEngine | AsyncConnection
    driver: bool = False


def read_binds(state: Any) -> ReadBinds:
    """A read's statements each commit on their own (autocommit), except behind PgBouncer,
    whose transaction mode keeps a statement's prepare and execute on one server connection
    only inside a transaction. The group commit's append is one statement on PostgreSQL
    (autocommit too, behind PgBouncer a transaction) and three on SQLite, in a transaction
    (BEGIN IMMEDIATE: the write lock). Tests lend a connection held in a transaction they
    roll back: everything goes there."""
    bind = state.sessionmaker.kw["bind"]
    if not isinstance(bind, AsyncEngine):
        driver = bind.dialect.name == "postgresql" and not state.settings.db_pgbouncer
        return ReadBinds(bind, bind, driver)
    binds: ReadBinds | None = getattr(state, "read_binds", None)
    if binds is None or binds.append.sync_engine.pool is not bind.sync_engine.pool:
        if state.settings.db_pgbouncer:
            binds = ReadBinds(bind, bind)
        elif bind.dialect.name == "postgresql":
            binds = ReadBinds(bind, bind, driver=True)  # the driver commits each statement
        else:
            binds = ReadBinds(db.autocommit(bind), bind)
        state.read_binds = binds
    return binds


@dataclass(eq=False, slots=True)
class Write:
    """A domain write's transaction: its Core statements, its caller (once the token is
    checked), and the events it records. On PostgreSQL reached directly, the statements run
    on the driver (core.compiled, as the reads'); else on a SQLAlchemy connection. Either
    way a failed constraint raises SQLAlchemy's IntegrityError, so that the domains and the
    error handlers know one kind."""

    connection: Any  # asyncpg's, when `driver`; else a SQLAlchemy AsyncConnection
    dialect: Dialect
    driver: bool
    info: dict[str, Any] = field(default_factory=dict)
    caller: Principal | None = None

    @property
    def principal(self) -> Principal:
        assert self.caller is not None, "the route's dependency sets the caller"
        return self.caller

    async def one(self, statement: ClauseElement, values: Mapping[str, Any]) -> Any:
        """The statement's first row as a tuple (or None)."""
        if not self.driver:
            return (await self.connection.execute(statement, values)).first()
        try:
            rows = await compiled.fetch(self.connection, statement, self.dialect, values)
        except driver_errors.IntegrityConstraintViolationError as error:
            raise exc.IntegrityError(str(statement), None, error) from error
        return rows[0] if rows else None

    async def scalar(self, statement: ClauseElement, values: Mapping[str, Any]) -> Any:
        row = await self.one(statement, values)
        return None if row is None else row[0]

    async def commit(self, transaction: Any) -> None:
        """Append the recorded events (the transaction's last statement), then commit."""
        events: Sequence[NewEvent] = self.info.pop(_PENDING, [])
        if self.driver:
            await transaction.commit_after(events)
            return
        if events:
            await audit_repository.append(self.connection, events)
        await transaction.commit()


@dataclass(slots=True)
class DriverTransaction:
    """A write's transaction on the driver's connection (a savepoint inside a test's
    transaction), ended together with its audit append: both go to the server in one
    message (audit.repository.append_on_driver)."""

    connection: Any
    savepoint: bool = False

    async def start(self) -> None:
        self.savepoint = self.connection.is_in_transaction()
        await self.connection.execute("SAVEPOINT write" if self.savepoint else "BEGIN")

    async def commit_after(self, events: Sequence[NewEvent]) -> None:
        end = "RELEASE SAVEPOINT write" if self.savepoint else "COMMIT"
        await audit_repository.append_on_driver(self.connection, events, then=end)

    async def rollback(self) -> None:
        if self.savepoint:
            await self.connection.execute("ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write")
        else:
            await self.connection.execute("ROLLBACK")


@asynccontextmanager
async def write_unit(state: Any) -> AsyncIterator[Write]:
    """A domain write's transaction, ended as `write_session` ends a session's: committed
    (its events appended last) on success and on a refusal, else rolled back."""
    bind = state.sessionmaker.kw["bind"]
    driver = bind.dialect.name == "postgresql" and not state.settings.db_pgbouncer
    if driver:
        async with db.driver_connection(bind) as connection:
            driver_transaction = DriverTransaction(connection)
            await driver_transaction.start()
            async with _ending(Write(connection, bind.dialect, True), driver_transaction) as write:
                yield write
        return
    if isinstance(bind, AsyncEngine):
        async with bind.connect() as connection, connection.begin() as transaction:
            async with _ending(Write(connection, bind.dialect, False), transaction) as write:
                yield write
        return
    async with bind.begin_nested() as transaction:  # a connection lent by a test
        async with _ending(Write(bind, bind.dialect, False), transaction) as write:
            yield write


@asynccontextmanager
async def _ending(write: Write, transaction: Any) -> AsyncIterator[Write]:
    """Commit `transaction` (a driver's or SQLAlchemy's) on success and on a refusal, with
    the events appended first; roll it back on any other error."""
    try:
        yield write
    except REFUSALS:
        await write.commit(transaction)
        raise
    except BaseException:
        write.info.pop(_PENDING, None)
        await transaction.rollback()
        raise
    await write.commit(transaction)
