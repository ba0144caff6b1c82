"""MFA_REQUIRED_ROLES: a user of such a role may only enrol (and see himself, and log out)
until his token carries a second factor. Every /api route, read or write, refuses him."""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.mfa import codes
from app.auth.mfa.policy import ENROL_FIRST, LOG_IN_WITH_CODE
from app.core.config import ConfigError, Settings, get_settings
from tests.auth.conftest import events, login
from tests.factories import (
    create_admin,
    create_department,
    create_doctor,
    enrol_confirmed,
    tokens_for,
)
from tests.mfa.helpers import app_with, at_step_second, log_in_with_code


@pytest.fixture
async def strict(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as the production examples configure it: admins must use MFA."""
    async with app_with(settings, engine, sessionmaker, mfa_required_roles={"admin"}) as http:
        yield http


async def test_an_admin_without_mfa_may_only_enrol(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    admin = await create_admin(db)
    login_answer = await login(strict, admin.username)
    assert login_answer.status_code == 200  # he gets a token: one that may only enrol
    headers = {"Authorization": f"Bearer {login_answer.json()['access_token']}"}

    for method, path in (("GET", "/api/audit/"), ("POST", "/api/department/")):
        refused = await strict.request(method, path, headers=headers, json={"name": "Unit X"})
        assert refused.status_code == 403, refused.text
        assert refused.json() == {"detail": ENROL_FIRST}
    refusals = await events(db, "mfa.required")
    assert [(e.actor_id, e.outcome, e.resource_type) for e in refusals] == [
        (admin.id, "denied", "endpoint")
    ] * 2
    registered = await strict.post(
        "/auth/register/",
        json={
            "username": "new_doctor_1",
            "email": "new_doctor_1@example.org",
            "password": "plum orchard at dusk 42",
            "full_name": "New Doctor",
            "role": "doctor",
        },
        headers=headers,
    )
    assert registered.status_code == 403
    assert (await strict.get("/auth/me", headers=headers)).json()["id"] == admin.id

    secret = (await strict.post("/auth/mfa/totp/", headers=headers)).json()["secret"]
    step = at_step_second(frozen_clock, 6)
    confirmed = await strict.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(secret, step)}, headers=headers
    )
    assert confirmed.status_code == 200
    # Enrolled, but this token is still the password's alone: log in again, with a code.
    still = await strict.get("/api/audit/", headers=headers)
    assert (still.status_code, still.json()) == (403, {"detail": LOG_IN_WITH_CODE})
    frozen_clock.advance(seconds=30)
    strong = await log_in_with_code(strict, admin.username, codes.code_at(secret, step + 1))
    assert strong.status_code == 200
    full = {"Authorization": f"Bearer {strong.json()['access_token']}"}
    assert (await strict.get("/api/audit/", headers=full)).status_code == 200
    assert (await strict.post("/auth/logout/", headers=headers)).status_code == 204


async def test_logout_stays_open(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    tokens = await tokens_for(db, settings, await create_admin(db))
    assert (await strict.post("/auth/logout/", headers=tokens.headers)).status_code == 204
    assert (await strict.get("/auth/me", headers=tokens.headers)).status_code == 401


async def test_every_api_route_refuses_a_caller_who_must_enrol(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings, app: Any
) -> None:
    """Reads check it in their one statement, writes first in their transaction: each /api
    route, with and without its trailing slash, answers 403 with the enrolment detail."""
    tokens = await tokens_for(db, settings, await create_admin(db))
    routes = [
        (context.path_format, context.original_route.methods)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path_format.startswith("/api/")
    ]
    assert len(routes) > 20
    for template, methods in routes:
        path = re.sub(r"\{[a-z_]+\}", "1", template)
        twin = path.removesuffix("/") if path.endswith("/") else path + "/"
        for method in methods:
            for url in (path, twin):
                response = await strict.request(method, url, headers=tokens.headers, json={})
                assert response.status_code == 403, (method, url, response.text)
                assert response.json() == {"detail": ENROL_FIRST}, (method, url)


async def test_password_routes_and_mfa_removal_are_not_open_to_him(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await create_admin(db)
    await enrol_confirmed(db, admin)
    headers = (await tokens_for(db, settings, admin)).headers  # a password-only token
    change = await strict.post(
        "/auth/password/",
        json={"current_password": "x", "new_password": "another long passphrase"},
        headers=headers,
    )
    assert (change.status_code, change.json()) == (403, {"detail": LOG_IN_WITH_CODE})
    remove = await strict.request(
        "DELETE",
        "/auth/mfa/totp/",
        json={"current_password": "x", "code": "123456"},
        headers=headers,
    )
    assert remove.status_code == 403


async def test_other_roles_are_not_concerned(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db, await create_department(db))
    tokens = await tokens_for(db, settings, doctor)
    assert (await strict.get("/api/patient_records/", headers=tokens.headers)).status_code == 200


async def test_an_admin_with_mfa_and_a_code_login_is_not_restricted(
    strict: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await create_admin(db)
    await enrol_confirmed(db, admin)
    tokens = await tokens_for(db, settings, admin, amr=("pwd", "otp"))
    assert (await strict.get("/api/audit/", headers=tokens.headers)).status_code == 200
    assert (await strict.get("/api/doctors/", headers=tokens.headers)).status_code == 200


async def test_by_default_no_role_is_required(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    assert settings.mfa_required_roles == frozenset()
    tokens = await tokens_for(db, settings, await create_admin(db))
    assert (await client.get("/api/audit/", headers=tokens.headers)).status_code == 200


def test_the_setting_takes_a_list_of_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, roles in (
        ("admin", {"admin"}),
        ("admin, doctor", {"admin", "doctor"}),
        ('["doctor"]', {"doctor"}),
        ("", set()),
    ):
        monkeypatch.setenv("MFA_REQUIRED_ROLES", text)
        assert Settings().mfa_required_roles == frozenset(roles)
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "admin,nurse")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="MFA_REQUIRED_ROLES"):
            get_settings()
    finally:
        get_settings.cache_clear()
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "admin")
    monkeypatch.setenv("MFA_ENCRYPTION_KEY", "too short")
    with pytest.raises(ValueError, match="at least 32"):
        Settings()
