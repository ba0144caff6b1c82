"""Issuing a login's tokens: a new family, an access token and a refresh token.

A login's authentication methods (`amr`, RFC 8176) are stored with its family, and every
pair of the family carries them: a refresh can neither add a factor nor lose one.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.core.config import Settings
from app.core.security import PASSWORD, IssuedToken, create_token


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedToken
    refresh: IssuedToken
    expires_in: int


def _pair(
    key: str,
    settings: Settings,
    user_id: int,
    role: str,
    family: str,
    valid_after: datetime | None,
    amr: tuple[str, ...],
) -> TokenPair:
    access_lifetime = timedelta(minutes=settings.access_token_expire_minutes)
    access = create_token(
        key,
        user_id=user_id,
        role=role,
        family=family,
        token_type="access",
        lifetime=access_lifetime,
        not_before=valid_after,
        amr=amr,
    )
    refresh = create_token(
        key,
        user_id=user_id,
        role=role,
        family=family,
        token_type="refresh",
        lifetime=timedelta(days=settings.refresh_token_expire_days),
        not_before=valid_after,
        amr=amr,
    )
    return TokenPair(access, refresh, int(access_lifetime.total_seconds()))


async def issue_login(
    session: AsyncSession,
    key: str,
    settings: Settings,
    *,
    user_id: int,
    role: str,
    valid_after: datetime | None = None,
    amr: tuple[str, ...] = (PASSWORD,),
) -> TokenPair:
    """Start a new login (token family) and issue its first pair. `valid_after` is the
    user's `tokens_valid_after`: the tokens are never issued before it. `amr`: how the
    login was authenticated."""
    family_id = secrets.token_hex(16)
    pair = _pair(key, settings, user_id, role, family_id, valid_after, amr)
    session.add(
        TokenFamily(
            id=family_id,
            user_id=user_id,
            current_refresh_jti=pair.refresh.claims.jti,
            expires_at=pair.refresh.claims.expires_at,
            amr=" ".join(amr),
        )
    )
    await session.flush()
    return pair


def rotate(
    key: str, settings: Settings, family: TokenFamily, role: str, valid_after: datetime
) -> TokenPair:
    """The next pair of an existing login; the family now accepts only the new refresh token."""
    amr = tuple(family.amr.split())
    pair = _pair(key, settings, family.user_id, role, family.id, valid_after, amr)
    family.current_refresh_jti = pair.refresh.claims.jti
    family.expires_at = pair.refresh.claims.expires_at
    return pair


def mfa_token(key: str, settings: Settings, *, user_id: int, role: str) -> IssuedToken:
    """The proof of a login's password step, for `POST /auth/mfa/verify` only: its own
    type (every other route refuses it), short-lived, and spent by its first use. Its
    `fam` names no login (one is started when the code is verified)."""
    return create_token(
        key,
        user_id=user_id,
        role=role,
        family=secrets.token_hex(16),
        token_type="mfa",
        lifetime=timedelta(minutes=settings.mfa_token_expire_minutes),
    )
