"""Request-scoped dependencies shared by every router."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.context import RequestMeta
from app.core.db import session_scope

_session_scope = asynccontextmanager(session_scope)
# Requests that change nothing but the audit trail (appended in one statement).
READS = frozenset({"GET", "HEAD"})


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction (see session_scope); reads run in autocommit on PostgreSQL."""
    # Behind PgBouncer in transaction mode only a transaction keeps a statement's prepare
    # and execute on one server connection: there, reads keep their transaction too.
    autocommit = request.method in READS and not request.app.state.settings.db_pgbouncer
    async with _session_scope(request.app.state.sessionmaker, autocommit=autocommit) as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # A context manager, not `async for`: the endpoint's error must be thrown into
    # session_scope, which commits a refusal's writes (keeps_writes) or rolls back.
    async with request_session(request) as session:
        yield session


# scope="function": the transaction ends (commit or rollback) before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def request_meta(request: Request) -> RequestMeta:
    return RequestMeta(
        ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def get_request_meta(request: Request) -> RequestMeta:
    return request_meta(request)


MetaDep = Annotated[RequestMeta, Depends(get_request_meta)]


async def get_signing_key(request: Request) -> str:
    key: str = request.app.state.signing_key
    return key


SigningKeyDep = Annotated[str, Depends(get_signing_key)]
