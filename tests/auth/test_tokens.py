"""Refresh rotation, logout, password change, /auth/me, and tokens an attacker might forge."""

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RevokedToken, TokenFamily
from app.core.config import Settings
from app.users.models import User
from tests.auth.conftest import (
    assert_unauthorized,
    bearer,
    claims_of,
    events,
    fresh_claims,
    login,
    registration,
    sign,
    unsigned,
)
from tests.factories import (
    DEFAULT_PASSWORD,
    Tokens,
    create_admin,
    create_department,
    create_doctor,
    create_patient,
    tokens_for,
)

NEW_PASSWORD = "a brand new passphrase 7"


async def patient_tokens(db: AsyncSession, settings: Settings) -> tuple[User, Tokens]:
    user = await create_patient(db)
    return user, await tokens_for(db, settings, user)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh/", json={"refresh_token": token})


# --- /auth/me ------------------------------------------------------------------------------


async def test_me(client: httpx.AsyncClient, db: AsyncSession, settings: Settings) -> None:
    user, tokens = await patient_tokens(db, settings)
    response = await client.get("/auth/me", headers=tokens.headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "role": "patient",
        "is_active": True,
        "created_at": response.json()["created_at"],
    }


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic x"}])
async def test_me_without_a_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_unauthorized(await client.get("/auth/me", headers=headers))


# --- refresh rotation ----------------------------------------------------------------------


