"""Recording audit events; they are appended as the last write of the request's transaction."""

from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.repository import NewEvent
from app.core.context import Principal, RequestMeta
from app.core.db import before_commit, utcnow

_PENDING = "audit_pending"


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


def record(
    session: AsyncSession,
    *,
    meta: RequestMeta,
    actor: Principal | None = None,
    actor_id: int | None = None,
    action: str,
    resource_type: str,
    resource_id: int | None = None,
    outcome: Outcome = Outcome.ALLOWED,
    patient_id: int | None = None,
    emergency_grant_id: int | None = None,
) -> None:
    """Queue one event in this transaction: committed with it, or rolled back with it.

    Refusals are raised as errors that keep the transaction's writes (`keeps_writes`),
    so their events are committed although the request failed.
    """
    event = NewEvent(
        at=utcnow(),
        actor_id=actor.id if actor else actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome.value,
        ip=meta.ip,
        request_id=meta.request_id,
        emergency_grant_id=emergency_grant_id,
        patient_id=patient_id,
        department_id=actor.department_id if actor else None,
    )
    session.info.setdefault(_PENDING, []).append(event)
    before_commit(session, _flush)


async def _flush(session: AsyncSession) -> None:
    events = session.info.pop(_PENDING, [])
    if events:
        await repository.append(session, events)
