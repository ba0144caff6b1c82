"""Housekeeping run by `hospital-api purge-expired-tokens` (e.g. daily from cron)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository
from app.core import ratelimit
from app.core.config import get_settings
from app.core.db import utcnow


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession], login_window_minutes: int | None = None
) -> dict[str, int]:
    """Delete revocations, logins (token families), lock-out counters and rate-limit
    counters that can no longer refuse anything: every token they concern has expired
    anyway, every window they count has ended. Returns rows per table."""
    minutes = login_window_minutes or get_settings().login_window_minutes
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        counts = await repository.purge_expired(session, now, timedelta(minutes=minutes))
        counts["rate_limit_counters"] = await ratelimit.purge(session, now)
        return counts
