"""POST /auth/register/: who may create which role, field rules, uniqueness."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.users.models import DoctorProfile, PatientProfile, User
from tests.auth.conftest import GOOD_PASSWORD, assert_unauthorized, bearer, events, registration
from tests.factories import create_admin, create_department, create_doctor, tokens_for

USER_FIELDS = {"id", "username", "email", "full_name", "role", "is_active", "created_at"}


async def test_anonymous_registers_a_patient(client: httpx.AsyncClient, db: AsyncSession) -> None:
    payload = registration(
        username="Ann.Lee+1@x",
        email="Ann.Lee@Example.org",
        date_of_birth="1990-04-01",
        sex="female",
        phone="+1 555 0100",
    )
    response = await client.post("/auth/register/", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "Ann.Lee+1@x"
    assert body["email"] == payload["email"]
    assert body["role"] == "patient"
    assert body["is_active"] is True
    assert GOOD_PASSWORD not in response.text
    profile = await db.get(PatientProfile, body["id"])
    assert profile is not None
    assert profile.sex == "female"
    assert str(profile.date_of_birth) == "1990-04-01"
    [event] = await events(db, "auth.register")
    assert (event.actor_id, event.resource_id, event.outcome) == (body["id"], body["id"], "allowed")


async def test_registered_user_can_log_in(client: httpx.AsyncClient) -> None:
    payload = registration()
    assert (await client.post("/auth/register/", json=payload)).status_code == 201
    response = await client.post(
        "/auth/login/", json={"username": payload["username"], "password": GOOD_PASSWORD}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["admin", "doctor"])
async def test_anonymous_may_not_register_staff(
    client: httpx.AsyncClient, db: AsyncSession, role: str
) -> None:
    payload = registration(role=role)
    response = await client.post("/auth/register/", json=payload)
    assert response.status_code == 403
    assert await db.scalar(select(User).where(User.username == payload["username"])) is None
    [event] = await events(db, "auth.register")
    assert (event.actor_id, event.outcome) == (None, "denied")


@pytest.mark.parametrize("role", ["admin", "doctor"])
async def test_a_doctor_may_not_register_staff(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, role: str
) -> None:
    doctor = await create_doctor(db)
    tokens = await tokens_for(db, settings, doctor)
    response = await client.post(
        "/auth/register/", json=registration(role=role), headers=tokens.headers
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("field", "value"), [("is_active", False), ("id", 1), ("password_hash", "x"), ("admin", True)]
)
async def test_unknown_fields_are_refused(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await client.post("/auth/register/", json=registration(**{field: value}))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_admin_registers_a_doctor_in_a_department(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await create_admin(db)
    department = await create_department(db)
    tokens = await tokens_for(db, settings, admin)
    payload = registration(
        role="doctor",
        department_id=department.id,
        specialization="Cardiology",
        license_number="LIC-77",
    )
    response = await client.post("/auth/register/", json=payload, headers=tokens.headers)
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "doctor"
    profile = await db.get(DoctorProfile, response.json()["id"])
    assert profile is not None
    assert (profile.department_id, profile.specialization, profile.license_number) == (
        department.id,
        "Cardiology",
        "LIC-77",
    )
    [event] = await events(db, "auth.register")
    assert (event.actor_id, event.resource_id) == (admin.id, response.json()["id"])


async def test_admin_registers_an_admin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    tokens = await tokens_for(db, settings, await create_admin(db))
    response = await client.post(
        "/auth/register/", json=registration(role="admin"), headers=tokens.headers
    )
    assert response.status_code == 201
    assert response.json()["role"] == "admin"


async def test_doctor_with_unknown_department_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    tokens = await tokens_for(db, settings, await create_admin(db))
    response = await client.post(
        "/auth/register/",
        json=registration(role="doctor", department_id=987654),
        headers=tokens.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "department_id"]


async def test_fields_of_another_role_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register/", json=registration(license_number="L-1"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "license_number"]


async def test_an_invalid_token_on_register_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register/", json=registration(), headers=bearer("not-a-token")
    )
    assert_unauthorized(response)


@pytest.mark.parametrize("field", ["username", "email"])
async def test_duplicate_in_another_letter_case_is_409(
    client: httpx.AsyncClient, field: str
) -> None:
    first = registration()
    assert (await client.post("/auth/register/", json=first)).status_code == 201
    second = registration(**{field: first[field].upper()})
    response = await client.post("/auth/register/", json=second)
    assert response.status_code == 409
    assert field.capitalize() in response.json()["detail"]


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 151, "has space", "tab\tname", "semi;colon", "ünïcode", "line\n", "nul\x00name"],
)
async def test_bad_usernames_are_422(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post("/auth/register/", json=registration(username=username))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "username"]


@pytest.mark.parametrize("username", ["abc", "a" * 150, "A_b.c@d+e-f9"])
async def test_good_usernames_are_accepted(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        "/auth/register/", json=registration(username=username, email="x@example.org")
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "a@@example.org", "a" * 250 + "@x.org"])
async def test_bad_emails_are_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/auth/register/", json=registration(email=email))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_name", ""), ("full_name", "x" * 201), ("full_name", "a\x00b"), ("role", "root")],
)
async def test_other_bad_fields_are_422(client: httpx.AsyncClient, field: str, value: str) -> None:
    response = await client.post("/auth/register/", json=registration(**{field: value}))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_birth_date_in_the_future_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register/", json=registration(date_of_birth="2999-01-01"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "date_of_birth"]
