"""The hash chain: intact after appends of every shape, and any change made in SQL named."""

import hashlib
from dataclasses import asdict, replace
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import CONTENT_FIELDS, content_digest, link
from app.audit.models import AuditEvent
from app.audit.repository import NewEvent
from app.audit.verify import verify_chain
from app.core.config import Settings
from tests.audit.helpers import event_ids, lift_append_only_guard, write_events
from tests.factories import create_admin, create_user, tokens_for


async def events(db: AsyncSession) -> list[AuditEvent]:
    return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def test_empty_chain_is_intact(db: AsyncSession) -> None:
    report = await verify_chain(db)
    assert (report.ok, report.events) == (True, 0)


async def test_single_and_batched_appends_form_one_chain(db: AsyncSession) -> None:
    await write_events(db, 5, per_transaction=1)
    await write_events(db, 6, per_transaction=3)
    await write_events(db, 2, per_transaction=1)
    report = await verify_chain(db)
    assert (report.ok, report.events) == (True, 13)
    head = (await db.execute(text("SELECT last_event_id, last_hash FROM audit_chain_head"))).one()
    last = (await events(db))[-1]
    assert (head.last_event_id, head.last_hash) == (last.id, last.hash)


async def test_verify_endpoint_reports_ok_with_the_count(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    await write_events(db, 4)
    response = await client.get("/api/audit/verify", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "events": 4}
    # The verification is itself recorded, as part of the chain.
    again = await client.get("/api/audit/verify/", headers=admin.headers)
    assert again.json() == {"ok": True, "events": 5}
    assert (await events(db))[-1].action == "audit.verify"


@pytest.mark.parametrize("role", ["patient", "doctor"])
async def test_verify_is_for_admins_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, role: str
) -> None:
    user = await tokens_for(db, settings, await create_user(db, role))
    assert (await client.get("/api/audit/verify", headers=user.headers)).status_code == 403
    assert (await client.get("/api/audit/verify")).status_code == 401


async def test_altered_event_is_named(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    await write_events(db, 5)
    ids = await event_ids(db)
    await lift_append_only_guard(db)
    await db.execute(
        text("UPDATE audit_events SET outcome = 'allowed', actor_id = 999 WHERE id = :id"),
        {"id": ids[2]},
    )
    await db.commit()
    response = await client.get("/api/audit/verify", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"ok": False, "first_bad_event_id": ids[2]}


def test_an_event_naming_no_patients_keeps_the_digest_it_had_before_patient_ids() -> None:
    """patient_ids came after events were chained: null, it leaves the canonical form, so
    the digests of those events (computed as below) and the chain they form still hold."""
    event = NewEvent(
        at=datetime(2026, 11, 27, 9, 30, 15, 120000, tzinfo=UTC),
        actor_id=7,
        action="record.read",
        resource_type="record",
        resource_id=3,
        outcome="allowed",
        ip="203.0.113.7",
        request_id="r-1",
        emergency_grant_id=None,
        patient_id=5,
        department_id=2,
    )
    old_form = ["2026-11-27T09:30:15.120000Z", 7, "record.read", "record", 3, "allowed",
                "203.0.113.7", "r-1", None, 5, 2]  # fmt: skip
    before = hashlib.sha256(orjson.dumps(old_form)).hexdigest()
    assert event.patient_ids is None
    assert event.digest() == content_digest(**asdict(event)) == before
    assert replace(event, patient_id=None, patient_ids="[5,6]").digest() != before


@pytest.mark.parametrize("altered", ["'[3,5]'", "'[3, 4]'", "NULL"])
async def test_altered_patient_ids_are_named(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, altered: str
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    await write_events(db, 3, patients=[4, 3])
    ids = await event_ids(db)
    assert (await verify_chain(db)).ok
    await lift_append_only_guard(db)
    await db.execute(
        text(f"UPDATE audit_events SET patient_ids = {altered} WHERE id = :id"), {"id": ids[1]}
    )
    await db.commit()
    response = await client.get("/api/audit/verify", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"ok": False, "first_bad_event_id": ids[1]}


async def test_altered_event_with_a_recomputed_hash_breaks_the_next_link(
    db: AsyncSession,
) -> None:
    await write_events(db, 5)
    first, target, following = (await events(db))[:3]
    content = {name: getattr(target, name) for name in CONTENT_FIELDS}
    content["action"] = "record.list"
    forged = link(first.hash, content_digest(**content))
    await lift_append_only_guard(db)
    await db.execute(
        text("UPDATE audit_events SET action = 'record.list', hash = :hash WHERE id = :id"),
        {"hash": forged, "id": target.id},
    )
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, following.id)


@pytest.mark.parametrize("position", [0, 2])
async def test_deleted_event_names_the_one_after_the_gap(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, position: int
) -> None:
    admin = await tokens_for(db, settings, await create_admin(db))
    await write_events(db, 5)
    ids = await event_ids(db)
    await lift_append_only_guard(db)
    await db.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[position]})
    await db.commit()
    response = await client.get("/api/audit/verify", headers=admin.headers)
    assert response.json() == {"ok": False, "first_bad_event_id": ids[position + 1]}


