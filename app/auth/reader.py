"""A read request: one scoped statement tells who is asking and what he may see.

Every GET of `/api` and `/fhir` runs this way: the token's claims (signature and expiry
verified, no database yet), the statement of the resource's policy joined to the caller's
row (`caller.scoped`), and the audit events of what was shown or refused, committed by
the group commit before the answer leaves (see app/transaction.py).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit import service as audit
from app.audit.batcher import AuditBatcher
from app.audit.repository import NewEvent
from app.auth import caller
from app.auth.mfa import policy as mfa_policy
from app.core import compiled
from app.core.context import Principal, RequestMeta
from app.core.db import driver_connection
from app.core.errors import Forbidden, Unauthorized
from app.core.security import TokenClaims
from app.transaction import ReadBinds

_CALLER_WIDTH = len(caller.CALLER_COLUMNS)


@dataclass(frozen=True, slots=True)
class Reader:
    claims: TokenClaims
    meta: RequestMeta
    binds: ReadBinds
    batcher: AuditBatcher
    mfa_required_roles: frozenset[str]
    # The request's state (the ASGI scope's): the caller's id goes there for its log line.
    state: dict[str, Any] = field(default_factory=dict)
    # A route open to a caller who must enrol a second factor first (auth.mfa.policy).
    enrolling: bool = False

    async def read(self, statement: Select[Any], **values: Any) -> "Scoped":
        """Run a `caller.scoped` statement; 401 when the database refuses the token, 403
        when the caller must get a second factor first."""
        values = {**caller.params(self.claims), **values}
        if self.binds.driver:
            async with driver_connection(self.binds.read) as connection:
                rows: list[Any] = await compiled.fetch(connection, statement, self.dialect, values)
        else:
            async with _connection(self.binds.read) as connection:
                rows = list((await connection.execute(statement, values)).all())
        if not rows:
            raise Unauthorized()
        first = rows[0]
        self.state["user_id"] = first[0]
        principal = caller.principal_of(first, self.claims, self.meta)
        if not self.enrolling:
            missing = mfa_policy.second_factor_missing(principal, self.mfa_required_roles)
            if missing:
                await self.publish([mfa_policy.refusal_event(principal)])
                raise mfa_policy.SecondFactorRequired(missing)
        # A single row of NULL data means there is none (the caller's row is joined to it).
        data = [] if len(rows) == 1 and first[_CALLER_WIDTH] is None else rows
        return Scoped(principal, data)

    async def count(self, statement: Select[Any], **values: Any) -> int:
        """The number a scoped `count()` statement reads (after the read it counts for
        has checked the caller's role)."""
        scoped = await self.read(statement, **values)
        return int(scoped.data(scoped.rows[0])[0]) if scoped.rows else 0

    @property
    def dialect(self) -> Dialect:
        return self.binds.read.dialect

    async def publish(self, events: Sequence[NewEvent]) -> None:
        """Commit these events (with those of other requests) before anything is answered."""
        if events:
            await self.batcher.append(self.binds, events)

    async def require(self, principal: Principal, roles: Collection[str]) -> None:
        """403, recorded, unless the caller's role (the database's) is one of `roles`."""
        if principal.role not in roles:
            await self.publish([audit.forbidden_event(principal)])
            raise Forbidden()


@dataclass(frozen=True, slots=True)
class Scoped:
    """The caller, and the data rows of the statement (caller columns first, then data)."""

    caller: Principal
    rows: Sequence[Sequence[Any]]

    def data(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(row[_CALLER_WIDTH:])


def _connection(bind: AsyncEngine | AsyncConnection) -> Any:
    """A pooled connection of the engine (autocommit, see app/transaction.py), or the
    connection given (tests run in a transaction they roll back)."""
    if isinstance(bind, AsyncEngine):
        return bind.connect()
    return _Borrowed(bind)


class _Borrowed:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def __aenter__(self) -> AsyncConnection:
        return self._connection

    async def __aexit__(self, *_exc: object) -> None:
        return None
