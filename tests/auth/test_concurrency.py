"""Races decided by the database, with real commits: registrations and the lock-out count."""

import asyncio

from sqlalchemy import func, select

from app.auth.models import LoginFailure
from app.users.models import User
from tests.auth.conftest import Live, registration

ATTEMPTS = 20


async def test_concurrent_registrations_of_one_username(live: Live) -> None:
    """Every request passes the pre-check at once; the unique constraint decides: one 201."""
    payloads = [
        registration(username="Racer" if index % 2 else "RACER", email=f"racer{index}@example.org")
        for index in range(ATTEMPTS)
    ]
    responses = await asyncio.gather(
        *(live.client.post("/auth/register/", json=payload) for payload in payloads)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (ATTEMPTS - 1), statuses
    async with live.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.username_key == "racer")
        )
    assert count == 1


async def test_concurrent_wrong_passwords_count_exactly(live: Live) -> None:
    payload = registration()
    assert (await live.client.post("/auth/register/", json=payload)).status_code == 201
    responses = await asyncio.gather(
        *(
            live.client.post(
                "/auth/login/",
                json={"username": payload["username"], "password": "definitely wrong 1"},
            )
            for _ in range(ATTEMPTS)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * 5 + [429] * (ATTEMPTS - 5), statuses
    async with live.sessionmaker() as session:
        failures = await session.scalar(
            select(LoginFailure.failures).where(
                LoginFailure.username_key == payload["username"].casefold()
            )
        )
    assert failures == 5
