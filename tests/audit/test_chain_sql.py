"""The server's rendering of an event's content digest (audit.chain_sql) is the very one
the chain's Python code computes, byte for byte, whatever the values."""

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import CONTENT_FIELDS, content_digest
from app.audit.chain_sql import content_digest_sql

pytestmark = pytest.mark.postgres_only  # SQL of PostgreSQL

BASE: dict[str, Any] = {
    "at": datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC),
    "actor_id": 7,
    "action": "record.read",
    "resource_type": "record",
    "resource_id": 311,
    "outcome": "allowed",
    "ip": "127.0.0.1",
    "request_id": "4f2c9a",
    "emergency_grant_id": None,
    "patient_id": 12,
    "department_id": 1,
}
CASES = {
    "a plain read": {},
    "every optional field empty": {
        "actor_id": None, "resource_id": None, "ip": None, "request_id": None,
        "patient_id": None, "department_id": None,
    },
    "a whole second": {"at": datetime(2026, 1, 1, tzinfo=UTC)},
    "the largest ids": {"actor_id": 2**63 - 1, "emergency_grant_id": 2**63 - 1},
    "quotes, backslashes and control characters": {"request_id": 'a"b\\c\n\t\x01\x1f\x7f'},
    "letters beyond ASCII": {"ip": "fe80::1%eth0", "request_id": "ü→😀\u2028"},
}  # fmt: skip
_COLUMNS = ", ".join(CONTENT_FIELDS)
_TYPES = {"at": "timestamptz", "action": "text", "resource_type": "text", "outcome": "text",
          "ip": "text", "request_id": "text"}  # fmt: skip


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
async def test_the_server_digests_an_event_as_python_does(
    db: AsyncSession, changes: dict[str, Any]
) -> None:
    event = {**BASE, **changes}
    values = ", ".join(
        f"CAST(:{field} AS {_TYPES.get(field, 'bigint')})" for field in CONTENT_FIELDS
    )
    statement = text(
        f"WITH e ({_COLUMNS}) AS (VALUES ({values})) SELECT {content_digest_sql('e')} FROM e"
    )
    assert await db.scalar(statement, event) == content_digest(**event)
