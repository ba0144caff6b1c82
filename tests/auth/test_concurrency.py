"""Races decided by the database, against a live server with real commits: registrations,
the lock-out count, refresh-token reuse, a password change among refreshes and logins."""

import asyncio

from sqlalchemy import func, select

from app.auth.models import LoginFailure
from app.users.models import User
from tests.auth.conftest import registration
from tests.live import Live, race

ATTEMPTS = 20


async def test_concurrent_registrations_of_one_username(live: Live) -> None:
    """Every request passes the pre-check at once; the unique constraint decides: one 201."""
    spellings = ["racer", "Racer", "RACER", "rAcEr"]
    payloads = [
        registration(username=spellings[index % len(spellings)], email=f"racer{index}@example.org")
        for index in range(ATTEMPTS)
    ]
    responses = await race(
        *(live.client.post("/auth/register/", json=payload) for payload in payloads)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (ATTEMPTS - 1), [r.text for r in responses]
    count = await live.scalar(
        select(func.count()).select_from(User).where(User.username_key == "racer")
    )
    assert count == 1


async def test_concurrent_wrong_passwords_count_exactly(live: Live) -> None:
    payload = registration()
    assert (await live.client.post("/auth/register/", json=payload)).status_code == 201
    limit = live.settings.login_max_failures
    responses = await race(
        *(
            live.client.post(
                "/auth/login/",
                json={"username": payload["username"], "password": f"definitely wrong {index}"},
            )
            for index in range(ATTEMPTS)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * limit + [429] * (ATTEMPTS - limit), statuses
    assert all(
        int(response.headers["Retry-After"]) > 0
        for response in responses
        if response.status_code == 429
    )
    failures = await live.scalar(
        select(LoginFailure.failures).where(
            LoginFailure.username_key == payload["username"].casefold()
        )
    )
    assert failures == limit
    right = await live.client.post(
        "/auth/login/", json={"username": payload["username"], "password": payload["password"]}
    )
    assert right.status_code == 429


async def test_concurrent_uses_of_one_refresh_token(live: Live) -> None:
    """The family row lock lets one use through; the others are reuse and end the login."""
    payload = registration()
    assert (await live.client.post("/auth/register/", json=payload)).status_code == 201
    tokens = (
        await live.client.post(
            "/auth/login/",
            json={"username": payload["username"], "password": payload["password"]},
        )
    ).json()
    responses = await asyncio.gather(
        *(
            live.client.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(10)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 9, statuses
    [winner] = [response.json() for response in responses if response.status_code == 200]
    again = await live.client.post(
        "/auth/refresh/", json={"refresh_token": winner["refresh_token"]}
    )
    assert again.status_code == 401  # a reuse revoked the whole login


async def test_password_change_racing_refreshes_and_logins(live: Live) -> None:
    """Lock order (counter, user, then families) leaves no deadlock and no 500."""
    payload = registration()
    assert (await live.client.post("/auth/register/", json=payload)).status_code == 201
    credentials = {"username": payload["username"], "password": payload["password"]}
    pairs = [(await live.client.post("/auth/login/", json=credentials)).json() for _ in range(6)]
    change = live.client.post(
        "/auth/password/",
        json={"current_password": payload["password"], "new_password": "fresh passphrase 99"},
        headers={"Authorization": f"Bearer {pairs[0]['access_token']}"},
    )
    refreshes = [
        live.client.post("/auth/refresh/", json={"refresh_token": pair["refresh_token"]})
        for pair in pairs[1:]
    ]
    logins = [live.client.post("/auth/login/", json=credentials) for _ in range(3)]
    responses = await asyncio.gather(change, *refreshes, *logins)
    assert responses[0].status_code == 204
    assert all(response.status_code in (200, 401) for response in responses[1:])
    # Every access token issued before the change, or during the race (a 200 that won its
    # race against the change), is refused now: the six logins' tokens at least.
    issued = [pair["access_token"] for pair in pairs]
    issued += [r.json()["access_token"] for r in responses[1:] if r.status_code == 200]
    assert len(issued) >= len(pairs)
    for token in issued:
        me = await live.client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    fresh = await live.client.post(
        "/auth/login/",
        json={"username": payload["username"], "password": "fresh passphrase 99"},
    )
    assert fresh.status_code == 200
    headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert (await live.client.get("/auth/me", headers=headers)).status_code == 200