async def test_refresh_rotates_and_a_reused_token_kills_the_login(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, first = await patient_tokens(db, settings)
    response = await refresh(client, first.refresh)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first.refresh
    assert claims_of(second["access_token"])["fam"] == claims_of(first.access)["fam"]
    assert (await client.get("/auth/me", headers=bearer(second["access_token"]))).status_code == 200

    assert_unauthorized(await refresh(client, first.refresh))  # used before: a leaked copy
    # ... and the whole login is revoked: the newest pair too.
    assert_unauthorized(await refresh(client, second["refresh_token"]))
    assert_unauthorized(await client.get("/auth/me", headers=bearer(second["access_token"])))
    assert_unauthorized(await client.get("/auth/me", headers=first.headers))
    [reuse] = await events(db, "auth.refresh_reuse")
    assert (reuse.actor_id, reuse.outcome) == (user.id, "denied")
    [allowed, *_] = await events(db, "auth.refresh")
    assert (allowed.actor_id, allowed.outcome) == (user.id, "allowed")


async def test_a_chain_of_refreshes_works(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    token = tokens.refresh
    for _ in range(3):
        response = await refresh(client, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]


async def test_other_logins_survive_a_reuse(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, first = await patient_tokens(db, settings)
    other = await tokens_for(db, settings, user)
    assert (await refresh(client, first.refresh)).status_code == 200
    assert_unauthorized(await refresh(client, first.refresh))
    assert (await client.get("/auth/me", headers=other.headers)).status_code == 200


async def test_access_token_at_refresh_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    assert_unauthorized(await refresh(client, tokens.access))
    assert (await refresh(client, tokens.refresh)).status_code == 200  # not revoked by it


async def test_refresh_token_as_bearer_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    assert_unauthorized(await client.get("/auth/me", headers=bearer(tokens.refresh)))


async def test_refresh_of_a_deactivated_user_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    user.is_active = False
    await db.commit()
    assert_unauthorized(await refresh(client, tokens.refresh))


async def test_refresh_after_the_login_expired_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    _, tokens = await patient_tokens(db, settings)
    frozen_clock.advance(days=settings.refresh_token_expire_days, seconds=1)
    assert_unauthorized(await refresh(client, tokens.refresh))


async def test_refresh_gives_the_role_of_the_database(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    user.role = "admin"
    await db.commit()
    response = await refresh(client, tokens.refresh)
    assert claims_of(response.json()["access_token"])["role"] == "admin"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_garbage_refresh_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await refresh(client, token)
    assert response.status_code == (422 if token == "" else 401)


# --- logout --------------------------------------------------------------------------------


async def test_logout_revokes_the_token_and_its_login(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    other = await tokens_for(db, settings, user)
    response = await client.post("/auth/logout/", headers=tokens.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(await client.get("/auth/me", headers=tokens.headers))
    assert_unauthorized(await client.post("/auth/logout/", headers=tokens.headers))
    assert_unauthorized(await refresh(client, tokens.refresh))
    assert (await client.get("/auth/me", headers=other.headers)).status_code == 200
    jti = claims_of(tokens.access)["jti"]
    revoked = await db.get(RevokedToken, jti)
    assert revoked is not None
    assert int(revoked.expires_at.timestamp()) == claims_of(tokens.access)["exp"]
    [event] = await events(db, "auth.logout")
    assert event.actor_id == user.id


async def test_logout_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/auth/logout/"))


# --- password change -----------------------------------------------------------------------


async def change(
    client: httpx.AsyncClient, tokens: Tokens, current: str, new: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(
        "/auth/password/",
        json={"current_password": current, "new_password": new},
        headers=tokens.headers,
    )


async def test_password_change_revokes_every_earlier_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    other = await tokens_for(db, settings, user)
    response = await change(client, tokens, DEFAULT_PASSWORD)
    assert response.status_code == 204
    for earlier in (tokens, other):
        assert_unauthorized(await client.get("/auth/me", headers=earlier.headers))
        assert_unauthorized(await refresh(client, earlier.refresh))
    assert_unauthorized(await login(client, user.username, DEFAULT_PASSWORD))
    fresh = await login(client, user.username, NEW_PASSWORD)
    assert fresh.status_code == 200
    assert (
        await client.get("/auth/me", headers=bearer(fresh.json()["access_token"]))
    ).status_code == 200
    families = await db.scalars(
        select(TokenFamily)
        .where(TokenFamily.user_id == user.id)
        .execution_options(populate_existing=True)
    )
    assert sum(family.revoked_at is None for family in families) == 1  # the new login only
    [event] = await events(db, "auth.password_change")
    assert (event.actor_id, event.outcome) == (user.id, "allowed")


async def test_wrong_current_password_is_422_and_counts_toward_lock_out(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    response = await change(client, tokens, "wrong current password")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "current_password"]
    assert "wrong current password" not in response.text
    [event] = await events(db, "auth.password_change")
    assert event.outcome == "failed"
    for _ in range(4):
        assert (await change(client, tokens, "wrong current password")).status_code == 422
    locked = await change(client, tokens, DEFAULT_PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["Retry-After"]
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200


@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("Tiny#9", "at least"),
        ("password123", "common"),
        ("ALICE_LONGNAME", "username"),
        (" " * 12, "repeat"),
        ("mmmmmmmmmmmm", "repeat"),
        ("qrstuvwxyz", "consecutive"),
    ],
)
async def test_new_password_follows_the_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, new: str, why: str
) -> None:
    user = await create_patient(db, username="alice_longname")
    tokens = await tokens_for(db, settings, user)
    response = await change(client, tokens, DEFAULT_PASSWORD, new)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "new_password"]
    assert why in error["msg"]
    assert new not in response.text
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200


# --- forged and broken tokens --------------------------------------------------------------


async def test_a_correctly_re_signed_token_is_accepted(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """The control for the attacks below: re-signing as such is not what they trip on."""
    _, tokens = await patient_tokens(db, settings)
    token = sign(claims_of(tokens.access))
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200


async def test_alg_none_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    assert_unauthorized(
        await client.get("/auth/me", headers=bearer(unsigned(claims_of(tokens.access))))
    )


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
async def test_another_algorithm_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, algorithm: str
) -> None:
    _, tokens = await patient_tokens(db, settings)
    token = sign(claims_of(tokens.access), algorithm=algorithm)
    assert_unauthorized(await client.get("/auth/me", headers=bearer(token)))


async def test_bad_signature_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    token = sign(claims_of(tokens.access), key="another-key-" + "z" * 40)
    assert_unauthorized(await client.get("/auth/me", headers=bearer(token)))
    header, payload, signature = tokens.access.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert_unauthorized(
        await client.get("/auth/me", headers=bearer(f"{header}.{payload}.{flipped}"))
    )


async def test_expired_token_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims["iat"], claims["exp"] = int(time.time()) - 3600, int(time.time()) - 60
    assert_unauthorized(await client.get("/auth/me", headers=bearer(sign(claims))))


async def test_a_token_verified_before_is_refused_once_it_expires(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    """Verified tokens are cached by their text; the expiry is still checked on each use,
    and a token is refused from its `exp` on (RFC 7519 §4.1.4)."""
    _, tokens = await patient_tokens(db, settings)
    expires = datetime.fromtimestamp(claims_of(tokens.access)["exp"], tz=UTC)
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200

    frozen_clock.current = expires - timedelta(microseconds=1)
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200
    frozen_clock.current = expires
    assert_unauthorized(await client.get("/auth/me", headers=tokens.headers))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "type", "fam"])
async def test_missing_claim_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, claim: str
) -> None:
    _, tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    del claims[claim]
    assert_unauthorized(await client.get("/auth/me", headers=bearer(sign(claims))))


async def test_forged_admin_role_gives_a_patient_no_admin_power(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims["role"] = "admin"
    forged = bearer(sign(claims))
    me = await client.get("/auth/me", headers=forged)
    assert me.status_code == 200
    assert me.json()["role"] == "patient"
    response = await client.post(
        "/auth/register/", json=registration(role="doctor"), headers=forged
    )
    assert response.status_code == 403
    [event] = await events(db, "auth.register")
    assert (event.actor_id, event.outcome) == (user.id, "denied")


async def test_token_of_a_deactivated_user_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    user, tokens = await patient_tokens(db, settings)
    user.is_active = False
    await db.commit()
    assert_unauthorized(await client.get("/auth/me", headers=tokens.headers))


async def test_token_of_a_non_existent_user_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, tokens = await patient_tokens(db, settings)
    claims = fresh_claims(987_654_321, "admin", claims_of(tokens.access)["fam"])
    assert_unauthorized(await client.get("/auth/me", headers=bearer(sign(claims))))


async def test_token_of_another_users_login_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """A forged `sub` cannot borrow someone else's login (token family)."""
    admin = await create_admin(db)
    _, tokens = await patient_tokens(db, settings)
    claims = fresh_claims(admin.id, "admin", claims_of(tokens.access)["fam"])
    assert_unauthorized(await client.get("/auth/me", headers=bearer(sign(claims))))


async def test_token_issued_before_tokens_valid_after_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    user, tokens = await patient_tokens(db, settings)
    frozen_clock.advance(seconds=5)
    user.tokens_valid_after = frozen_clock.now()
    await db.commit()
    assert_unauthorized(await client.get("/auth/me", headers=tokens.headers))


async def test_freshness_is_exact_within_one_second(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    """`tokens_valid_after` a millisecond after the token's issue, in the same second, and
    the login itself left running: the issue time alone refuses it, on every read path."""
    frozen_clock.current = frozen_clock.current.replace(microsecond=100_000) + timedelta(seconds=1)
    user, tokens = await patient_tokens(db, settings)
    frozen_clock.advance(milliseconds=1)
    user.tokens_valid_after = frozen_clock.now()
    await db.commit()
    for path in ("/auth/me", "/api/patient_records/"):
        assert_unauthorized(await client.get(path, headers=tokens.headers))
    assert_unauthorized(await refresh(client, tokens.refresh))
    fresh = await tokens_for(db, settings, user)  # issued at that same instant: fresh
    for path in ("/auth/me", "/api/patient_records/"):
        assert (await client.get(path, headers=fresh.headers)).status_code == 200, path


@pytest.mark.parametrize("role", ["admin", "doctor", "patient"])
async def test_every_api_route_refuses_a_revoked_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, app: Any, role: str
) -> None:
    """The /api and /fhir routes' first dependency checks only the signature: each route
    must also ask the database (its read's own statement, or a write's first). Logged out,
    every one is 401, with and without its trailing slash (FHIR's as an OperationOutcome;
    its CapabilityStatement is public)."""
    department = await create_department(db)
    makers = {
        "admin": create_admin,
        "doctor": lambda session: create_doctor(session, department),
        "patient": create_patient,
    }
    tokens = await tokens_for(db, settings, await makers[role](db))
    assert (await client.post("/auth/logout/", headers=tokens.headers)).status_code == 204
    routes = [
        (context.path_format, context.original_route.methods)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and context.path_format.startswith(("/api/", "/fhir/"))
        and context.path_format != "/fhir/R4/metadata"
    ]
    assert len(routes) > 35
    for template, methods in routes:
        path = re.sub(r"\{[a-z_]+\}", "1", template)
        twin = path.removesuffix("/") if path.endswith("/") else path + "/"
        body = {} if path.startswith("/api/") else None  # a FHIR search's body is a form
        for method in methods:
            for url in (path, twin):
                response = await client.request(method, url, headers=tokens.headers, json=body)
                assert response.status_code == 401, (method, url, response.text)
                if url.startswith("/fhir/"):
                    assert response.json()["issue"][0]["code"] == "login"
                    assert response.headers["WWW-Authenticate"] == "Bearer"
