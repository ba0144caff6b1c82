"""Emergency access is a step up: a doctor with MFA (every doctor, when doctors must have it)
opens a grant only with a token of a login with a code."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.mfa.policy import ENROL_FIRST, STEP_UP
from app.core.config import Settings
from app.emergency.models import EmergencyGrant
from tests.auth.conftest import events
from tests.factories import (
    create_department,
    create_doctor,
    create_patient,
    enrol_confirmed,
    tokens_for,
)
from tests.mfa.helpers import app_with, at_step_second, log_in_with_code
from tests.records.world import count

REASON = "Unconscious patient in the ER, allergies unknown"
STRONG = ("pwd", "otp")


async def open_grant(
    client: httpx.AsyncClient, headers: dict[str, str], patient_id: int
) -> httpx.Response:
    return await client.post(
        f"/api/patients/{patient_id}/emergency-access", json={"reason": REASON}, headers=headers
    )


async def test_a_doctor_without_mfa_opens_a_grant_with_his_password(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db, await create_department(db))
    patient = await create_patient(db)
    tokens = await tokens_for(db, settings, doctor)
    assert (await open_grant(client, tokens.headers, patient.id)).status_code == 201


async def test_a_doctor_with_mfa_needs_a_login_with_a_code(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    doctor = await create_doctor(db, await create_department(db))
    patient = await create_patient(db)
    factor = await enrol_confirmed(db, doctor)
    weak = await tokens_for(db, settings, doctor)  # a login from before he enrolled

    refused = await open_grant(client, weak.headers, patient.id)
    assert (refused.status_code, refused.json()) == (403, {"detail": STEP_UP})
    assert await count(db, EmergencyGrant) == 0
    [event] = await events(db, "emergency.grant")
    assert (event.actor_id, event.outcome, event.resource_id) == (doctor.id, "denied", patient.id)
    # The same answer for an id that is no patient: the refusal says nothing about it.
    nobody = await open_grant(client, weak.headers, patient.id + 1000)
    assert (nobody.status_code, nobody.json()) == (403, {"detail": STEP_UP})
    # His other routes are not a step up.
    assert (await client.get("/api/patient_records/", headers=weak.headers)).status_code == 200

    at_step_second(frozen_clock, 9)
    strong = await log_in_with_code(client, doctor.username, factor.code())
    assert strong.status_code == 200
    headers = {"Authorization": f"Bearer {strong.json()['access_token']}"}
    assert (await open_grant(client, headers, patient.id)).status_code == 201
    # Refreshed, the login keeps its code: still a step up.
    refreshed = await client.post(
        "/auth/refresh/", json={"refresh_token": strong.json()["refresh_token"]}
    )
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await open_grant(client, headers, patient.id)).status_code == 201


async def test_when_doctors_must_have_mfa_every_grant_needs_a_code(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
) -> None:
    department = await create_department(db)
    patient = await create_patient(db)
    without = await create_doctor(db, department)
    enrolled = await create_doctor(db, department)
    await enrol_confirmed(db, enrolled)
    async with app_with(settings, engine, sessionmaker, mfa_required_roles={"doctor"}) as http:
        no_factor = await open_grant(
            http, (await tokens_for(db, settings, without)).headers, patient.id
        )
        assert (no_factor.status_code, no_factor.json()) == (403, {"detail": ENROL_FIRST})
        weak = await open_grant(
            http, (await tokens_for(db, settings, enrolled)).headers, patient.id
        )
        assert weak.status_code == 403
        strong = await tokens_for(db, settings, enrolled, amr=STRONG)
        assert (await open_grant(http, strong.headers, patient.id)).status_code == 201
    assert await count(db, EmergencyGrant) == 1
