"""SQL of authentication: the per-request token check, families, revocations, throttling."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import TOKEN_CALLER, scoped
from app.auth.models import LoginFailure, RevokedToken, TokenFamily
from app.core.db import utcnow
from app.users.models import DoctorProfile, PatientProfile, User, casefold_key

# The caller's own account, as /auth/me answers it (the caller's row has the rest).
ME = scoped(select(User.email, User.is_active, User.created_at).where(User.id == TOKEN_CALLER.id))


USERNAME_KEY_LENGTH = 150  # LoginFailure.username_key and User.username_key


def insert_for(session: AsyncSession, table: type[LoginFailure] | type[RevokedToken]) -> Any:
    """INSERT with the dialect's ON CONFLICT support (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


async def user_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(
        select(User)
        .where(User.username_key == casefold_key(username))
        .execution_options(populate_existing=True)
    )


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.scalar(
        select(User).where(User.id == user_id).execution_options(populate_existing=True)
    )


async def lock_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def taken_fields(session: AsyncSession, username: str, email: str) -> list[str]:
    """Which of username and email another user already has (case-insensitively)."""
    username_key, email_key = casefold_key(username), casefold_key(email)
    rows = await session.execute(
        select(User.username_key, User.email_key).where(
            or_(User.username_key == username_key, User.email_key == email_key)
        )
    )
    taken: set[str] = set()
    for row in rows:
        if row.username_key == username_key:
            taken.add("username")
        if row.email_key == email_key:
            taken.add("email")
    return sorted(taken, reverse=True)  # username first


async def add_user(
    session: AsyncSession, user: User, profile: DoctorProfile | PatientProfile | None
) -> User:
    """Insert the user (and profile); the unique keys raise IntegrityError on a taken name."""
    session.add(user)
    await session.flush()
    if profile is not None:
        profile.user_id = user.id
        session.add(profile)
        await session.flush()
    return user


async def login_failures(session: AsyncSession, username_key: str) -> LoginFailure | None:
    """The lock-out counter of one username as it is now, without locking it."""
    return await session.scalar(
        select(LoginFailure)
        .where(LoginFailure.username_key == username_key[:USERNAME_KEY_LENGTH])
        .execution_options(populate_existing=True)
    )


async def lock_login_failures(session: AsyncSession, username_key: str) -> LoginFailure:
    """The lock-out counter of one username, created if missing and row-locked.

    The lock makes concurrent attempts on one username (any process) decide one after
    another, so the count is exact. SQLite already serialises writers (BEGIN IMMEDIATE).
    A key longer than the column (casefolding can lengthen a name: "ß" -> "ss") belongs to
    no user; it is counted under its first characters rather than failing the insert.
    """
    username_key = username_key[:USERNAME_KEY_LENGTH]
    await session.execute(
        insert_for(session, LoginFailure)
        .values(username_key=username_key, failures=0, window_started_at=utcnow())
        .on_conflict_do_nothing(index_elements=["username_key"])
    )
    counter = await session.scalar(
        select(LoginFailure)
        .where(LoginFailure.username_key == username_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert counter is not None  # inserted above or already there; only purge deletes it
    return counter


async def lock_family(session: AsyncSession, family_id: str) -> TokenFamily | None:
    return await session.scalar(
        select(TokenFamily)
        .where(TokenFamily.id == family_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def revoke_token(session: AsyncSession, jti: str, expires_at: datetime) -> None:
    """Record a revoked access token by id; revoking it twice is harmless."""
    await session.execute(
        insert_for(session, RevokedToken)
        .values(jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"])
    )


async def revoke_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_families(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def purge_expired(
    session: AsyncSession, now: datetime, login_window: timedelta
) -> dict[str, int]:
    """Delete what can no longer matter: revocations and logins past their expiry, and
    lock-out counters whose window has ended."""
    counts: dict[str, int] = {}
    for name, statement in (
        ("revoked_tokens", delete(RevokedToken).where(RevokedToken.expires_at < now)),
        ("token_families", delete(TokenFamily).where(TokenFamily.expires_at < now)),
        (
            "login_failures",
            delete(LoginFailure).where(LoginFailure.window_started_at < now - login_window),
        ),
    ):
        result = await session.execute(statement)
        counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts
