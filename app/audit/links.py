"""Patients' links to the events that named several of them, written after the events.

A page of fifty records is one event naming fifty patients (`patient_ids`, chained with the
rest). Each patient's access log must find it by index, newest first. Written with the
event, that index cost fifty rows per page, most of what a list cost the database; here
each linking run reads the events appended since the last one and writes one row per
patient, holding up to `EVENTS_PER_LINK` of his events (`AuditPatientLink`).

Nothing depends on the links being current: `audit_link_state` names the last event
linked, and the access logs read the events after it from the chain itself
(`repository.access_log`). Every process runs `AuditLinker` every few seconds; a run that
finds another under way skips its turn.

Why the events after the mark are exactly the unlinked ones: every append takes the chain
head's row lock before the events get their ids and keeps it until it commits, so ids are
handed out in commit order. Whatever a run sees committed is a whole prefix of the chain.
"""

import asyncio
import logging
from collections import defaultdict

import orjson
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent, AuditLinkState, AuditPatientLink
from app.audit.repository import CHAIN_HEAD_ID, LINK_STATE_ID
from app.core.db import commit

logger = logging.getLogger("app.audit")

EVENTS_PER_LINK = 64  # bounds what an access log page expands per row
EVENTS_PER_RUN = 10_000


# PostgreSQL does it all in one statement: the run's rows never reach the process.
_LINK_ON_POSTGRES = text(
    f"""
    WITH mark AS (
        SELECT linked_event_id FROM audit_link_state WHERE id = {LINK_STATE_ID}
        FOR UPDATE SKIP LOCKED
    ), events AS (
        -- Values, not joined rows, bounding the key on both sides: an index range that
        -- the planner prices as small however stale its statistics of the trail (one
        -- bound it prices at a third of the table: read whole, or walked from the start).
        SELECT id, patient_ids FROM audit_events
        WHERE id > (SELECT linked_event_id FROM mark)
          AND id <= (SELECT last_event_id FROM audit_chain_head WHERE id = {CHAIN_HEAD_ID})
        ORDER BY id LIMIT :limit
    ), named AS (
        SELECT patient.id::bigint AS patient_id, events.id AS event_id,
               (row_number() OVER (PARTITION BY patient.id::bigint ORDER BY events.id) - 1)
                   / {EVENTS_PER_LINK} AS chunk
        FROM events, json_array_elements_text(events.patient_ids::json) AS patient(id)
        WHERE events.patient_ids IS NOT NULL
    ), links AS (
        INSERT INTO audit_patient_links (patient_id, first_event_id, event_ids)
        SELECT patient_id, min(event_id),
               '[' || string_agg(event_id::text, ',' ORDER BY event_id) || ']'
        FROM named GROUP BY patient_id, chunk
    )
    UPDATE audit_link_state SET linked_event_id = (SELECT max(id) FROM events)
    WHERE id = {LINK_STATE_ID} AND EXISTS (SELECT FROM events)
    RETURNING (SELECT count(*) FROM events)
    """
)


async def link_pending(session: AsyncSession, limit: int = EVENTS_PER_RUN) -> int:
    """Link up to `limit` events after the mark to their patients and move the mark, in
    the session's transaction; returns how many events it read (0: none, or another run
    holds the mark)."""
    if session.get_bind().dialect.name == "postgresql":
        return int(await session.scalar(_LINK_ON_POSTGRES, {"limit": limit}) or 0)
    linked = await session.scalar(
        select(AuditLinkState.linked_event_id)
        .where(AuditLinkState.id == LINK_STATE_ID)
        .with_for_update(skip_locked=True)  # a no-op: BEGIN IMMEDIATE serialises SQLite's
    )
    if linked is None:
        return 0
    events = (
        await session.execute(
            select(AuditEvent.id, AuditEvent.patient_ids)
            .where(AuditEvent.id > linked)
            .order_by(AuditEvent.id)
            .limit(limit)
        )
    ).all()
    if not events:
        return 0
    events_of: dict[int, list[int]] = defaultdict(list)
    for event_id, patient_ids in events:
        for patient_id in orjson.loads(patient_ids) if patient_ids else ():
            events_of[patient_id].append(event_id)
    rows = [
        {"patient_id": patient_id, "first_event_id": chunk[0], "event_ids": _ids(chunk)}
        for patient_id, ids in events_of.items()
        for chunk in (ids[i : i + EVENTS_PER_LINK] for i in range(0, len(ids), EVENTS_PER_LINK))
    ]
    if rows:
        await session.execute(insert(AuditPatientLink), rows)
    await session.execute(
        update(AuditLinkState)
        .where(AuditLinkState.id == LINK_STATE_ID)
        .values(linked_event_id=events[-1].id)
    )
    return len(events)


def _ids(event_ids: list[int]) -> str:
    return orjson.dumps(event_ids).decode()


class AuditLinker:
    """The process's linking loop: a run every `interval` seconds, at once again while
    there is a backlog. A failed run is logged and retried on the next turn."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], interval: float) -> None:
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> int:
        async with self._sessionmaker() as session:
            count = await link_pending(session)
            await commit(session)
        return count

    async def _loop(self) -> None:
        while True:
            try:
                backlog = await self.run_once() == EVENTS_PER_RUN
            except Exception as error:  # the database is away: the next turn retries
                logger.warning("audit linking failed: %s", type(error).__name__)
                backlog = False
            if not backlog:
                await asyncio.sleep(self._interval)
