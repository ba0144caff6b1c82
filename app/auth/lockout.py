"""The per-username lock-out: what counts as a failure, when a username is locked, and the
refusal while it is. Wrong passwords (login, password change) and wrong second-factor codes
(MFA verify and removal) count toward the same counter (repository.lock_login_failures)."""

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Outcome
from app.auth.models import LoginFailure
from app.core.config import Settings
from app.core.context import RequestMeta
from app.core.errors import TooManyRequests
from app.core.observability import LOCKOUTS

LOCKED = "Too many failed logins, try again later"


def _window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.login_window_minutes)


def locked_for(counter: LoginFailure, settings: Settings, now: datetime) -> int | None:
    """Seconds until the lock-out ends, or None when the username is not locked."""
    window_end = counter.window_started_at + _window(settings)
    if counter.failures >= settings.login_max_failures and now < window_end:
        return max(1, math.ceil((window_end - now).total_seconds()))
    return None


def count_failure(counter: LoginFailure, settings: Settings, now: datetime) -> None:
    if now >= counter.window_started_at + _window(settings):
        counter.failures, counter.window_started_at = 1, now
    else:
        counter.failures += 1


def clear(counter: LoginFailure, now: datetime) -> None:
    """A login that succeeded (every factor it needs) starts the count again."""
    counter.failures, counter.window_started_at = 0, now


def audit_attempt(
    session: AsyncSession,
    meta: RequestMeta,
    user_id: int | None,
    action: str,
    outcome: Outcome = Outcome.ALLOWED,
) -> None:
    """An attempt on an account (login, refresh, MFA verify), naming it when it exists."""
    audit.record(
        session,
        meta=meta,
        actor_id=user_id,
        action=action,
        resource_type="user",
        resource_id=user_id,
        outcome=outcome,
    )


def refuse_if_locked(
    session: AsyncSession,
    meta: RequestMeta,
    settings: Settings,
    counter: LoginFailure,
    user_id: int | None,
    now: datetime,
) -> None:
    """While locked nothing is verified and the lock is not extended."""
    retry_after = locked_for(counter, settings, now)
    if retry_after is not None:
        audit_attempt(session, meta, user_id, "auth.lockout", Outcome.DENIED)
        LOCKOUTS.inc()
        raise TooManyRequests(retry_after, LOCKED)
