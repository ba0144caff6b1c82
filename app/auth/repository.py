"""SQL of authentication: the per-request token check, families, revocations, throttling."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RevokedToken, TokenFamily
from app.core.security import TokenClaims
from app.users.models import DoctorProfile, User


@dataclass(frozen=True, slots=True)
class TokenOwner:
    id: int
    username: str
    full_name: str
    role: str
    is_active: bool
    tokens_valid_after: datetime
    department_id: int | None
    token_revoked: bool
    family_active: bool


async def token_owner(session: AsyncSession, claims: TokenClaims) -> TokenOwner | None:
    """The token's user with everything needed to trust the token, in one round trip."""
    token_revoked = exists().where(RevokedToken.jti == claims.jti)
    family_active = exists().where(
        TokenFamily.id == claims.family,
        TokenFamily.user_id == User.id,
        TokenFamily.revoked_at.is_(None),
    )
    row = (
        await session.execute(
            select(
                User.id,
                User.username,
                User.full_name,
                User.role,
                User.is_active,
                User.tokens_valid_after,
                DoctorProfile.department_id,
                token_revoked.label("token_revoked"),
                family_active.label("family_active"),
            )
            .outerjoin(DoctorProfile, DoctorProfile.user_id == User.id)
            .where(User.id == claims.user_id)
        )
    ).one_or_none()
    return TokenOwner(*row) if row else None
