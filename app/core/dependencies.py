"""Request-scoped dependencies shared by every router."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app import transaction
from app.core.config import Settings
from app.core.context import RequestMeta


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A write request's transaction (app/transaction.py decides how it ends). A context
    manager, not `async for`: the endpoint's error must be thrown into write_session."""
    async with transaction.write_session(request.app.state.sessionmaker) as session:
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
