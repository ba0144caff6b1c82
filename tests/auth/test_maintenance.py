"""purge_expired: only what can no longer refuse anything is removed."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.maintenance import purge_expired
from app.auth.models import LoginFailure, RevokedToken, TokenFamily
from app.core.config import Settings
from app.core.db import utcnow
from app.core.ratelimit import RateLimitCounter
from tests.factories import create_patient


async def test_purge_expired_removes_only_expired_rows(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    user = await create_patient(db)
    now = utcnow()
    window = timedelta(minutes=settings.login_window_minutes)
    db.add_all(
        [
            RevokedToken(jti="old", expires_at=now - timedelta(minutes=1)),
            RevokedToken(jti="live", expires_at=now + timedelta(minutes=5)),
            TokenFamily(
                id="old",
                user_id=user.id,
                current_refresh_jti="r1",
                expires_at=now - timedelta(hours=1),
            ),
            TokenFamily(
                id="revoked-but-live",
                user_id=user.id,
                current_refresh_jti="r2",
                expires_at=now + timedelta(days=1),
                revoked_at=now,
            ),
            LoginFailure(
                username_key="old",
                failures=5,
                window_started_at=now - window - timedelta(seconds=1),
            ),
            LoginFailure(
                username_key="live",
                failures=5,
                window_started_at=now - window + timedelta(minutes=1),
            ),
            RateLimitCounter(
                key="login:192.0.2.1", window_ends_at=now - timedelta(seconds=1), hits=9
            ),
            RateLimitCounter(
                key="login:192.0.2.2", window_ends_at=now + timedelta(seconds=30), hits=9
            ),
        ]
    )
    await db.commit()

    counts = await purge_expired(sessionmaker, settings.login_window_minutes)

    assert counts == {
        "revoked_tokens": 1,
        "token_families": 1,
        "login_failures": 1,
        "rate_limit_counters": 1,
    }
    assert list(await db.scalars(select(RevokedToken.jti))) == ["live"]
    assert list(await db.scalars(select(TokenFamily.id))) == ["revoked-but-live"]
    assert list(await db.scalars(select(LoginFailure.username_key))) == ["live"]
    assert list(await db.scalars(select(RateLimitCounter.key))) == ["login:192.0.2.2"]
    assert await purge_expired(sessionmaker) == {
        "revoked_tokens": 0,
        "token_families": 0,
        "login_failures": 0,
        "rate_limit_counters": 0,
    }
