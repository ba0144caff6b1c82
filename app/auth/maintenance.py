"""Housekeeping run by `hospital-api purge-expired-tokens` (e.g. daily from cron)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository
from app.core.config import get_settings
from app.core.db import utcnow


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession], login_window_minutes: int | None = None
) -> dict[str, int]:
    """Delete revocations, logins (token families) and lock-out counters that can no longer
    refuse anything: every token they concern has expired anyway. Returns rows per table."""
    minutes = login_window_minutes or get_settings().login_window_minutes
    async with sessionmaker() as session, session.begin():
        return await repository.purge_expired(session, utcnow(), timedelta(minutes=minutes))
