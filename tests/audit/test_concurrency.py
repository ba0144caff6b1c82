"""Many transactions appending at once, committed for real, still form one valid chain."""

import asyncio
import random
from typing import Any

import httpx
from sqlalchemy import func, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.verify import verify_chain
from app.core.context import RequestMeta
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import Conflict, NotFound
from app.main import create_app
from app.transaction import REFUSALS, write_session
from tests.conftest import make_settings
from tests.factories import create_patient, tokens_for

WRITERS = 50


async def test_concurrent_writers_form_one_valid_chain(fresh_database_url: Any) -> None:
    settings = make_settings(await fresh_database_url(), db_pool_size=24, db_max_overflow=0)
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    app = create_app(settings)
    app.state.engine, app.state.sessionmaker = engine, maker
    try:
        async with maker() as session:
            patient = await create_patient(session)
            tokens = await tokens_for(session, settings, patient)
        async with maker() as session:
            baseline = await session.scalar(select(func.count()).select_from(AuditEvent))

        async def writer(index: int) -> int:
            """Events of one transaction: 1 or 3; a refusal keeps them; a failure does not."""
            events = 1 if index % 2 else 3
            failure = [None, None, None, NotFound, Conflict][index % 5]
            try:
                async with write_session(maker) as session:
                    for n in range(events):
                        audit.record(
                            session,
                            meta=RequestMeta("192.0.2.1", f"w{index}-{n}"),
                            actor_id=index + 1,
                            action="record.read",
                            resource_type="record",
                            resource_id=n + 1,
                            patient_id=patient.id,
                        )
                    await asyncio.sleep(random.random() / 100)
                    if failure is not None:
                        raise failure()
            except (NotFound, Conflict) as error:
                return events if isinstance(error, REFUSALS) else 0
            return events

        async def forbidden_request(http: httpx.AsyncClient, index: int) -> int:
            response = await http.get(
                "/api/audit/", headers={**tokens.headers, "X-Request-ID": f"http-{index}"}
            )
            assert response.status_code == 403
            return 1

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            written = await asyncio.gather(
                *(writer(i) for i in range(WRITERS)),
                *(forbidden_request(http, i) for i in range(20)),
            )

        async with maker() as session:
            count = await session.scalar(select(func.count()).select_from(AuditEvent))
            report = await verify_chain(session)
        expected = sum(written)
        assert expected > WRITERS  # batched transactions, refusals kept, failures dropped
        assert count == (baseline or 0) + expected
        assert (report.ok, report.events) == (True, count)
    finally:
        await engine.dispose()


async def test_verify_while_others_append_says_ok(fresh_database_url: Any) -> None:
    """Events committed during a verification are neither required nor mistaken for tampering."""
    settings = make_settings(await fresh_database_url(), db_pool_size=12, db_max_overflow=0)
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    try:

        async def append(index: int) -> None:
            for n in range(5):
                async with write_session(maker) as session:
                    audit.record(
                        session,
                        meta=RequestMeta(None, f"a{index}-{n}"),
                        actor_id=index + 1,
                        action="record.read",
                        resource_type="record",
                    )
                await asyncio.sleep(0)

        async def verify() -> tuple[bool, int]:
            async with maker() as session:
                report = await verify_chain(session)
            return report.ok, report.events

        await append(-1)  # a chain to walk from the start
        results = await asyncio.gather(
            *(append(i) for i in range(8)), *(verify() for _ in range(3))
        )
        reports = [result for result in results if result is not None]
        assert all(ok for ok, _events in reports), reports
        assert (await verify()) == (True, 45)
    finally:
        await engine.dispose()
