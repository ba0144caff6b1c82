"""SQL of the audit trail: the chained append and the streamed walk over the chain."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import content_digest, link
from app.audit.models import AuditChainHead, AuditEvent

CHAIN_HEAD_ID = 1


@dataclass(frozen=True, slots=True)
class NewEvent:
    at: datetime
    actor_id: int | None
    action: str
    resource_type: str
    resource_id: int | None
    outcome: str
    ip: str | None
    request_id: str | None
    emergency_grant_id: int | None = None
    patient_id: int | None = None
    department_id: int | None = None

    def digest(self) -> str:
        return content_digest(
            at=self.at,
            actor_id=self.actor_id,
            action=self.action,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            outcome=self.outcome,
            ip=self.ip,
            request_id=self.request_id,
            emergency_grant_id=self.emergency_grant_id,
            patient_id=self.patient_id,
            department_id=self.department_id,
        )


# One round trip on PostgreSQL: lock the head, insert the event chained to it, move the head.
# The head's row lock is what makes concurrent appends (any process) form a single chain:
# a second transaction waits here until the first commits, then reads its hash.
_APPEND_POSTGRES = text(
    """
    WITH head AS (
        SELECT last_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE
    ), event AS (
        INSERT INTO audit_events (
            at, actor_id, action, resource_type, resource_id, outcome, ip, request_id,
            emergency_grant_id, patient_id, department_id, hash
        )
        SELECT :at, :actor_id, :action, :resource_type, :resource_id, :outcome, :ip,
               :request_id, :emergency_grant_id, :patient_id, :department_id,
               encode(sha256(convert_to(head.last_hash || :digest, 'UTF8')), 'hex')
        FROM head
        RETURNING id, hash
    )
    UPDATE audit_chain_head SET last_event_id = event.id, last_hash = event.hash
    FROM event WHERE audit_chain_head.id = 1
    """
)


async def append(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """Append events to the chain in a constant number of statements, whatever their count."""
    if not events:
        return
    if len(events) == 1 and session.bind.dialect.name == "postgresql":
        event = events[0]
        await session.execute(_APPEND_POSTGRES, {**_fields(event), "digest": event.digest()})
        return
    # Lock the head (SQLite: BEGIN IMMEDIATE already holds the write lock), chain in Python.
    last_hash = await session.scalar(
        select(AuditChainHead.last_hash).where(AuditChainHead.id == CHAIN_HEAD_ID).with_for_update()
    )
    rows = []
    for event in events:
        last_hash = link(last_hash or "", event.digest())
        rows.append({**_fields(event), "hash": last_hash})
    ids = (await session.execute(insert(AuditEvent).returning(AuditEvent.id), rows)).scalars()
    await session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == CHAIN_HEAD_ID)
        .values(last_event_id=max(ids), last_hash=last_hash)
    )


def _fields(event: NewEvent) -> dict[str, object]:
    return {
        "at": event.at,
        "actor_id": event.actor_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "request_id": event.request_id,
        "emergency_grant_id": event.emergency_grant_id,
        "patient_id": event.patient_id,
        "department_id": event.department_id,
    }


async def stream_chain(session: AsyncSession, batch: int = 5000) -> AsyncIterator[AuditEvent]:
    """Every event in chain order, fetched in batches (bounded memory for millions)."""
    result = await session.stream_scalars(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)
    )
    async for event in result:
        yield event


async def chain_head(session: AsyncSession) -> AuditChainHead | None:
    return await session.get(AuditChainHead, CHAIN_HEAD_ID)