async def test_deleted_tail_names_the_last_event_the_head_records(db: AsyncSession) -> None:
    await write_events(db, 5)
    ids = await event_ids(db)
    await lift_append_only_guard(db)
    await db.execute(text("DELETE FROM audit_events WHERE id >= :id"), {"id": ids[3]})
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, ids[4])


async def test_every_event_deleted_is_detected(db: AsyncSession) -> None:
    await write_events(db, 3)
    ids = await event_ids(db)
    await lift_append_only_guard(db)
    await db.execute(text("DELETE FROM audit_events"))
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, ids[-1])


INSERT_WITH_ID = text(
    "INSERT INTO audit_events (id, at, actor_id, action, resource_type, outcome, hash) "
    "VALUES (:id, :at, 1, 'record.read', 'record', 'allowed', :hash)"
)
INSERT = text(
    "INSERT INTO audit_events (at, actor_id, action, resource_type, outcome, hash) "
    "VALUES (:at, 1, 'record.read', 'record', 'allowed', :hash) RETURNING id"
)


async def test_event_inserted_by_hand_is_named(db: AsyncSession) -> None:
    await write_events(db, 3)
    last = (await events(db))[-1]
    # An INSERT needs no guard to be lifted: appending is allowed, appending unchained is not.
    inserted = await db.scalar(INSERT, {"at": last.at, "hash": "f" * 64})
    await write_events(db, 2)  # later, legitimate events chain on the head, not on it
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, inserted)


async def test_event_inserted_between_two_events_is_named(db: AsyncSession) -> None:
    await write_events(db, 2)
    first, second = await events(db)
    await lift_append_only_guard(db)
    # Make room between them (ids need not be contiguous: rolled-back appends leave gaps).
    await db.execute(
        text("UPDATE audit_events SET id = :new WHERE id = :old"),
        {"new": second.id + 10, "old": second.id},
    )
    await db.execute(INSERT_WITH_ID, {"id": second.id, "at": first.at, "hash": "e" * 64})
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, second.id)


async def test_correctly_linked_event_appended_behind_the_heads_back_is_named(
    db: AsyncSession,
) -> None:
    await write_events(db, 3)
    last = (await events(db))[-1]
    content = {name: getattr(last, name) for name in CONTENT_FIELDS}
    forged = link(last.hash, content_digest(**{**content, "action": "patient.read"}))
    await db.execute(
        insert(AuditEvent).values(**{**content, "action": "patient.read", "hash": forged})
    )
    inserted = (await events(db))[-1]
    assert link(last.hash, inserted_digest(inserted)) == inserted.hash  # a perfect forgery
    report = await verify_chain(db)
    assert (report.ok, report.first_bad_event_id) == (False, inserted.id)


def inserted_digest(event: AuditEvent) -> str:
    return content_digest(**{name: getattr(event, name) for name in CONTENT_FIELDS})


async def test_stream_walks_every_event_in_order_across_batches(db: AsyncSession) -> None:
    from app.audit.repository import stream_chain

    await write_events(db, 5, per_transaction=2)
    walked = [row[0] async for row in stream_chain(db, batch=2)]
    assert walked == await event_ids(db)
