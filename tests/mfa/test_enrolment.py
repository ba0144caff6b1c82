"""Enrolment: the secret shown once, confirmed by a code, ten recovery codes; the secret
sealed at rest. Real keys, real pyotp, the service's clock moved, never slept."""

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa import codes
from app.auth.mfa.models import RecoveryCode, TotpCredential
from app.core.config import Settings
from app.core.crypto import CannotOpen
from tests.auth.conftest import assert_unauthorized, events, login
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_doctor,
    create_patient,
    mfa_keys,
    tokens_for,
)
from tests.mfa.helpers import at_step_second, mfa_token

RECOVERY_FORMAT = r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$"


async def enrol(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/auth/mfa/totp/", headers=headers)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def test_enrolment_shows_the_secret_and_its_uri_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    tokens = await tokens_for(db, settings, doctor)
    response = await client.post("/auth/mfa/totp", headers=tokens.headers)  # no slash too
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"secret", "otpauth_uri"}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    secret = body["secret"]
    assert len(secret) == 32
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # base32: 160 bits
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/Hospital API:{doctor.username}"
    query = {name: values[0] for name, values in parse_qs(uri.query).items()}
    assert query["secret"] == secret
    assert query["issuer"] == "Hospital API"
    # Authenticator apps' defaults (SHA1, 6 digits, 30 s): pyotp reads it back as such.
    parsed = pyotp.parse_uri(body["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")
    # Not on yet: the password alone still logs in.
    assert (await login(client, doctor.username)).status_code == 200
    [event] = await events(db, "mfa.enrol")
    assert (event.actor_id, event.resource_id, event.outcome) == (doctor.id, doctor.id, "allowed")


async def test_the_secret_is_sealed_at_rest_for_its_user_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    patient = await create_patient(db)
    secret = await enrol(client, (await tokens_for(db, settings, patient)).headers)
    stored = await db.scalar(
        select(TotpCredential.secret)
        .where(TotpCredential.user_id == patient.id)
        .execution_options(populate_existing=True)
    )
    assert stored is not None
    assert stored.startswith("v1.")
    assert secret not in stored
    keys = mfa_keys(settings)
    assert keys.open_secret(stored, patient.id) == secret
    other = await create_patient(db)
    with pytest.raises(CannotOpen):  # copied to another user's row, it opens for nobody
        keys.open_secret(stored, other.id)


async def test_confirm_with_a_code_turns_mfa_on_and_returns_ten_recovery_codes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    admin = await create_admin(db)
    headers = (await tokens_for(db, settings, admin)).headers
    secret = await enrol(client, headers)
    step = at_step_second(frozen_clock, 10)
    response = await client.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(secret, step)}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["Pragma"] == "no-cache"
    shown = response.json()["recovery_codes"]
    assert len(shown) == 10
    assert len(set(shown)) == 10
    assert all(re.fullmatch(RECOVERY_FORMAT, code) for code in shown)
    hashes = list(
        await db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == admin.id))
    )
    assert len(hashes) == 10
    for code in shown:  # stored as keyed hashes only
        assert code not in hashes
        assert code.replace("-", "") not in hashes
    credential = await db.get(TotpCredential, admin.id, populate_existing=True)
    assert credential is not None
    assert credential.confirmed_at is not None
    assert credential.last_step == step  # the confirming code cannot log in afterwards
    [event] = await events(db, "mfa.confirm")
    assert (event.actor_id, event.outcome) == (admin.id, "allowed")
    # From now on the password alone is not a login.
    await mfa_token(client, admin.username)


async def test_a_wrong_code_does_not_confirm(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    secret = await enrol(client, headers)
    step = at_step_second(frozen_clock, 3)
    for wrong in (codes.code_at(secret, step + 2), codes.code_at(secret, step - 2)):
        response = await client.post(
            "/auth/mfa/totp/confirm", json={"code": wrong}, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "code"]
        assert wrong not in response.text
    assert [e.outcome for e in await events(db, "mfa.confirm")] == ["failed", "failed"]
    assert (await login(client, patient.username)).status_code == 200  # still off


async def test_malformed_codes_are_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    await enrol(client, headers)
    for code in ("12345", "1234567", "12a456", "١٢٣٤٥٦", "", None, 123456):
        response = await client.post("/auth/mfa/totp/confirm", json={"code": code}, headers=headers)
        assert response.status_code == 422, (code, response.text)
    unknown = await client.post(
        "/auth/mfa/totp/confirm", json={"code": "123456", "extra": 1}, headers=headers
    )
    assert unknown.status_code == 422


async def test_enrolling_again_replaces_an_unconfirmed_secret(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    first = await enrol(client, headers)
    second = await enrol(client, headers)
    assert first != second
    step = at_step_second(frozen_clock, 0)
    stale = await client.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(first, step)}, headers=headers
    )
    assert stale.status_code == 422
    fresh = await client.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(second, step)}, headers=headers
    )
    assert fresh.status_code == 200


async def test_conflicts_of_enrolment_state(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    nothing = await client.post("/auth/mfa/totp/confirm", json={"code": "123456"}, headers=headers)
    assert nothing.status_code == 409
    secret = await enrol(client, headers)
    step = at_step_second(frozen_clock, 1)
    confirmed = await client.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(secret, step)}, headers=headers
    )
    assert confirmed.status_code == 200
    again = await client.post("/auth/mfa/totp/", headers=headers)
    assert again.status_code == 409
    assert "secret" not in again.json()
    twice = await client.post(
        "/auth/mfa/totp/confirm", json={"code": codes.code_at(secret, step + 1)}, headers=headers
    )
    assert twice.status_code == 409
    assert "recovery_codes" not in twice.json()


async def test_enrolment_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/auth/mfa/totp/"))
    assert_unauthorized(await client.post("/auth/mfa/totp/confirm", json={"code": "123456"}))


async def test_every_mfa_path_answers_with_and_without_its_slash(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient, amr=("pwd", "otp"))).headers
    secret = await enrol(client, headers)
    step = at_step_second(frozen_clock, 2)
    confirm = await client.post(
        "/auth/mfa/totp/confirm/", json={"code": codes.code_at(secret, step)}, headers=headers
    )
    assert confirm.status_code == 200
    token = await mfa_token(client, patient.username)
    frozen_clock.advance(seconds=30)
    verified = await client.post(
        "/auth/mfa/verify/", json={"mfa_token": token, "code": codes.code_at(secret, step + 1)}
    )
    assert verified.status_code == 200
    body = {
        "current_password": DEFAULT_PASSWORD,
        "code": confirm.json()["recovery_codes"][0],
    }
    removed = await client.request("DELETE", "/auth/mfa/totp", json=body, headers=headers)
    assert removed.status_code == 204
