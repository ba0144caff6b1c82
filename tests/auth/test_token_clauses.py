"""The token check against the database (auth.caller.CALLER_ROW), one clause at a time, on
every kind of route: a record read, the record list, a user route, a department route, the
caller's own account, and a write.

Each case breaks exactly one clause of the check and leaves the others true, so that
removing any one clause from the statement fails its case (a logout, which revokes the
token and its login together, would hide one clause behind the other).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RevokedToken, TokenFamily
from app.core.config import Settings
from app.core.db import utcnow
from app.core.security import TokenClaims, decode_token
from app.users.models import User
from tests.auth.conftest import assert_unauthorized
from tests.factories import Tokens, tokens_for
from tests.records.world import World, build_world


@dataclass
class Case:
    db: AsyncSession
    client: httpx.AsyncClient
    settings: Settings
    world: World
    user: User
    tokens: Tokens

    def claims(self) -> TokenClaims:
        return decode_token(self.settings.signing_key(), self.tokens.access, "access")


Breaker = Callable[[Case], Awaitable[None]]


async def _deactivated(case: Case) -> None:
    """`is_active` false, and nothing else: the API's deactivation also revokes his logins."""
    await case.db.execute(update(User).where(User.id == case.user.id).values(is_active=False))


async def _issued_before_valid_after(case: Case) -> None:
    """The token predates `tokens_valid_after` (as after a password change elsewhere)."""
    later = utcnow() + timedelta(seconds=1)
    query = update(User).where(User.id == case.user.id).values(tokens_valid_after=later)
    await case.db.execute(query)


async def _login_revoked_by_reuse(case: Case) -> None:
    """A refresh token used twice: the whole login is revoked, the access token's jti not."""
    body = {"refresh_token": case.tokens.refresh}
    assert (await case.client.post("/auth/refresh/", json=body)).status_code == 200
    assert (await case.client.post("/auth/refresh/", json=body)).status_code == 401


async def _jti_revoked(case: Case) -> None:
    """This one token revoked, its login still open."""
    claims = case.claims()
    await case.db.execute(insert(RevokedToken).values(jti=claims.jti, expires_at=claims.expires_at))


async def _login_of_another_user(case: Case) -> None:
    """The token's login belongs to someone else: its id, in a token of his, is not his."""
    other = next(user for user in case.world.users.values() if user.id != case.user.id)
    query = update(TokenFamily).where(TokenFamily.id == case.claims().family)
    await case.db.execute(query.values(user_id=other.id))


BREAKERS: dict[str, Breaker] = {
    "user inactive": _deactivated,
    "issued before tokens_valid_after": _issued_before_valid_after,
    "login revoked (refresh-token reuse)": _login_revoked_by_reuse,
    "jti revoked": _jti_revoked,
    "login of another user": _login_of_another_user,
}

# (caller, method, path, body): one route of each kind, each answering 2xx to a good token.
ROUTES = [
    ("doctor_own", "GET", "/api/patient_records/{record}", None),
    ("patient_owner", "GET", "/api/patient_records/", None),
    ("doctor_own", "GET", "/api/patients/{patient}", None),
    ("admin", "GET", "/api/doctors/", None),
    ("patient_owner", "GET", "/api/department/{department}", None),
    ("doctor_other", "GET", "/api/department/{department}/patients", None),
    ("patient_owner", "GET", "/auth/me", None),
    ("doctor_own", "PATCH", "/api/patient_records/{record}", {"notes": "seen again"}),
    ("admin", "POST", "/api/department/", {"name": "Radiology {n}"}),
]


def _request(world: World, method: str, path: str, body: Any) -> dict[str, Any]:
    url = path.format(
        record=world.record.id,
        patient=world.users["patient_owner"].id,
        department=world.department.id,
    )
    request: dict[str, Any] = {"method": method, "url": url}
    if body is not None:
        request["json"] = {k: str(v).format(n=id(request)) for k, v in body.items()}
    return request


@pytest.mark.parametrize(("caller", "method", "path", "body"), ROUTES)
async def test_a_good_token_is_served(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    caller: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    world = await build_world(db)
    tokens = await tokens_for(db, settings, world.users[caller])
    response = await client.request(**_request(world, method, path, body), headers=tokens.headers)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize(("caller", "method", "path", "body"), ROUTES)
async def test_each_clause_refuses_the_token_on_every_kind_of_route(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    caller: str,
    method: str,
    path: str,
    body: Any,
    breaker: str,
) -> None:
    world = await build_world(db)
    user = world.users[caller]
    tokens = await tokens_for(db, settings, user)
    await BREAKERS[breaker](Case(db, client, settings, world, user, tokens))
    await db.commit()
    response = await client.request(**_request(world, method, path, body), headers=tokens.headers)
    assert_unauthorized(response)
