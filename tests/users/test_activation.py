"""Activating and deactivating users: a deactivated user's tokens stop working at once."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.users.models import User
from tests.factories import DEFAULT_PASSWORD, create_admin, tokens_for
from tests.records.world import World, build_world

USERS = "/api/users/"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


async def is_active(db: AsyncSession, user_id: int) -> bool:
    return bool(await db.scalar(select(User.is_active).where(User.id == user_id)))


async def set_active(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: int, value: Any
) -> httpx.Response:
    return await client.patch(f"{USERS}{user_id}", json={"is_active": value}, headers=headers)


@pytest.mark.parametrize("target", ["doctor_own", "patient_owner"])
async def test_deactivation_refuses_every_token_at_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, target: str
) -> None:
    user = world.users[target]
    first = (await tokens_for(db, settings, user)).headers
    second = (await tokens_for(db, settings, user)).headers
    assert (await client.get("/api/department/", headers=first)).status_code == 200

    admin = await world.headers(db, settings, "admin")
    response = await set_active(client, admin, user.id, False)
    assert response.status_code == 200
    body = response.json()
    assert body["is_active"] is False
    assert body["role"] == user.role
    assert "password_hash" not in body
    assert "password" not in body
    for headers in (first, second):
        refused = await client.get("/api/department/", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert await is_active(db, user.id) is False


async def test_reactivation_does_not_revive_old_tokens(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    frozen_clock: Any,
) -> None:
    user = world.users["patient_owner"]
    old = (await tokens_for(db, settings, user)).headers
    frozen_clock.advance(seconds=2)
    admin = await world.headers(db, settings, "admin")
    assert (await set_active(client, admin, user.id, False)).status_code == 200
    frozen_clock.advance(seconds=2)
    reactivated = await set_active(client, admin, user.id, True)
    assert reactivated.status_code == 200
    assert reactivated.json()["is_active"] is True
    assert (await client.get("/api/department/", headers=old)).status_code == 401
    new = (await tokens_for(db, settings, user)).headers
    assert (await client.get("/api/department/", headers=new)).status_code == 200


async def test_activating_an_active_user_keeps_his_tokens(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    admin = await world.headers(db, settings, "admin")
    response = await set_active(client, admin, world.users["doctor_own"].id, True)
    assert response.status_code == 200
    assert (await client.get("/api/department/", headers=headers)).status_code == 200


async def test_admin_cannot_deactivate_himself(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    admin = world.users["admin"]
    headers = await world.headers(db, settings, "admin")
    assert (await set_active(client, headers, admin.id, False)).status_code == 409
    assert await is_active(db, admin.id) is True
    assert (await client.get("/api/department/", headers=headers)).status_code == 200


async def test_admin_deactivates_another_admin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    other = await create_admin(db)
    headers = await world.headers(db, settings, "admin")
    assert (await set_active(client, headers, other.id, False)).status_code == 200


async def test_unknown_user_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "admin")
    assert (await set_active(client, headers, 10**9, False)).status_code == 404


@pytest.mark.parametrize(
    "body", [{}, {"is_active": None}, {"is_active": "no"}, {"is_active": 0}, {"role": "admin"}]
)
async def test_invalid_body_is_422(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    body: dict[str, Any],
) -> None:
    target = world.users["patient_owner"]
    response = await client.patch(
        f"{USERS}{target.id}", json=body, headers=await world.headers(db, settings, "admin")
    )
    assert response.status_code == 422
    assert await is_active(db, target.id) is True


async def test_deactivated_users_refresh_token_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    user = world.users["patient_owner"]
    tokens = await tokens_for(db, settings, user)
    admin = await world.headers(db, settings, "admin")
    assert (await set_active(client, admin, user.id, False)).status_code == 200
    refreshed = await client.post("/auth/refresh/", json={"refresh_token": tokens.refresh})
    assert refreshed.status_code == 401


@pytest.mark.parametrize("step_ms", [0, 200], ids=["one instant", "steps within one second"])
async def test_deactivation_and_reactivation_within_one_second_end_every_login(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    frozen_clock: Any,
    step_ms: int,
) -> None:
    """Log in, deactivate and reactivate, all inside one second (or one instant): the old
    access and refresh tokens stay refused, on every read path; a new login works."""
    # 0.1 s into the next whole second: every step below stays inside it.
    frozen_clock.current = frozen_clock.current.replace(microsecond=100_000) + timedelta(seconds=1)
    user = world.users["patient_owner"]
    credentials = {"username": user.username, "password": DEFAULT_PASSWORD}
    old = (await client.post("/auth/login/", json=credentials)).json()
    old_headers = {"Authorization": f"Bearer {old['access_token']}"}
    admin = await world.headers(db, settings, "admin")

    frozen_clock.advance(milliseconds=step_ms)
    assert (await set_active(client, admin, user.id, False)).status_code == 200
    frozen_clock.advance(milliseconds=step_ms)
    assert (await set_active(client, admin, user.id, True)).status_code == 200

    for path in ("/auth/me", "/api/patient_records/", f"/api/patient_records/{world.record.id}"):
        refused = await client.get(path, headers=old_headers)
        assert refused.status_code == 401, path
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    refreshed = await client.post("/auth/refresh/", json={"refresh_token": old["refresh_token"]})
    assert refreshed.status_code == 401

    frozen_clock.advance(milliseconds=step_ms)
    new = await client.post("/auth/login/", json=credentials)
    assert new.status_code == 200
    new_headers = {"Authorization": f"Bearer {new.json()['access_token']}"}
    for path in ("/auth/me", "/api/patient_records/", f"/api/patient_records/{world.record.id}"):
        assert (await client.get(path, headers=new_headers)).status_code == 200, path
    again = await client.post("/auth/refresh/", json={"refresh_token": new.json()["refresh_token"]})
    assert again.status_code == 200
