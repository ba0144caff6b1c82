"""Races decided by the database, with real commits: a code, a recovery code and an MFA
token each serve one login, however many requests present them at once."""

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from app.users.models import User
from tests.auth.conftest import registration
from tests.factories import Factor, enrol_confirmed
from tests.live import Live
from tests.mfa.helpers import at_step_second, mfa_token, verify

RACERS = 8


async def enrolled_user(live: Live) -> tuple[str, Factor]:
    payload = registration()
    assert (await live.client.post("/auth/register/", json=payload)).status_code == 201
    async with live.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.username == payload["username"]))
        assert user is not None
        factor = await enrol_confirmed(session, user)
    return payload["username"], factor


async def tokens(client: httpx.AsyncClient, username: str, password: str) -> list[str]:
    return [await mfa_token(client, username, password) for _ in range(RACERS)]


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


def one_login(responses: list[httpx.Response]) -> None:
    """One login; each other request is a replay, counted toward the lock-out (401, then
    429 once five have failed since the last login)."""
    answered = statuses(responses)
    assert answered.count(200) == 1, answered
    assert set(answered) <= {200, 401, 429}, answered


async def test_one_mfa_token_presented_at_once_logs_in_once(live: Live, frozen_clock: Any) -> None:
    username, factor = await enrolled_user(live)
    at_step_second(frozen_clock, 3)
    token = await mfa_token(live.client, username, registration()["password"])
    code = factor.code()
    responses = await asyncio.gather(*(verify(live.client, token, code) for _ in range(RACERS)))
    assert statuses(responses) == [200] + [401] * (RACERS - 1)


async def test_one_code_presented_at_once_logs_in_once(live: Live, frozen_clock: Any) -> None:
    username, factor = await enrolled_user(live)
    at_step_second(frozen_clock, 3)
    racing = await tokens(live.client, username, registration()["password"])
    code = factor.code()
    responses = await asyncio.gather(*(verify(live.client, token, code) for token in racing))
    one_login(responses)


async def test_one_recovery_code_presented_at_once_logs_in_once(live: Live) -> None:
    username, factor = await enrolled_user(live)
    racing = await tokens(live.client, username, registration()["password"])
    code = factor.recovery_codes[0]
    responses = await asyncio.gather(*(verify(live.client, token, code) for token in racing))
    one_login(responses)
