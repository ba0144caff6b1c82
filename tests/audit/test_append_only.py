"""The database itself refuses to change or remove audit events."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.audit.helpers import event_ids, write_events


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


@pytest.mark.postgres_only  # PostgreSQL trigger and SQLSTATE
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET hash = repeat('0', 64)",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_postgres_refuses_with_insufficient_privilege(
    db: AsyncSession, statement: str
) -> None:
    await write_events(db, 2)
    with pytest.raises(DBAPIError) as refused:
        await db.execute(text(statement))
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
    assert "audit_events is append-only" in str(refused.value)
    await db.rollback()
    assert len(await event_ids(db)) == 2
