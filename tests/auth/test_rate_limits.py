"""Per-address limits on register, login and refresh: they bite, they tell, they end.

Small limits on an app of its own, on the test's database (either one); the clock is moved,
never slept. The Redis counters are tested against a real Redis when one answers.
"""

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.models import LoginFailure
from app.core.config import Rate, Settings
from app.core.ratelimit import REFUSED, client_key
from app.main import create_app
from tests.auth.conftest import registration
from tests.conftest import make_settings
from tests.factories import (
    DEFAULT_PASSWORD,
    create_admin,
    create_patient,
    enrol_confirmed,
    tokens_for,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SMALL = {
    "rate_limit_login": Rate(3, 60),
    "rate_limit_refresh": Rate(4, 60),
    "rate_limit_register": Rate(2, 600),
    "rate_limit_mfa": Rate(2, 60),
}
# Structured Fields (RFC 8941) lists of one item: a string and its integer parameters.
POLICY_FIELD = re.compile(r'"(?P<name>[a-z_]+)";q=(?P<q>\d+);w=(?P<w>\d+)')
LIMIT_FIELD = re.compile(r'"(?P<name>[a-z_]+)";r=(?P<r>\d+);t=(?P<t>\d+)')

Clients = Callable[..., Any]


def address() -> str:
    """A client address of its own (in a /64 of the documentation prefix), so that no two
    clients share a count, nor two runs the counters Redis keeps between them."""
    return f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}::1"


def limits(response: httpx.Response) -> tuple[dict[str, str], dict[str, str]]:
    policy = POLICY_FIELD.fullmatch(response.headers["RateLimit-Policy"])
    limit = LIMIT_FIELD.fullmatch(response.headers["RateLimit"])
    assert policy, response.headers
    assert limit, response.headers
    assert policy["name"] == limit["name"]
    return policy.groupdict(), limit.groupdict()


