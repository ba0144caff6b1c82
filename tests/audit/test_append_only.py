"""The database itself refuses to change or remove audit events, or their patients' links."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.audit.helpers import event_ids, patient_links, write_events


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'allowed' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
    ],
)
async def test_update_and_delete_are_refused(db: AsyncSession, statement: str) -> None:
    await write_events(db, 2)
    ids = await event_ids(db)
    with pytest.raises(DBAPIError, match="audit_events is append-only"):
        await db.execute(text(statement), {"id": ids[0]})
    await db.rollback()
    assert await event_ids(db) == ids


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_patient_links SET patient_id = 4 WHERE patient_id = 3",
        "DELETE FROM audit_patient_links WHERE patient_id = 3",
    ],
)
async def test_links_to_patients_are_append_only_too(db: AsyncSession, statement: str) -> None:
    await write_events(db, 2, patients=[3, 5])
    links = await patient_links(db)
    assert len(links) == 4
    await db.commit()
    with pytest.raises(DBAPIError, match="audit_patient_links is append-only"):
        await db.execute(text(statement))
    await db.rollback()
    assert await patient_links(db) == links


@pytest.mark.postgres_only  # PostgreSQL trigger and SQLSTATE
@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("UPDATE audit_events SET hash = repeat('0', 64)", "audit_events"),
        ("DELETE FROM audit_events", "audit_events"),
        ("TRUNCATE audit_events", "audit_events"),
        ("UPDATE audit_patient_links SET first_event_id = 0", "audit_patient_links"),
        ("DELETE FROM audit_patient_links", "audit_patient_links"),
        ("TRUNCATE audit_patient_links", "audit_patient_links"),
    ],
)
async def test_postgres_refuses_with_insufficient_privilege(
    db: AsyncSession, statement: str, table: str
) -> None:
    await write_events(db, 2, patients=[3, 5])
    await patient_links(db)
    await db.commit()
    with pytest.raises(DBAPIError) as refused:
        await db.execute(text(statement))
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
    assert f"{table} is append-only" in str(refused.value)
    await db.rollback()
    assert len(await event_ids(db)) == 2
    assert len(await patient_links(db)) == 4
