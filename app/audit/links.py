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
from sqlalchemy import Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent, AuditLinkState, AuditPatientLink
from app.audit.repository import LINK_STATE_ID, head_event_id_query
from app.transaction import commit

logger = logging.getLogger("app.audit")

EVENTS_PER_LINK = 64  # bounds what an access log page expands per row
# Bounds what a run holds in memory: a list page's event names up to 50 patients, so a run
# expands at most 50,000 (patient, event) pairs. A backlog is linked run after run.
EVENTS_PER_RUN = 1_000


def pending_events(mark: int, head: int, limit: int) -> Select[int, str | None]:
    """The first `limit` events naming several patients after the mark, up to the chain's
    head, by an index range bounded on both sides by values: the planner prices it as
    small however stale its statistics of the trail (with the mark joined as a row,
    PostgreSQL walked the chain from its start)."""
    return (
        select(AuditEvent.id, AuditEvent.patient_ids)
        .where(AuditEvent.id > mark, AuditEvent.id <= head, AuditEvent.patient_ids.is_not(None))
        .order_by(AuditEvent.id)
        .limit(limit)
    )


async def link_pending(session: AsyncSession, limit: int = EVENTS_PER_RUN) -> int:
    """Link up to `limit` events after the mark to their patients and move the mark (to
    the chain's head when fewer were pending), in the session's transaction; returns how
    many events it linked (0: none, or another run holds the mark).

    The grouping is done here, not in SQL: expanding, sorting and aggregating the pairs
    costs PostgreSQL many times what grouping them in the process does."""
    mark = await session.scalar(
        select(AuditLinkState.linked_event_id)
        .where(AuditLinkState.id == LINK_STATE_ID)
        .with_for_update(skip_locked=True)  # SQLite's BEGIN IMMEDIATE serialises runs anyway
    )
    head = await session.scalar(head_event_id_query())
    if mark is None or head is None or head <= mark:
        return 0
    events = (await session.execute(pending_events(mark, head, limit))).all()
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
        .values(linked_event_id=events[-1].id if len(events) == limit else head)
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
