"""SQL of emergency access grants."""

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import select

from app.audit.policy import trail_visible
from app.audit.repository import BEFORE
from app.auth.caller import TOKEN_CALLER, scoped
from app.core.db import AnySelect, UTCDateTime
from app.core.pagination import MAX_LIMIT, written
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


GRANT_COLUMNS = (
    EmergencyGrant.id,
    EmergencyGrant.patient_id,
    EmergencyGrant.doctor_id,
    EmergencyGrant.reason,
    EmergencyGrant.created_at,
    EmergencyGrant.expires_at,
)
REVIEW_FIELDS = (*(column.key for column in GRANT_COLUMNS), "active")


@lru_cache(maxsize=MAX_LIMIT)
def reviews_page(limit: int) -> AnySelect:
    """Every grant, newest first (keyset by descending id below `before`), with whether it
    is active at `now`, for the trail's readers. Binds before, now."""
    now = bindparam("now", type_=UTCDateTime())
    query = (
        select(*GRANT_COLUMNS, (EmergencyGrant.expires_at > now).label("active"))
        .where(trail_visible(TOKEN_CALLER), EmergencyGrant.id < BEFORE)
        .order_by(EmergencyGrant.id.desc())
        .limit(written(limit + 1))
    )
    return scoped(query)
