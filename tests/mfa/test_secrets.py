"""No secret of the second factor leaves where it belongs: the TOTP secret is in the
enrolment's answer once, sealed at rest, and in no log line, audit event or other answer;
nor are codes, recovery codes or MFA tokens. The sealing itself, with real keys."""

import base64
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.auth.mfa import codes
from app.auth.mfa.keys import MfaKeys
from app.auth.mfa.models import TotpCredential
from app.core.config import Settings
from app.core.crypto import CannotOpen, SecretBox, derive_key
from tests.conftest import TEST_SECRET_KEY
from tests.factories import DEFAULT_PASSWORD, create_patient, enrol_confirmed, tokens_for
from tests.mfa.helpers import at_step_second, mfa_token, verify


async def test_no_secret_in_answers_logs_or_the_trail(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    frozen_clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    patient = await create_patient(db)
    headers = (await tokens_for(db, settings, patient)).headers
    answers: list[httpx.Response] = []

    enrolment = await client.post("/auth/mfa/totp/", headers=headers)
    secret = enrolment.json()["secret"]
    step = at_step_second(frozen_clock, 8)
    confirming = codes.code_at(secret, step)
    confirmed = await client.post(
        "/auth/mfa/totp/confirm", json={"code": confirming}, headers=headers
    )
    recovery = confirmed.json()["recovery_codes"]
    frozen_clock.advance(seconds=30)
    token = await mfa_token(client, patient.username)
    verified = await verify(client, token, codes.code_at(secret, step + 1))
    answers += [verified, await verify(client, await mfa_token(client, patient.username), "000000")]
    answers.append(await verify(client, await mfa_token(client, patient.username), recovery[0]))
    strong = {"Authorization": f"Bearer {answers[-1].json()['access_token']}"}
    answers.append(await client.get("/auth/me", headers=strong))
    answers.append(await client.post("/auth/mfa/totp/", headers=strong))  # 409
    answers.append(
        await client.request(
            "DELETE",
            "/auth/mfa/totp/",
            json={"current_password": DEFAULT_PASSWORD, "code": recovery[1]},
            headers=strong,
        )
    )
    assert [answer.status_code for answer in answers] == [200, 401, 200, 200, 409, 204]

    secrets = [secret, secret.lower(), confirming, *recovery, token, DEFAULT_PASSWORD]
    for answer in answers:
        for value in secrets:
            assert value not in answer.text, answer.request.url
    logged = caplog.text
    assert "/auth/mfa/verify" in logged  # the requests were logged
    trail = [
        " ".join(str(value) for value in row)
        for row in (await db.execute(select(AuditEvent.__table__))).all()
    ]
    actions = {row.action for row in await db.scalars(select(AuditEvent))}
    assert {"mfa.enrol", "mfa.confirm", "mfa.challenge", "mfa.verify"} <= actions
    assert {"mfa.recovery_code_used", "mfa.remove", "auth.login"} <= actions
    for value in secrets:
        assert value not in logged
        assert not [event for event in trail if value in event]


async def test_a_secret_sealed_under_another_key_is_a_clear_error(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MFA_ENCRYPTION_KEY (or SECRET_KEY) changed under enrolled users: they cannot be
    checked; the answer says an admin must reset them, the log says why, with no secret."""
    patient = await create_patient(db)
    other = settings.model_copy(update={"secret_key": "another-key-" + "x" * 40})
    factor = await enrol_confirmed(db, patient, other)
    token = await mfa_token(client, patient.username)
    response = await verify(client, token, factor.code())
    assert response.status_code == 500
    assert "administrator must reset" in response.json()["detail"]
    assert f"user {patient.id} cannot be opened" in caplog.text
    assert factor.secret not in caplog.text


def _flipped(sealed: str) -> str:
    """The sealed text with one bit of its ciphertext changed (changing a character of the
    text could land on base64's padding bits, which decode to the same bytes)."""
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[-1] ^= 1
    return sealed[:3] + base64.urlsafe_b64encode(bytes(raw)).decode()


def test_sealing_is_authenticated_and_bound_to_its_context() -> None:
    box = SecretBox(derive_key("root key " * 4, "test purpose"))
    sealed = box.seal("JBSWY3DPEHPK3PXP", "user:1")
    assert box.open(sealed, "user:1") == "JBSWY3DPEHPK3PXP"
    assert sealed != box.seal("JBSWY3DPEHPK3PXP", "user:1")  # a fresh nonce each time
    for bad in (
        lambda: box.open(sealed, "user:2"),
        lambda: box.open(_flipped(sealed), "user:1"),
        lambda: box.open("v2." + sealed[3:], "user:1"),
        lambda: box.open("v1.%%%", "user:1"),
        lambda: SecretBox(derive_key("root key " * 4, "other purpose")).open(sealed, "user:1"),
    ):
        with pytest.raises(CannotOpen):
            bad()


def test_keys_come_from_the_mfa_key_when_set_else_from_the_signing_key() -> None:
    base = Settings(secret_key=TEST_SECRET_KEY, environment="test")
    derived = MfaKeys.from_settings(base, TEST_SECRET_KEY)
    assert derived.recovery != TEST_SECRET_KEY.encode()
    assert derived.box.key != derived.recovery  # one key per purpose
    own = base.model_copy(update={"mfa_encryption_key": "m" * 40})
    separate = MfaKeys.from_settings(own, TEST_SECRET_KEY)
    assert separate.recovery != derived.recovery
    sealed = separate.seal_secret("JBSWY3DPEHPK3PXP", 7)
    with pytest.raises(CannotOpen):
        derived.open_secret(sealed, 7)
    assert "m" * 40 not in repr(own)
    assert repr(derived.recovery) not in repr(derived)


async def test_the_stored_secret_is_never_the_secret(db: AsyncSession, settings: Settings) -> None:
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, patient)
    stored = await db.scalar(
        select(TotpCredential.secret).where(TotpCredential.user_id == patient.id)
    )
    assert stored is not None
    assert factor.secret not in stored
    assert factor.secret.lower() not in stored.lower()
