"""Writing events and tampering with them, for the audit tests."""

from collections.abc import Collection

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.links import link_pending
from app.audit.models import AuditPatientLink
from app.core.context import RequestMeta
from app.core.db import create_engine
from app.transaction import commit
from tests.conftest import make_settings

META = RequestMeta(ip="203.0.113.7", request_id="test-request")


async def write_events(
    session: AsyncSession,
    count: int,
    *,
    per_transaction: int = 1,
    action: str = "record.read",
    actor_id: int | None = None,
    patient_id: int | None = None,
    patients: Collection[int] = (),
) -> None:
    """`count` events, `per_transaction` per commit (1: PostgreSQL's one-statement append);
    `patients` names several patients in each, as a list page does."""
    for index in range(count):
        audit.record(
            session,
            meta=META,
            actor_id=actor_id,
            action=action,
            resource_type="record",
            resource_id=index + 1,
            patient_id=patient_id,
            patients=patients,
        )
        if (index + 1) % per_transaction == 0:
            await commit(session)
    await commit(session)


async def event_ids(session: AsyncSession) -> list[int]:
    return list((await session.scalars(text("SELECT id FROM audit_events ORDER BY id"))).all())


async def patient_links(session: AsyncSession) -> list[tuple[int, int]]:
    """Link the events pending (as the background linking would), then every (event,
    patient) pair that the links hold, in order."""
    await link_pending(session)
    links = await session.execute(select(AuditPatientLink.patient_id, AuditPatientLink.event_ids))
    return sorted((event, patient) for patient, events in links for event in orjson.loads(events))


async def lift_append_only_guard(session: AsyncSession) -> None:
    """Let this test's transaction (rolled back at its end) change events, as an intruder
    with direct database access would."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    else:  # SQLite DDL is transactional: the triggers come back with the rollback
        await session.execute(text("DROP TRIGGER audit_events_no_update"))
        await session.execute(text("DROP TRIGGER audit_events_no_delete"))


async def tamper(database_url: str, statement: str, **params: object) -> None:
    """Run one statement on the trail through a connection of its own, committed, as an
    operator with superuser rights would: the append-only triggers are bypassed for that
    transaction only (PostgreSQL: replica mode; SQLite: dropped and re-created in it)."""
    engine = create_engine(make_settings(database_url))  # SQLite: one BEGIN IMMEDIATE
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SET LOCAL session_replication_role = replica"))
                await connection.execute(text(statement), params)
                return
            triggers = (
                await connection.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master "
                        "WHERE type = 'trigger' AND tbl_name = 'audit_events'"
                    )
                )
            ).all()
            for name, _sql in triggers:
                await connection.execute(text(f'DROP TRIGGER "{name}"'))
            await connection.execute(text(statement), params)
            for _name, sql in triggers:
                await connection.execute(text(sql))
    finally:
        await engine.dispose()
