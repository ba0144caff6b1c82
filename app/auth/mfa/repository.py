"""SQL of the second factor: TOTP credentials, recovery codes, spent MFA tokens."""

from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import RecoveryCode, TotpCredential
from app.auth.models import RevokedToken
from app.auth.repository import insert_for


async def has_confirmed_totp(session: AsyncSession, user_id: int) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
                )
            )
        )
    )


async def lock_totp(session: AsyncSession, user_id: int) -> TotpCredential | None:
    """The user's credential, row-locked: whoever accepts a code records its step before
    anyone else may check one (replays are refused across processes)."""
    return await session.scalar(
        select(TotpCredential)
        .where(TotpCredential.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def add_totp(session: AsyncSession, credential: TotpCredential) -> None:
    session.add(credential)
    await session.flush()


async def replace_recovery_codes(
    session: AsyncSession, user_id: int, hashes: list[str], now: datetime
) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(RecoveryCode(user_id=user_id, code_hash=h, created_at=now) for h in hashes)
    await session.flush()


async def use_recovery_code(
    session: AsyncSession, user_id: int, code_hash: str, now: datetime
) -> bool:
    """Spend one of the user's unused codes; False when he has no such code (or it was
    spent, here or by a concurrent request: one UPDATE decides)."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def remove_factor(session: AsyncSession, user_id: int) -> bool:
    """Delete the user's credential (enrolled or confirmed) and recovery codes; whether he
    had a credential."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    result = await session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0) > 0


async def spend_token(session: AsyncSession, jti: str, expires_at: datetime) -> bool:
    """Record a single-use token's id as used; False when it already was (any process:
    the primary key decides)."""
    statement = (
        insert_for(session, RevokedToken)
        .values(jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"])
        .returning(RevokedToken.jti)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None
