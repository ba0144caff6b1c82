"""SQL of emergency access grants."""

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, insert
from sqlalchemy.sql import select

from app.audit.policy import trail_visible
from app.audit.repository import BEFORE
from app.auth.caller import TOKEN_CALLER, scoped
from app.core.db import AnySelect, UTCDateTime
from app.core.pagination import MAX_LIMIT, written
from app.emergency.models import EmergencyGrant
from app.transaction import Write
from app.users import repository as users

GRANTED_FIELDS = ("id", "patient_id", "doctor_id", "reason", "created_at", "expires_at")

# A grant, made only if `patient_id` is a patient's: one statement checks and inserts.
_CREATE = (
    insert(EmergencyGrant)
    .from_select(
        list(GRANTED_FIELDS[1:]),
        select(
            bindparam("patient_id", type_=BigInteger),
            bindparam("doctor_id", type_=BigInteger),
            bindparam("reason", type_=String),
            bindparam("created_at", type_=UTCDateTime),
            bindparam("expires_at", type_=UTCDateTime),
        ).where(users.is_patient(bindparam("patient_id", type_=BigInteger))),
    )
    .returning(*(getattr(EmergencyGrant, name) for name in GRANTED_FIELDS))
)


async def create(
    write: Write,
    *,
    patient_id: int,
    doctor_id: int,
    reason: str,
    created_at: datetime,
    expires_at: datetime,
) -> dict[str, Any] | None:
    """The grant, or None when `patient_id` is no patient's."""
    values = {
        "patient_id": patient_id,
        "doctor_id": doctor_id,
        "reason": reason,
        "created_at": created_at,
        "expires_at": expires_at,
    }
    row = await write.one(_CREATE, values)
    return None if row is None else dict(zip(GRANTED_FIELDS, row, strict=True))


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
