"""POST /auth/login/: JSON and OAuth2 form, one answer for every bad credential, lock-out."""

import asyncio
import logging
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.models import LoginFailure
from app.core import security
from app.core.db import create_engine, create_sessionmaker
from app.main import create_app
from app.users.models import User
from tests.auth.conftest import (
    GOOD_PASSWORD,
    assert_unauthorized,
    bearer,
    events,
    login,
    registration,
)
from tests.conftest import make_settings
from tests.factories import DEFAULT_PASSWORD, create_patient

WRONG = "not the right password"
JSON = {"Content-Type": "application/json"}
TEXT_PLAIN = {"Content-Type": "text/plain"}
BROKEN_MULTIPART = {"Content-Type": "multipart/form-data; boundary=x"}


def assert_token_pair(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert response.headers["Cache-Control"] == "no-store"
    return body


async def test_json_login(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await create_patient(db)
    body = assert_token_pair(await login(client, user.username))
    me = await client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == user.username
    [event] = await events(db, "auth.login")
    assert (event.actor_id, event.outcome) == (user.id, "allowed")


async def test_username_is_case_insensitive(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await create_patient(db)
    assert_token_pair(await login(client, user.username.upper()))


async def test_oauth2_form_login_as_swagger_sends_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await create_patient(db)
    response = await client.post(
        "/auth/login/",
        data={
            "grant_type": "password",
            "username": user.username,
            "password": DEFAULT_PASSWORD,
            "scope": "",
            "client_id": "",
            "client_secret": "",
        },
    )
    assert_token_pair(response)


@pytest.mark.parametrize(
    ("kwargs", "loc"),
    [
        ({"json": {"username": "a", "password": "b", "extra": 1}}, ["body", "extra"]),
        ({"json": {"username": "a"}}, ["body", "password"]),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, ["body"]),
        ({"data": {"username": "a", "password": "b", "grant_type": "code"}}, None),
        ({"data": {"username": "a", "password": "b", "role": "admin"}}, ["body", "role"]),
        ({"json": {"username": "a", "password": "p" * 1025}}, ["body", "password"]),
        ({"content": b'{"username":"a","password":"b"}', "headers": TEXT_PLAIN}, ["body"]),
        ({"content": b"--x\r\nbroken", "headers": BROKEN_MULTIPART}, ["body", "username"]),
        ({"content": b"[" * 100_000 + b"]" * 100_000, "headers": JSON}, ["body"]),
        (
            {"content": b'{"username": "\xed\xa0\x80", "password": "b"}', "headers": JSON},
            ["body", "username"],
        ),
    ],
)
async def test_malformed_login_is_422(
    client: httpx.AsyncClient, kwargs: dict[str, Any], loc: list[str] | None
) -> None:
    response = await client.post("/auth/login/", **kwargs)
    assert response.status_code == 422
    if loc is not None:
        assert response.json()["detail"][0]["loc"] == loc
    assert "p" * 1025 not in response.text


async def test_unknown_user_and_wrong_password_get_the_same_401(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await create_patient(db)
    wrong_password = await login(client, user.username, WRONG)
    unknown_user = await login(client, "nobody_by_that_name", WRONG)
    assert_unauthorized(wrong_password)
    assert_unauthorized(unknown_user)
    assert wrong_password.json() == unknown_user.json()
    failed = await events(db, "auth.login")
    assert [(event.actor_id, event.outcome) for event in failed] == [
        (user.id, "failed"),
        (None, "failed"),
    ]


async def test_unknown_user_costs_a_password_verification(
    client: httpx.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing does not tell which usernames exist: both paths verify a real argon2 hash.

    The real hasher runs; the spy only records which hashes it was asked to verify.
    """
    user = await create_patient(db)
    verified: list[str] = []
    real_verify = security._passwords.verify_and_update

    def spy(secret: str, stored: str) -> Any:
        verified.append(stored)
        return real_verify(secret, stored)

    monkeypatch.setattr(security._passwords, "verify_and_update", spy)
    assert_unauthorized(await login(client, user.username, WRONG))
    assert_unauthorized(await login(client, "ghost_of_nobody", WRONG))
    assert len(verified) == 2
    known_hash, dummy_hash = verified
    assert known_hash == user.password_hash
    assert dummy_hash.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in dummy_hash  # the same cost as a real user's hash


async def test_inactive_user_gets_the_same_401(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await create_patient(db, is_active=False)
    response = await login(client, user.username)  # the right password
    assert_unauthorized(response)
    assert response.json() == (await login(client, "nobody_at_all", WRONG)).json()


async def test_outdated_hash_is_replaced_on_login(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(DEFAULT_PASSWORD)
    user = await create_patient(db)
    user.password_hash = weak
    await db.commit()
    assert_token_pair(await login(client, user.username))
    stored = await db.scalar(
        select(User.password_hash)
        .where(User.id == user.id)
        .execution_options(populate_existing=True)
    )
    assert stored != weak
    assert stored is not None
    assert "m=19456,t=2,p=1" in stored
    assert_token_pair(await login(client, user.username))


async def counter(db: AsyncSession, username_key: str) -> LoginFailure | None:
    return await db.scalar(
        select(LoginFailure)
        .where(LoginFailure.username_key == username_key)
        .execution_options(populate_existing=True)
    )


async def test_five_failures_lock_out_even_the_right_password(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    for attempt in range(5):
        assert_unauthorized(
            await login(client, user.username if attempt % 2 else user.username.upper(), WRONG)
        )
    frozen_clock.advance(minutes=1)
    locked = await login(client, user.username)  # the right password
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(14 * 60)
    assert "access_token" not in locked.text
    frozen_clock.advance(minutes=10)
    still = await login(client, user.username, WRONG)
    assert still.status_code == 429
    assert still.headers["Retry-After"] == str(4 * 60)  # attempts while locked do not extend it
    row = await counter(db, user.username.casefold())
    assert row is not None
    assert row.failures == 5
    lockouts = await events(db, "auth.lockout")
    assert [(event.actor_id, event.outcome) for event in lockouts] == [(user.id, "denied")] * 2

    frozen_clock.advance(minutes=4, seconds=1)
    assert_token_pair(await login(client, user.username))


async def test_unknown_usernames_are_locked_out_too(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert_unauthorized(await login(client, "no_such_user", WRONG))
    response = await login(client, "No_Such_User", WRONG)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 15 * 60 - 60


async def test_a_successful_login_resets_the_count(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await create_patient(db)
    for _ in range(2):
        for _ in range(4):
            assert_unauthorized(await login(client, user.username, WRONG))
        assert_token_pair(await login(client, user.username))
    row = await counter(db, user.username.casefold())
    assert row is not None
    assert row.failures == 0


async def test_failures_in_an_ended_window_start_a_new_one(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    for _ in range(4):
        assert_unauthorized(await login(client, user.username, WRONG))
    frozen_clock.advance(minutes=16)
    for _ in range(4):
        assert_unauthorized(await login(client, user.username, WRONG))
    assert_token_pair(await login(client, user.username))


@pytest.mark.parametrize("username", ["ß" * 150, "ﬃ" * 150, "İ" * 150])
async def test_usernames_that_casefold_longer_are_refused_cleanly(
    client: httpx.AsyncClient, username: str
) -> None:
    for _ in range(5):
        assert_unauthorized(await login(client, username, WRONG))
    assert (await login(client, username, WRONG)).status_code == 429


async def test_inactive_user_failures_count(client: httpx.AsyncClient, db: AsyncSession) -> None:
    user = await create_patient(db, is_active=False)
    for _ in range(5):
        assert_unauthorized(await login(client, user.username))
    assert (await login(client, user.username)).status_code == 429


async def test_no_password_or_token_in_log_lines(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = registration()
    await client.post("/auth/register/", json=payload)
    tokens = (await login(client, payload["username"], GOOD_PASSWORD)).json()
    await login(client, payload["username"], WRONG)
    await client.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
    logged = caplog.text
    assert logged  # the requests were logged
    for secret in (GOOD_PASSWORD, WRONG, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logged


@pytest.mark.postgres_only  # a pool of its own, as production has
async def test_no_connection_is_held_while_a_password_is_checked(
    fresh_database_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storm of logins must not take the pool from everyone else: while argon2 runs, the
    login holds no pooled connection (and no lock on the username's counter)."""
    settings = make_settings(await fresh_database_url(), db_pool_size=2)
    engine = create_engine(settings)
    app = create_app(settings)
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    checking: list[int] = []
    release = asyncio.Event()
    real_verify = security.verify_password

    async def slow_verify(password: str, password_hash: str | None) -> Any:
        checking.append(1)
        await release.wait()
        return await real_verify(password, password_hash)

    monkeypatch.setattr(auth_service, "verify_password", slow_verify)
    try:
        async with app.state.sessionmaker() as session:
            patient = await create_patient(session)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            logins = [asyncio.create_task(login(client, patient.username)) for _ in range(4)]

            async def all_checking() -> None:  # more logins than the pool has connections
                while len(checking) < len(logins):
                    await asyncio.sleep(0.01)

            try:
                await asyncio.wait_for(all_checking(), 5)
                held = engine.pool.checkedout()  # type: ignore[attr-defined]
                ready = await client.get("/readyz")
            finally:
                release.set()
            answers = await asyncio.wait_for(asyncio.gather(*logins), 30)
    finally:
        await engine.dispose()
    assert held == 0
    assert ready.status_code == 200
    assert [answer.status_code for answer in answers] == [200] * 4