@pytest.fixture
def clients(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> Clients:
    """`clients(**settings)` → a function giving an HTTP client from one address, to an app
    with those settings on the test's database (its transaction, rolled back after)."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
        app = create_app(settings.model_copy(update={**SMALL, **overrides}))
        app.state.engine, app.state.sessionmaker = engine, sessionmaker
        opened: list[httpx.AsyncClient] = []

        def client(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            opened.append(httpx.AsyncClient(transport=transport, base_url="http://test"))
            return opened[-1]

        try:
            yield client
        finally:
            for http in opened:
                await http.aclose()
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.counters.close()

    return make


async def login(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post("/auth/login/", json={"username": username, "password": password})


async def test_logins_past_the_limit_are_429_until_the_window_ends(
    clients: Clients, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    async with clients() as client:
        ward = client(address())
        for remaining in (2, 1, 0):
            response = await login(ward, user.username, DEFAULT_PASSWORD)
            assert response.status_code == 200
            policy, limit = limits(response)
            assert policy == {"name": "login", "q": "3", "w": "60"}
            assert int(limit["r"]) == remaining
            assert 1 <= int(limit["t"]) <= 60

        refused = await login(ward, user.username, DEFAULT_PASSWORD)  # the right password
        assert refused.status_code == 429
        assert refused.json() == {"detail": REFUSED}
        policy, limit = limits(refused)
        assert limit["r"] == "0"
        assert refused.headers["Retry-After"] == limit["t"]
        assert "access_token" not in refused.text

        # Another client address is not concerned.
        assert (await login(client(address()), user.username, DEFAULT_PASSWORD)).status_code == 200

        frozen_clock.advance(seconds=int(limit["t"]) - 1)
        assert (await login(ward, user.username, DEFAULT_PASSWORD)).status_code == 429
        frozen_clock.advance(seconds=1)
        again = await login(ward, user.username, DEFAULT_PASSWORD)
        assert again.status_code == 200
        assert limits(again)[1]["r"] == "2"


async def test_refusals_carry_the_fields_too(
    clients: Clients, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    async with clients() as client:
        ward = client(address())
        wrong = await login(ward, user.username, "wrong password 1")
        assert wrong.status_code == 401
        assert limits(wrong)[1]["r"] == "2"
        empty = await ward.post("/auth/refresh/", json={"refresh_token": ""})
        assert empty.status_code == 422
        assert limits(empty)[0]["name"] == "refresh"


async def test_a_refused_login_checks_nothing_and_counts_nothing_for_the_account(
    clients: Clients, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    async with clients(rate_limit_login=Rate(1, 60)) as client:
        ward = client(address())
        assert (await login(ward, user.username, "wrong password 1")).status_code == 401
        for _ in range(10):
            assert (await login(ward, user.username, "wrong password 1")).status_code == 429
    failures = await db.scalar(
        select(LoginFailure.failures)
        .where(LoginFailure.username_key == user.username.casefold())
        .execution_options(populate_existing=True)
    )
    assert failures == 1  # the account is not locked by an address's flood


async def test_registrations_are_limited_except_an_admins(
    clients: Clients, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    async with clients() as client:
        kiosk = client(address())
        for _ in range(2):
            created = await kiosk.post("/auth/register/", json=registration())
            assert created.status_code == 201
            assert limits(created)[0] == {"name": "register", "q": "2", "w": "600"}
        refused = await kiosk.post("/auth/register/", json=registration())
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) <= 600
        # A taken name answers no faster past the limit: still 429, not 409.
        taken = await kiosk.post("/auth/register/", json=registration(username="admin_taken"))
        assert taken.status_code == 429
        for _ in range(3):  # an admin onboarding staff from the same address
            staff = await kiosk.post(
                "/auth/register/", json=registration(role="doctor"), headers=admin.headers
            )
            assert staff.status_code == 201
            assert "RateLimit" not in staff.headers


async def test_refreshes_are_limited(
    clients: Clients, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    tokens = await tokens_for(db, settings, await create_patient(db))
    async with clients() as client:
        phone = client(address())
        token = tokens.refresh
        for _ in range(4):
            response = await phone.post("/auth/refresh/", json={"refresh_token": token})
            assert response.status_code == 200
            token = response.json()["refresh_token"]
        refused = await phone.post("/auth/refresh/", json={"refresh_token": token})
        assert refused.status_code == 429
        assert limits(refused)[0] == {"name": "refresh", "q": "4", "w": "60"}
    # Refused before it was looked at: the token is still the login's current one.
    async with clients() as client:
        later = await client(address()).post("/auth/refresh/", json={"refresh_token": token})
        assert later.status_code == 200


async def test_mfa_verify_is_limited_by_the_same_limiter(
    clients: Clients, db: AsyncSession, frozen_clock: Any
) -> None:
    user = await create_patient(db)
    factor = await enrol_confirmed(db, user)
    async with clients() as client:
        phone = client(address())
        tokens = []
        for _ in range(3):
            step_one = await login(phone, user.username, DEFAULT_PASSWORD)
            assert step_one.status_code == 401
            tokens.append(step_one.json()["mfa_token"])
        wrong = await phone.post(
            "/auth/mfa/verify", json={"mfa_token": tokens[0], "code": "000000"}
        )
        assert wrong.status_code == 401
        assert limits(wrong) == ({"name": "mfa", "q": "2", "w": "60"}, limits(wrong)[1])
        assert limits(wrong)[1]["r"] == "1"
        right = {"mfa_token": tokens[1], "code": factor.code()}
        assert (await phone.post("/auth/mfa/verify", json=right)).status_code == 200
        refused = await phone.post(
            "/auth/mfa/verify", json={"mfa_token": tokens[2], "code": factor.code(steps=1)}
        )
        assert refused.status_code == 429
        assert refused.json() == {"detail": REFUSED}
        policy, limit = limits(refused)
        assert (policy["name"], limit["r"]) == ("mfa", "0")
        assert refused.headers["Retry-After"] == limit["t"]
        # Refused before it was looked at: the MFA token is not spent.
        elsewhere = client(address())
        later = {"mfa_token": tokens[2], "code": factor.code(steps=1)}
        assert (await elsewhere.post("/auth/mfa/verify", json=later)).status_code == 200


async def test_an_ipv6_network_counts_as_one_address(clients: Clients, frozen_clock: Any) -> None:
    network = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}"
    async with clients() as client:
        statuses = [
            (
                await client(f"{network}::{n:x}").post(
                    "/auth/refresh/", json={"refresh_token": "x"}
                )
            ).status_code
            for n in range(1, 7)
        ]
    assert statuses == [401] * 4 + [429] * 2
    assert client_key(f"{network}::1") == client_key(f"{network}:ffff::2") == f"{network}::/64"
    assert client_key("192.0.2.7") == "192.0.2.7"


async def test_the_count_is_shared_by_every_app_on_the_database(
    clients: Clients, frozen_clock: Any
) -> None:
    """Two app instances stand for two processes: nothing is counted in memory."""
    ip = address()
    async with clients() as first, clients() as second:
        statuses = []
        for index in range(6):
            http = (first if index % 2 else second)(ip)
            statuses.append(
                (await http.post("/auth/refresh/", json={"refresh_token": "x"})).status_code
            )
    assert statuses == [401] * 4 + [429] * 2


async def test_disabled_limits_leave_no_trace(clients: Clients, frozen_clock: Any) -> None:
    async with clients(rate_limit_enabled=False) as client:
        http = client(address())
        for _ in range(8):
            response = await http.post("/auth/refresh/", json={"refresh_token": "x"})
            assert response.status_code == 401
            assert "RateLimit" not in response.headers


def test_rates_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "50/5m")
    monkeypatch.setenv("RATE_LIMIT_REGISTER", "10/1h")
    monkeypatch.setenv("RATE_LIMIT_REFRESH", "120/60")
    settings = Settings()
    assert settings.rate_limit_login == Rate(50, 300)
    assert settings.rate_limit_register == Rate(10, 3600)
    assert settings.rate_limit_refresh == Rate(120, 60)
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "fifty")
    with pytest.raises(ValueError, match="COUNT/WINDOW"):
        Settings()


# --- concurrency, with real commits ---------------------------------------------------------


@asynccontextmanager
async def live_limited(url: str, **overrides: Any) -> AsyncIterator[Callable[[str], Any]]:
    app = create_app(make_settings(url, **{**SMALL, **overrides}))
    async with app.router.lifespan_context(app):

        def client(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        yield client


async def _storm(client: Callable[[str], httpx.AsyncClient], attempts: int) -> list[int]:
    async with client(address()) as http:
        responses = await asyncio.gather(
            *(http.post("/auth/refresh/", json={"refresh_token": "x"}) for _ in range(attempts))
        )
    return sorted(response.status_code for response in responses)


async def test_concurrent_requests_are_counted_exactly(
    fresh_database_url: Any, frozen_clock: Any
) -> None:
    """The upsert is atomic: of 30 requests at once, exactly the limit get through (the
    clock stands still, so that no window ends among them)."""
    async with live_limited(await fresh_database_url(), rate_limit_refresh=Rate(10, 60)) as client:
        assert await _storm(client, 30) == [401] * 10 + [429] * 20


# --- Redis -----------------------------------------------------------------------------------


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_answers(), reason=f"no Redis at {REDIS_URL}")


@needs_redis
async def test_redis_counters_limit_and_end_with_their_window(
    clients: Clients, frozen_clock: Any
) -> None:
    ip = address()
    async with clients(redis_url=REDIS_URL) as client:
        http = client(ip)
        statuses = []
        for _ in range(6):
            response = await http.post("/auth/refresh/", json={"refresh_token": "x"})
            statuses.append(response.status_code)
        assert statuses == [401] * 4 + [429] * 2
        policy, limit = limits(response)
        assert response.headers["Retry-After"] == limit["t"]
        frozen_clock.advance(seconds=int(limit["t"]))
        after = await http.post("/auth/refresh/", json={"refresh_token": "x"})
        assert after.status_code == 401
        assert limits(after)[1]["r"] == "3"


@needs_redis
async def test_redis_counters_are_shared_and_exact(
    fresh_database_url: Any, frozen_clock: Any
) -> None:
    url = await fresh_database_url()
    async with live_limited(url, redis_url=REDIS_URL, rate_limit_refresh=Rate(10, 60)) as client:
        assert await _storm(client, 30) == [401] * 10 + [429] * 20


async def test_an_unreachable_redis_lets_requests_through(
    clients: Clients, frozen_clock: Any
) -> None:
    """The per-account lock-out still holds; logins do not stop with the counters."""
    async with clients(redis_url="redis://127.0.0.1:1/0") as client:
        response = await client(address()).post("/auth/refresh/", json={"refresh_token": "x"})
    assert response.status_code == 401
    assert "RateLimit" not in response.headers
