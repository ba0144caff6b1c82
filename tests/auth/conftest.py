"""Helpers of the authentication tests: payloads, logins, forged tokens."""

import base64
import json
import secrets
import time
from typing import Any

import httpx
from jose import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from tests.conftest import TEST_SECRET_KEY
from tests.factories import DEFAULT_PASSWORD, unique

GOOD_PASSWORD = "plum orchard at dusk 42"


def registration(**fields: Any) -> dict[str, Any]:
    username = fields.pop("username", unique("user_"))
    return {
        "username": username,
        "email": fields.pop("email", f"{username}@example.org"),
        "password": fields.pop("password", GOOD_PASSWORD),
        "full_name": fields.pop("full_name", f"Name of {username}"),
        **fields,
    }


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post("/auth/login/", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_claims(token))


def sign(claims: dict[str, Any], key: str = TEST_SECRET_KEY, algorithm: str = "HS256") -> str:
    return str(jwt.encode(claims, key, algorithm=algorithm))


def unsigned(claims: dict[str, Any]) -> str:
    """An `alg: none` token: header and payload, empty signature."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def fresh_claims(
    user_id: int, role: str, family: str, token_type: str = "access"
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(user_id),
        "role": role,
        "jti": secrets.token_hex(16),
        "fam": family,
        "iat": now,
        "exp": now + 600,
        "type": token_type,
    }


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def events(db: AsyncSession, action: str) -> list[AuditEvent]:
    result = await db.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    )
    return list(result)
