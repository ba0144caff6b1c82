"""SQL of emergency access grants."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import written
from app.emergency.models import EmergencyGrant


async def create(
    session: AsyncSession,
    *,
    patient_id: int,
    doctor_id: int,
    reason: str,
    created_at: datetime,
    expires_at: datetime,
) -> EmergencyGrant:
    grant = EmergencyGrant(
        patient_id=patient_id,
        doctor_id=doctor_id,
        reason=reason,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(grant)
    await session.flush()
    return grant


async def list_newest_first(
    session: AsyncSession, *, limit: int, before_id: int | None
) -> list[EmergencyGrant]:
    """A keyset page by descending id (limit + 1 rows: the extra one says more exist)."""
    query = select(EmergencyGrant).order_by(EmergencyGrant.id.desc()).limit(written(limit + 1))
    if before_id is not None:
        query = query.where(EmergencyGrant.id < before_id)
    return list((await session.scalars(query)).all())
