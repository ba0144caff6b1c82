"""Turning MFA off: by the user (password and code), or by an admin's reset (audited, and
every login of the user ends)."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import RecoveryCode, TotpCredential
from app.core.config import Settings
from tests.auth.conftest import assert_unauthorized, claims_of, events, login
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_doctor,
    create_patient,
    enrol_confirmed,
    tokens_for,
)
from tests.mfa.helpers import at_step_second, log_in_with_code, mfa_token
from tests.records.world import count

STRONG = ("pwd", "otp")


async def remove(
    client: httpx.AsyncClient, headers: dict[str, str], password: str, code: str
) -> httpx.Response:
    return await client.request(
        "DELETE",
        "/auth/mfa/totp/",
        json={"current_password": password, "code": code},
        headers=headers,
    )


async def factors(db: AsyncSession, user_id: int) -> tuple[int, int]:
    return (
        await count(db, TotpCredential, TotpCredential.user_id == user_id),
        await count(db, RecoveryCode, RecoveryCode.user_id == user_id),
    )


async def test_the_user_removes_it_with_his_password_and_a_code(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    tokens = await tokens_for(db, settings, patient, amr=STRONG)
    at_step_second(frozen_clock, 20)
    removed = await remove(client, tokens.headers, DEFAULT_PASSWORD, factor.code())
    assert removed.status_code == 204, removed.text
    assert await factors(db, patient.id) == (0, 0)
    assert [e.outcome for e in await events(db, "mfa.remove")] == ["allowed"]
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200
    plain = await login(client, patient.username)
    assert claims_of(plain.json()["access_token"])["amr"] == ["pwd"]
    again = await remove(client, tokens.headers, DEFAULT_PASSWORD, factor.code())
    assert again.status_code == 409


async def test_a_recovery_code_removes_it_too(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    factor = await enrol_confirmed(db, doctor)
    tokens = await tokens_for(db, settings, doctor, amr=STRONG)
    removed = await remove(client, tokens.headers, DEFAULT_PASSWORD, factor.recovery_codes[0])
    assert removed.status_code == 204


async def test_wrong_passwords_and_codes_are_422_and_count(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    tokens = await tokens_for(db, settings, patient, amr=STRONG)
    at_step_second(frozen_clock, 0)
    for attempt in range(5):
        if attempt % 2:
            response = await remove(client, tokens.headers, "wrong password", factor.code())
            field = "current_password"
        else:
            response = await remove(client, tokens.headers, DEFAULT_PASSWORD, "000000")
            field = "code"
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    locked = await remove(client, tokens.headers, DEFAULT_PASSWORD, factor.code())
    assert locked.status_code == 429
    assert await factors(db, patient.id) == (1, 10)
    assert [e.outcome for e in await events(db, "mfa.remove")] == ["failed"] * 5
    assert (await login(client, patient.username)).status_code == 429  # the same lock-out


async def test_an_admin_resets_a_users_mfa(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    doctor = await create_doctor(db)
    factor = await enrol_confirmed(db, doctor)
    at_step_second(frozen_clock, 3)
    session = await log_in_with_code(client, doctor.username, factor.code())
    assert session.status_code == 200
    admin = await create_admin(db)
    admin_headers = (await tokens_for(db, settings, admin, amr=STRONG)).headers
    frozen_clock.advance(seconds=1)

    reset = await client.delete(f"/api/users/{doctor.id}/mfa", headers=admin_headers)
    assert reset.status_code == 204, reset.text
    assert await factors(db, doctor.id) == (0, 0)
    [event] = await events(db, "mfa.reset")
    assert (event.actor_id, event.resource_type, event.resource_id) == (admin.id, "user", doctor.id)
    # Whoever holds the lost phone may hold a session: every login of his ended.
    old = {"Authorization": f"Bearer {session.json()['access_token']}"}
    assert_unauthorized(await client.get("/auth/me", headers=old))
    refresh = {"refresh_token": session.json()["refresh_token"]}
    assert_unauthorized(await client.post("/auth/refresh/", json=refresh))
    frozen_clock.advance(seconds=1)
    assert (await login(client, doctor.username)).status_code == 200  # the password alone


async def test_reset_answers(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin_headers = (await tokens_for(db, settings, await create_admin(db))).headers
    patient = await create_patient(db)
    tokens = await tokens_for(db, settings, patient)
    # Without MFA nothing changes: his login goes on.
    assert (
        await client.delete(f"/api/users/{patient.id}/mfa", headers=admin_headers)
    ).status_code == 204
    assert (await client.get("/auth/me", headers=tokens.headers)).status_code == 200
    unknown = await client.delete(f"/api/users/{patient.id + 1000}/mfa/", headers=admin_headers)
    assert unknown.status_code == 404
    assert (await client.delete("/api/users/0/mfa", headers=admin_headers)).status_code == 422
    assert (
        await client.delete(f"/api/users/{patient.id}/mfa", headers=tokens.headers)
    ).status_code == 403


async def test_after_a_reset_the_user_enrols_again(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    await enrol_confirmed(db, patient)
    admin_headers = (await tokens_for(db, settings, await create_admin(db))).headers
    await mfa_token(client, patient.username)
    assert (
        await client.delete(f"/api/users/{patient.id}/mfa", headers=admin_headers)
    ).status_code == 204
    frozen_clock.advance(seconds=1)
    headers = (await tokens_for(db, settings, patient)).headers
    assert (await client.post("/auth/mfa/totp/", headers=headers)).status_code == 201
