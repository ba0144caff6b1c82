"""Several processes: two uvicorn processes serving one PostgreSQL database. What one of
them decides (a logout, a password change, a deactivation, a failed login) holds at once
on the other, and a token issued by one is accepted by the other."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.db import create_engine, create_sessionmaker
from app.users.models import User
from tests.conftest import make_settings
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    create_record,
    enrol_confirmed,
)
from tests.live import Live, start

pytestmark = pytest.mark.postgres_only  # several processes share PostgreSQL


@dataclass
class Pair:
    database_url: str
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    servers: list[Live]

    async def user(self, admin: bool = False) -> User:
        engine = create_engine(make_settings(self.database_url))
        try:
            async with create_sessionmaker(engine)() as session:
                return await (create_admin(session) if admin else create_patient(session))
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
async def pair(
    fresh_database_url: Callable[[], Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pair]:
    database_url = await fresh_database_url()
    log_dir = tmp_path_factory.mktemp("processes")
    async with await start(database_url, log_dir) as a, await start(database_url, log_dir) as b:
        yield Pair(database_url, a.client, b.client, [a, b])
    for server in (a, b):
        assert "Traceback" not in server.log(), server.log()


async def login(http: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD) -> Any:
    response = await http.post("/auth/login/", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_token_from_one_process_works_on_the_other(pair: Pair) -> None:
    user = await pair.user()
    tokens = await login(pair.a, user.username)

    me = await pair.b.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["id"] == user.id
    refreshed = await pair.b.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert (await pair.a.get("/auth/me", headers=bearer(refreshed.json()))).status_code == 200


async def test_a_logout_on_one_process_is_honoured_at_once_by_the_other(pair: Pair) -> None:
    user = await pair.user()
    tokens = await login(pair.a, user.username)
    assert (await pair.b.get("/auth/me", headers=bearer(tokens))).status_code == 200

    assert (await pair.a.post("/auth/logout/", headers=bearer(tokens))).status_code == 204

    assert (await pair.b.get("/auth/me", headers=bearer(tokens))).status_code == 401
    refresh = await pair.b.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_a_password_change_on_one_process_is_honoured_at_once_by_the_other(
    pair: Pair,
) -> None:
    user = await pair.user()
    before = await login(pair.a, user.username)
    other_login = await login(pair.b, user.username)
    new_password = "a brand new passphrase"

    changed = await pair.a.post(
        "/auth/password/",
        json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
        headers=bearer(before),
    )
    assert changed.status_code == 204

    for tokens in (before, other_login):
        assert (await pair.b.get("/auth/me", headers=bearer(tokens))).status_code == 401
        refresh = await pair.b.post(
            "/auth/refresh/", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
    old = await pair.b.post(
        "/auth/login/", json={"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert old.status_code == 401
    after = await login(pair.b, user.username, new_password)
    assert (await pair.a.get("/auth/me", headers=bearer(after))).status_code == 200


async def test_a_deactivation_on_one_process_is_honoured_at_once_by_the_other(
    pair: Pair,
) -> None:
    admin = await pair.user(admin=True)
    user = await pair.user()
    admin_tokens = await login(pair.a, admin.username)
    tokens = await login(pair.b, user.username)

    deactivated = await pair.a.patch(
        f"/api/users/{user.id}", json={"is_active": False}, headers=bearer(admin_tokens)
    )
    assert deactivated.status_code == 200
    assert deactivated.json()["is_active"] is False

    assert (await pair.b.get("/auth/me", headers=bearer(tokens))).status_code == 401
    refresh = await pair.b.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    relogin = await pair.b.post(
        "/auth/login/", json={"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert relogin.status_code == 401


async def test_lockouts_count_across_processes(pair: Pair) -> None:
    user = await pair.user()
    attempts = 12

    responses = await asyncio.gather(
        *(
            (pair.a if n % 2 else pair.b).post(
                "/auth/login/", json={"username": user.username, "password": f"wrong {n}"}
            )
            for n in range(attempts)
        )
    )

    assert Counter(r.status_code for r in responses) == {401: 5, 429: attempts - 5}
    for http in (pair.a, pair.b):
        right = await http.post(
            "/auth/login/", json={"username": user.username, "password": DEFAULT_PASSWORD}
        )
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) > 0


async def test_an_mfa_token_and_a_code_serve_one_login_across_processes(pair: Pair) -> None:
    """Spent on one process, refused by the other: the MFA token's single use and the
    code's step are recorded in the database. The servers' real clock: a code of the
    current step, then the next one (one step of drift either way absorbs a boundary)."""
    user = await pair.user()
    engine = create_engine(make_settings(pair.database_url))
    try:
        async with create_sessionmaker(engine)() as session:
            factor = await enrol_confirmed(session, user, pair.servers[0].settings)
    finally:
        await engine.dispose()

    async def mfa_token(http: httpx.AsyncClient) -> str:
        response = await http.post(
            "/auth/login/", json={"username": user.username, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 401, response.text
        token: str = response.json()["mfa_token"]
        return token

    async def verify(http: httpx.AsyncClient, token: str, code: str) -> int:
        body = {"mfa_token": token, "code": code}
        return (await http.post("/auth/mfa/verify", json=body)).status_code

    token, other = await mfa_token(pair.a), await mfa_token(pair.a)
    code = factor.code()
    assert await verify(pair.a, token, code) == 200
    assert await verify(pair.b, token, factor.code(steps=1)) == 401  # the token is spent
    assert await verify(pair.b, other, code) == 401  # and the code's step is used
    assert await verify(pair.b, await mfa_token(pair.b), factor.code(steps=1)) == 200


async def test_the_audit_chain_stays_intact_when_both_processes_append(pair: Pair) -> None:
    engine = create_engine(make_settings(pair.database_url))
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session)
            doctor = await create_doctor(session, department)
            patient = await create_patient(session)
            record = await create_record(
                session, patient=patient, doctor=doctor, department=department
            )
    finally:
        await engine.dispose()
    admin = await pair.user(admin=True)
    doctor_tokens = await login(pair.a, doctor.username)
    admin_tokens = await login(pair.b, admin.username)

    responses = await asyncio.gather(
        *(
            (pair.a if n % 2 else pair.b).get(
                f"/api/patient_records/{record.id}", headers=bearer(doctor_tokens)
            )
            for n in range(30)
        ),
        *(
            (pair.b if n % 2 else pair.a).post(
                "/api/patient_records/",
                json={"patient_id": patient.id, "diagnosis": f"Visit {n}"},
                headers=bearer(doctor_tokens),
            )
            for n in range(10)
        ),
    )

    assert Counter(r.status_code for r in responses) == {200: 30, 201: 10}
    verify = await pair.a.get("/api/audit/verify", headers=bearer(admin_tokens))
    assert verify.status_code == 200
    assert verify.json()["ok"] is True


async def test_servers_stop_cleanly(tmp_path: Path, pair: Pair) -> None:
    """A third process on the same database starts, serves, and exits cleanly on SIGTERM."""
    async with await start(pair.database_url, tmp_path) as server:
        assert (await server.client.get("/readyz")).status_code == 200
    assert server.exit_code in (0, -15), server.log()
    assert "Application shutdown complete" in server.log()
    assert "Traceback" not in server.log()


async def test_an_address_limit_counts_across_processes(
    fresh_database_url: Callable[[], Any], tmp_path: Path
) -> None:
    """Two processes, one count: the requests of one address alternate between them."""
    database_url = await fresh_database_url()
    limit = "6/1h"  # an hour: no window ends during the test
    async with (
        await start(database_url, tmp_path, rate_limit_refresh=limit) as a,
        await start(database_url, tmp_path, rate_limit_refresh=limit) as b,
    ):
        statuses = [
            (
                await (a, b)[n % 2].client.post("/auth/refresh/", json={"refresh_token": "x"})
            ).status_code
            for n in range(10)
        ]
    assert statuses == [401] * 6 + [429] * 4
