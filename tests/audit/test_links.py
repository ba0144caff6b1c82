"""Linking pages' events to their patients after the fact (audit.links), and the access logs
that read what is linked from the links and the rest from the chain."""

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import repository
from app.audit.links import EVENTS_PER_LINK, EVENTS_PER_RUN, AuditLinker, link_pending
from app.audit.models import AuditEvent, AuditLinkState, AuditPatientLink
from app.core.db import create_engine, create_sessionmaker
from tests.audit.helpers import write_events
from tests.conftest import make_settings


async def _link_mark(session: AsyncSession) -> int:
    mark = await session.scalar(select(AuditLinkState.linked_event_id))
    assert mark is not None
    return mark


async def _links(session: AsyncSession, patient_id: int) -> list[tuple[int, list[int]]]:
    query = (
        select(AuditPatientLink.first_event_id, AuditPatientLink.event_ids)
        .where(AuditPatientLink.patient_id == patient_id)
        .order_by(AuditPatientLink.first_event_id)
    )
    return [(first, orjson.loads(ids)) for first, ids in await session.execute(query)]


async def _whole_log(session: AsyncSession, patient_id: int, limit: int) -> list[int]:
    """Every event id of the patient's access log, page after page."""
    ids: list[int] = []
    before: int | None = None
    while True:
        page = repository.log_page(session.get_bind().dialect.name, limit)
        values = {"patient_id": patient_id, "before": before or repository.NEWEST}
        rows = (await session.execute(page, values)).all()
        ids += sorted((row.id for row in rows), reverse=True)[:limit]
        if len(rows) <= limit:
            return ids
        before = ids[-1]


async def _named(session: AsyncSession, patient_id: int) -> list[int]:
    """The events naming the patient, newest first, read from their chained content."""
    rows = await session.execute(
        select(AuditEvent.id, AuditEvent.patient_id, AuditEvent.patient_ids).order_by(
            AuditEvent.id.desc()
        )
    )
    return [
        event_id
        for event_id, single, several in rows
        if single == patient_id or (several and patient_id in orjson.loads(several))
    ]


async def _history(db: AsyncSession) -> None:
    await write_events(db, 70, per_transaction=10, patients=[10, 11])
    await write_events(db, 5, patient_id=10)
    await write_events(db, 80, per_transaction=10, patients=[12, 10])
    await write_events(db, 3, patients=[11])  # a page of one patient names him alone


async def test_access_logs_are_the_same_unlinked_partly_linked_and_linked(db: AsyncSession) -> None:
    await _history(db)
    expected = {patient: await _named(db, patient) for patient in (10, 11, 12, 99)}
    assert [len(expected[p]) for p in (10, 11, 12, 99)] == [155, 73, 80, 0]

    # Nothing linked, then runs of 50 and 40 events (the mark mid-chain), then the rest.
    for run, linked in ((0, 0), (50, 50), (40, 40), (1_000, 60)):
        if run:
            assert await link_pending(db, limit=run) == linked
        for patient, ids in expected.items():
            for limit in (1, 7, EVENTS_PER_LINK + 1):
                assert await _whole_log(db, patient, limit) == ids, (run, patient, limit)


async def test_each_run_writes_a_row_per_patient_of_at_most_64_events(db: AsyncSession) -> None:
    await _history(db)
    first_event = (await _named(db, 11))[-1]

    assert await link_pending(db) == 150  # the 158 events but the 8 naming one patient
    assert await _link_mark(db) == first_event + 157
    assert await link_pending(db) == 0  # nothing new: no rows, the mark stays

    links = await _links(db, 10)
    assert [len(ids) for _, ids in links] == [64, 64, 22]  # 150 page events; 5 name him alone
    assert all(first == ids[0] and ids == sorted(ids) for first, ids in links)
    assert [i for _, ids in links for i in ids] == sorted(
        set(await _named(db, 10)) - set(range(first_event + 70, first_event + 75))
    )
    assert [len(ids) for _, ids in await _links(db, 11)] == [64, 6]
    assert [len(ids) for _, ids in await _links(db, 12)] == [64, 16]

    await write_events(db, 2, patients=[10, 12])
    assert await link_pending(db) == 2
    *_, (first, ids) = await _links(db, 10)
    assert ids == [first, first + 1] == [first_event + 158, first_event + 159]


async def test_a_backlog_is_linked_a_bounded_run_at_a_time(db: AsyncSession) -> None:
    mark = await _link_mark(db)
    await write_events(db, EVENTS_PER_RUN + 3, per_transaction=EVENTS_PER_RUN + 3, patients=[1, 2])
    written = list(
        await db.scalars(select(AuditEvent.id).where(AuditEvent.id > mark).order_by(AuditEvent.id))
    )
    assert await link_pending(db) == EVENTS_PER_RUN
    assert await _link_mark(db) == written[EVENTS_PER_RUN - 1]  # the last event it linked
    assert await link_pending(db) == 3
    assert await link_pending(db) == 0
    linked = [len(ids) for _, ids in await _links(db, 1)]
    assert sum(linked) == EVENTS_PER_RUN + 3
    assert max(linked) == EVENTS_PER_LINK


@pytest.mark.postgres_only  # row locks
async def test_a_run_skips_its_turn_while_another_holds_the_mark(
    db: AsyncSession, engine: Any
) -> None:
    await write_events(db, 1, patients=[1, 2])
    assert await link_pending(db) == 1  # holds the mark's row until the test's end
    other = async_sessionmaker(engine)
    async with other() as session:
        assert await asyncio.wait_for(link_pending(session), timeout=5) == 0


async def test_the_linker_links_what_is_committed_on_its_own(fresh_database_url: Any) -> None:
    engine = create_engine(make_settings(await fresh_database_url()))
    sessionmaker = create_sessionmaker(engine)
    linker = AuditLinker(sessionmaker, interval=0.05)
    try:
        async with sessionmaker() as session:
            await write_events(session, 3, patients=[7, 8])
            last = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()))
        linker.start()
        async with asyncio.timeout(10):
            while True:
                async with sessionmaker() as session:
                    if await _link_mark(session) == last:
                        links = await _links(session, 8)
                        break
                await asyncio.sleep(0.05)
    finally:
        await linker.stop()
        await engine.dispose()
    assert links == [(last - 2, [last - 2, last - 1, last])]
