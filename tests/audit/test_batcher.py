"""The group commit of read requests' events: requests waiting together share one append,
each answers only once its events are committed, and a failed append fails them all."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.audit import batcher as batcher_module
from app.audit.batcher import AuditBatcher, AuditUnavailable
from app.audit.models import AuditEvent
from app.audit.repository import NewEvent
from app.audit.verify import verify_chain
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.transaction import ReadBinds
from tests.conftest import make_settings

REQUESTS = 40


def events(request: int, count: int) -> list[NewEvent]:
    return [
        NewEvent(
            at=utcnow(), actor_id=request, action="record.list", resource_type="record",
            resource_id=None, outcome="allowed", ip="192.0.2.1", request_id=f"r{request}",
            patient_id=n + 1, department_id=None,
        )
        for n in range(count)
    ]  # fmt: skip


async def test_concurrent_requests_share_appends_and_leave_one_valid_chain(
    fresh_database_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(make_settings(await fresh_database_url(), db_pool_size=4))
    postgres = engine.dialect.name == "postgresql"
    binds = ReadBinds(engine, engine, driver=postgres)  # as app/transaction.py makes them
    appends: list[int] = []
    name = "append_on_driver" if postgres else "append"
    real_append = getattr(batcher_module, name)

    async def counted(connection: Any, *rest: Any) -> None:
        appends.append(len(rest[-1]))
        await real_append(connection, *rest)

    monkeypatch.setattr(batcher_module, name, counted)
    batcher = AuditBatcher()
    try:
        await asyncio.gather(
            *(batcher.append(binds, events(n, 1 + n % 3)) for n in range(REQUESTS))
        )
        async with create_sessionmaker(engine)() as session:
            stored = await session.scalar(select(func.count()).select_from(AuditEvent))
            report = await verify_chain(session)
    finally:
        await engine.dispose()
    written = sum(1 + n % 3 for n in range(REQUESTS))
    assert sum(appends) == written
    assert len(appends) < REQUESTS  # the requests that waited together shared an append
    assert stored == written
    assert report.ok


async def test_a_failed_append_fails_every_waiting_request() -> None:
    unreachable = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:9/none", connect_args={"timeout": 2}
    )
    batcher = AuditBatcher()
    try:
        results = await asyncio.gather(
            *(
                batcher.append(ReadBinds(unreachable, unreachable, True), events(n, 1))
                for n in range(5)
            ),
            return_exceptions=True,
        )
    finally:
        await unreachable.dispose()
    assert all(isinstance(result, AuditUnavailable) for result in results), results
