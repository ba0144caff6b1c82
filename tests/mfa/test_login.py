"""The two-step login: the right password → 401 with a single-use MFA token; the token and a
code (TOTP or recovery) → the pair, `amr: ["pwd", "otp"]`. Replays, drift, the lock-out."""

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import RecoveryCode
from app.auth.models import LoginFailure, TokenFamily
from app.core.config import Settings
from tests.auth.conftest import assert_unauthorized, bearer, claims_of, events, login
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_doctor,
    create_patient,
    enrol_confirmed,
    tokens_for,
)
from tests.mfa.helpers import at_step_second, log_in_with_code, mfa_token, verify

WRONG = "not the right password"


def pair_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert response.headers["Pragma"] == "no-cache"
    return body


async def test_login_with_a_totp_code(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    doctor = await create_doctor(db)
    factor = await enrol_confirmed(db, doctor)
    at_step_second(frozen_clock, 12)

    step_one = await login(client, doctor.username)
    assert_unauthorized(step_one)
    body = step_one.json()
    assert body["detail"] == "MFA required"
    assert claims_of(body["mfa_token"])["type"] == "mfa"
    assert "access_token" not in body

    pair = pair_of(await verify(client, body["mfa_token"], factor.code()))
    access, refresh = claims_of(pair["access_token"]), claims_of(pair["refresh_token"])
    assert access["amr"] == ["pwd", "otp"]
    assert refresh["amr"] == ["pwd", "otp"]
    me = await client.get("/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == doctor.id
    family = await db.get(TokenFamily, access["fam"], populate_existing=True)
    assert family is not None
    assert family.amr == "pwd otp"
    assert [e.outcome for e in await events(db, "mfa.challenge")] == ["allowed"]
    assert [e.outcome for e in await events(db, "mfa.verify")] == ["allowed"]
    assert [e.actor_id for e in await events(db, "auth.login")] == [doctor.id]


async def test_a_refresh_keeps_the_logins_methods(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    plain = pair_of(await login(client, patient.username))
    assert claims_of(plain["access_token"])["amr"] == ["pwd"]
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 1)
    strong = pair_of(await log_in_with_code(client, patient.username, factor.code()))
    for pair, amr in ((plain, ["pwd"]), (strong, ["pwd", "otp"])):
        refreshed = await client.post(
            "/auth/refresh/", json={"refresh_token": pair["refresh_token"]}
        )
        assert claims_of(pair_of(refreshed)["access_token"])["amr"] == amr


async def test_the_mfa_token_opens_nothing_else(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    patient = await create_patient(db)
    await enrol_confirmed(db, patient)
    token = await mfa_token(client, patient.username)
    assert_unauthorized(await client.get("/auth/me", headers=bearer(token)))
    assert_unauthorized(await client.get("/api/department/", headers=bearer(token)))
    assert_unauthorized(await client.post("/auth/logout/", headers=bearer(token)))
    assert_unauthorized(await client.post("/auth/mfa/totp/", headers=bearer(token)))
    assert_unauthorized(await client.post("/auth/refresh/", json={"refresh_token": token}))


async def test_an_access_or_refresh_token_is_no_mfa_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    tokens = await tokens_for(db, settings, patient)
    at_step_second(frozen_clock, 0)
    for token in (tokens.access, tokens.refresh, "not a token"):
        assert_unauthorized(await verify(client, token, factor.code()))


async def test_the_mfa_token_is_single_use(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 5)
    token = await mfa_token(client, patient.username)
    pair_of(await verify(client, token, factor.code()))
    frozen_clock.advance(seconds=30)  # a new code: the token itself is spent
    again = await verify(client, token, factor.code())
    assert_unauthorized(again)
    assert "log in again" in again.json()["detail"]
    assert [e.outcome for e in await events(db, "mfa.verify")] == ["allowed", "denied"]

    # A wrong code spends it too: the next attempt starts from the password.
    wrong_first = await mfa_token(client, patient.username)
    assert_unauthorized(await verify(client, wrong_first, "000000"))
    frozen_clock.advance(seconds=30)
    assert_unauthorized(await verify(client, wrong_first, factor.code()))


async def test_the_mfa_token_expires_after_five_minutes(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    token = await mfa_token(client, patient.username)
    assert claims_of(token)["exp"] - int(claims_of(token)["iat"]) == 5 * 60
    frozen_clock.advance(minutes=5)
    assert_unauthorized(await verify(client, token, factor.code()))


async def test_a_password_change_refuses_an_earlier_mfa_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    token = await mfa_token(client, patient.username)
    frozen_clock.advance(seconds=1)
    headers = (await tokens_for(db, settings, patient, amr=("pwd", "otp"))).headers
    changed = await client.post(
        "/auth/password/",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a brand new passphrase"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert_unauthorized(await verify(client, token, factor.code()))


async def test_login_with_a_recovery_code_once(client: httpx.AsyncClient, db: AsyncSession) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    code = factor.recovery_codes[3]
    pair = pair_of(await log_in_with_code(client, patient.username, code))
    assert claims_of(pair["access_token"])["amr"] == ["pwd", "otp"]
    [used] = await events(db, "mfa.recovery_code_used")
    assert (used.actor_id, used.outcome) == (patient.id, "allowed")
    spent = await db.scalar(
        select(RecoveryCode.used_at)
        .where(RecoveryCode.user_id == patient.id, RecoveryCode.used_at.is_not(None))
        .execution_options(populate_existing=True)
    )
    assert spent is not None
    assert_unauthorized(await log_in_with_code(client, patient.username, code))
    # Typed by hand: any case, without the dashes, O for 0 and I or L for 1.
    other = factor.recovery_codes[7]
    by_hand = other.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    pair_of(await log_in_with_code(client, patient.username, by_hand))


async def test_a_code_is_accepted_once(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 2)
    code = factor.code()
    pair_of(await log_in_with_code(client, patient.username, code))
    frozen_clock.advance(seconds=20)  # the same step: the app still shows this code
    replay = await log_in_with_code(client, patient.username, code)
    assert_unauthorized(replay)
    assert replay.json()["detail"] == "Invalid code: log in again"
    assert [e.outcome for e in await events(db, "mfa.verify")] == ["allowed", "failed"]
    frozen_clock.advance(seconds=10)  # the next step's code is a new one
    pair_of(await log_in_with_code(client, patient.username, factor.code()))


async def test_an_older_code_after_a_newer_one_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 4)
    previous = factor.code(steps=-1)
    pair_of(await log_in_with_code(client, patient.username, factor.code()))
    assert_unauthorized(await log_in_with_code(client, patient.username, previous))


async def test_one_step_of_drift_either_way(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 15)
    too_old, too_new = factor.code(steps=-2), factor.code(steps=2)
    assert_unauthorized(await log_in_with_code(client, patient.username, too_old))
    assert_unauthorized(await log_in_with_code(client, patient.username, too_new))
    # A phone 30 s behind, then one 30 s ahead (a later step each time: no replay).
    pair_of(await log_in_with_code(client, patient.username, factor.code(steps=-1)))
    pair_of(await log_in_with_code(client, patient.username, factor.code(steps=1)))
    # The step just used was the next one: the current code is now refused as older.
    assert_unauthorized(await log_in_with_code(client, patient.username, factor.code()))


async def counter(db: AsyncSession, username: str) -> LoginFailure | None:
    return await db.get(LoginFailure, username.casefold(), populate_existing=True)


async def test_wrong_codes_count_toward_the_lock_out(
    client: httpx.AsyncClient, db: AsyncSession, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    at_step_second(frozen_clock, 0)
    assert_unauthorized(await login(client, patient.username, WRONG))
    for _ in range(3):
        assert_unauthorized(await log_in_with_code(client, patient.username, "000000"))
    # The right password is half a login: it does not clear the count.
    token, kept = (
        await mfa_token(client, patient.username),
        await mfa_token(client, patient.username),
    )
    row = await counter(db, patient.username)
    assert row is not None
    assert row.failures == 4
    assert_unauthorized(await verify(client, token, "11111111-2222"))  # a wrong recovery code
    locked = await login(client, patient.username)
    assert locked.status_code == 429
    assert "mfa_token" not in locked.text
    assert int(locked.headers["Retry-After"]) == 15 * 60
    # A token from before the lock cannot get past it either, even with the right code.
    frozen_clock.advance(minutes=1)
    assert (await verify(client, kept, factor.code())).status_code == 429
    assert [e.outcome for e in await events(db, "auth.lockout")] == ["denied", "denied"]

    frozen_clock.advance(minutes=14)
    pair_of(await log_in_with_code(client, patient.username, factor.code()))
    row = await counter(db, patient.username)
    assert row is not None
    assert row.failures == 0  # the whole login cleared it


async def test_no_hint_for_a_wrong_password_of_a_user_with_mfa(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    patient = await create_patient(db)
    await enrol_confirmed(db, patient)
    wrong = await login(client, patient.username, WRONG)
    unknown = await login(client, "nobody_at_all", WRONG)
    assert wrong.json() == unknown.json() == {"detail": "Incorrect username or password"}


async def test_an_inactive_user_gets_no_mfa_token(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    patient = await create_patient(db, is_active=False)
    await enrol_confirmed(db, patient)
    response = await login(client, patient.username)
    assert response.json() == {"detail": "Incorrect username or password"}


async def test_a_factor_removed_meanwhile_refuses_the_mfa_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    token = await mfa_token(client, patient.username)
    admin_headers = (await tokens_for(db, settings, await create_admin(db))).headers
    reset = await client.delete(f"/api/users/{patient.id}/mfa", headers=admin_headers)
    assert reset.status_code == 204
    frozen_clock.advance(seconds=1)
    assert_unauthorized(await verify(client, token, factor.code()))


async def test_bad_verify_bodies_are_422(client: httpx.AsyncClient) -> None:
    for body in (
        {},
        {"mfa_token": "x"},
        {"code": "123456"},
        {"mfa_token": "x", "code": "12"},
        {"mfa_token": "x", "code": "12345%"},
        {"mfa_token": "x", "code": "1" * 33},
        {"mfa_token": "", "code": "123456"},
        {"mfa_token": "x", "code": "123456", "more": True},
    ):
        response = await client.post("/auth/mfa/verify", json=body)
        assert response.status_code == 422, (body, response.text)
