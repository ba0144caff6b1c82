"""Helpers of the MFA tests: the two-step login, the clock at a chosen point of a step, an
app with other settings on the test's database."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.mfa import codes
from app.core.config import Settings
from app.main import create_app
from tests.auth.conftest import assert_unauthorized, login
from tests.factories import DEFAULT_PASSWORD


def at_step_second(clock: Any, second: int) -> int:
    """Move the frozen clock forward to `second` (0-29) into a later TOTP step; that step."""
    step = codes.step_at(clock.current) + 1
    clock.current = datetime.fromtimestamp(step * codes.PERIOD_SECONDS + second, tz=UTC)
    return step


async def mfa_token(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> str:
    """Step one of the login of a user with MFA: the right password, 401 and its token."""
    response = await login(client, username, password)
    assert_unauthorized(response)
    body = response.json()
    assert set(body) == {"detail", "mfa_token"}, body
    assert body["detail"] == "MFA required"
    token: str = body["mfa_token"]
    return token


async def verify(client: httpx.AsyncClient, token: str, code: str) -> httpx.Response:
    return await client.post("/auth/mfa/verify", json={"mfa_token": token, "code": code})


async def log_in_with_code(client: httpx.AsyncClient, username: str, code: str) -> httpx.Response:
    return await verify(client, await mfa_token(client, username), code)


@asynccontextmanager
async def app_with(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with these settings changed, on the test's database (its transaction)."""
    app = create_app(settings.model_copy(update=overrides))
    app.state.engine, app.state.sessionmaker = engine, sessionmaker
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
    finally:
        if app.state.rate_limiter is not None:
            await app.state.rate_limiter.counters.close()
