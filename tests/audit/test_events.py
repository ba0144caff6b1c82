"""GET /api/audit/: admins only, filters, keyset pages; refusals leave events that survive."""

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.config import Settings
from app.core.context import RequestMeta
from app.transaction import commit, rollback
from tests.factories import create_admin, create_doctor, create_patient, create_user, tokens_for

FIELDS = {
    "id",
    "at",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
    "request_id",
    "emergency_grant_id",
}


async def admin_headers(db: AsyncSession, settings: Settings) -> dict[str, str]:
    return (await tokens_for(db, settings, await create_admin(db))).headers


async def record(db: AsyncSession, **fields: Any) -> None:
    fields.setdefault("resource_type", "record")
    audit.record(db, meta=RequestMeta(ip="198.51.100.1", request_id="r-1"), **fields)
    await commit(db)


async def list_all(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        items.extend(response.json())
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    return items


async def test_admin_lists_events_in_id_order_with_every_field(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    headers = await admin_headers(db, settings)
    await record(db, actor_id=7, action="record.read", resource_id=3, patient_id=5)
    await record(
        db,
        actor_id=8,
        action="record.read",
        resource_id=4,
        outcome=audit.Outcome.DENIED,
        emergency_grant_id=2,
    )
    response = await client.get("/api/audit/", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    items = response.json()
    assert [item["id"] for item in items] == sorted(item["id"] for item in items)
    first, second = items[-2:]
    assert set(first) == FIELDS
    assert first["actor_id"] == 7
    assert first["action"] == "record.read"
    assert (first["resource_type"], first["resource_id"]) == ("record", 3)
    assert (first["outcome"], first["emergency_grant_id"]) == ("allowed", None)
    assert (first["ip"], first["request_id"]) == ("198.51.100.1", "r-1")
    assert first["at"].endswith(("Z", "+00:00"))
    assert (second["outcome"], second["emergency_grant_id"]) == ("denied", 2)


@pytest.mark.parametrize("role", ["doctor", "patient"])
async def test_other_roles_get_403_and_their_attempt_is_recorded(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, role: str
) -> None:
    user = await create_user(db, role)
    tokens = await tokens_for(db, settings, user)
    response = await client.get(
        "/api/audit/", headers={**tokens.headers, "X-Request-ID": f"probe-{role}"}
    )
    assert response.status_code == 403
    # The refusal's transaction was committed although the request failed.
    event = (await db.scalars(select(AuditEvent).where(AuditEvent.actor_id == user.id))).one()
    assert (event.action, event.resource_type, event.outcome) == (
        "access.forbidden",
        "endpoint",
        "denied",
    )
    assert event.request_id == f"probe-{role}" == response.headers["X-Request-ID"]


async def test_without_a_token_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/audit/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_request_id_of_a_request_is_the_one_in_its_event(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    headers = await admin_headers(db, settings)
    sent = await client.get("/api/audit/", headers={**headers, "X-Request-ID": "trace-42.a"})
    generated = await client.get("/api/audit/", headers=headers)
    listed = await client.get("/api/audit/?action=audit.list", headers=headers)
    by_request = {item["request_id"]: item for item in listed.json()}
    assert sent.headers["X-Request-ID"] == "trace-42.a"
    assert by_request["trace-42.a"]["action"] == "audit.list"
    assert generated.headers["X-Request-ID"] in by_request
    assert by_request["trace-42.a"]["ip"] == "127.0.0.1"


async def test_filters(client: httpx.AsyncClient, db: AsyncSession, settings: Settings) -> None:
    headers = await admin_headers(db, settings)
    await record(db, actor_id=9000000011, action="record.read", resource_id=1)
    await record(db, actor_id=9000000011, action="record.update", resource_id=2)
    await record(db, actor_id=9000000012, action="record.read", resource_id=2)
    await record(
        db, actor_id=9000000012, action="patient.read", resource_type="patient", resource_id=2
    )

    async def matches(query: str) -> list[tuple[int | None, str, int | None]]:
        response = await client.get(f"/api/audit/?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [(e["actor_id"], e["action"], e["resource_id"]) for e in response.json()]

    assert await matches("actor_id=9000000011") == [
        (9000000011, "record.read", 1),
        (9000000011, "record.update", 2),
    ]
    assert await matches("action=record.read") == [
        (9000000011, "record.read", 1),
        (9000000012, "record.read", 2),
    ]
    assert await matches("resource_type=record&resource_id=2") == [
        (9000000011, "record.update", 2),
        (9000000012, "record.read", 2),
    ]
    assert await matches("actor_id=9000000012&action=patient.read&resource_type=patient") == [
        (9000000012, "patient.read", 2)
    ]
    assert await matches("actor_id=9000000013") == []


async def test_time_window(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    headers = await admin_headers(db, settings)
    start = frozen_clock.now()
    for minute in range(4):
        await record(db, actor_id=9000000021, action="record.read", resource_id=minute)
        frozen_clock.advance(minutes=1)

    async def resource_ids(**window: Any) -> list[int]:
        query = "&".join(f"{k}={quote(v.isoformat())}" for k, v in window.items())
        response = await client.get(f"/api/audit/?actor_id=9000000021&{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [e["resource_id"] for e in response.json()]

    assert await resource_ids(since=start + timedelta(minutes=1)) == [1, 2, 3]
    assert await resource_ids(until=start + timedelta(minutes=2)) == [0, 1]
    assert await resource_ids(
        since=start + timedelta(minutes=1), until=start + timedelta(minutes=3)
    ) == [1, 2]
    # Any offset designates the same instant.
    shifted = (start + timedelta(minutes=3)).astimezone(
        __import__("datetime").timezone(timedelta(hours=-5))
    )
    assert await resource_ids(since=shifted) == [3]


@pytest.mark.parametrize(
    "query",
    [
        "actor_id=abc",
        "actor_id=0",
        f"actor_id={2**63}",
        "resource_id=-1",
        "since=yesterday",
        "since=2026-11-27T10:00:00",  # no offset
        "until=2026-11-27",
        "until=0.5",  # not read as a Unix time
        "since=1764000000",
        "action=" + "a" * 65,
        "action=record%00read",
        "resource_type=" + "r" * 33,
        "limit=0",
        "limit=201",
        "cursor=not-a-cursor",
    ],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, query: str
) -> None:
    headers = await admin_headers(db, settings)
    response = await client.get(f"/api/audit/?{query}", headers=headers)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_keyset_pages_follow_the_link_header(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    headers = await admin_headers(db, settings)
    for index in range(7):
        await record(db, actor_id=9000000031, action="record.read", resource_id=index + 1)
    first = await client.get("/api/audit/?actor_id=9000000031&limit=3", headers=headers)
    assert len(first.json()) == 3
    assert first.headers["Link"].endswith('>; rel="next"')
    items = await list_all(client, "/api/audit/?actor_id=9000000031&limit=3", headers)
    assert [e["resource_id"] for e in items] == [1, 2, 3, 4, 5, 6, 7]
    last_page = await client.get("/api/audit/?actor_id=9000000031&limit=7", headers=headers)
    assert "Link" not in last_page.headers


async def test_events_never_hold_a_password_or_a_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    password = "Zebra-Quartz-Window-9931"
    new_password = "Orchid-Lantern-Basalt-4417"
    registered = await client.post(
        "/auth/register/",
        json={
            "username": "scan.target",
            "email": "scan.target@example.org",
            "password": password,
            "full_name": "Scan Target",
        },
    )
    assert registered.status_code == 201, registered.text
    wrong = await client.post(
        "/auth/login/", json={"username": "scan.target", "password": password + "x"}
    )
    assert wrong.status_code == 401
    login = await client.post(
        "/auth/login/", json={"username": "scan.target", "password": password}
    )
    assert login.status_code == 200, login.text
    pair = login.json()
    refreshed = await client.post("/auth/refresh/", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    reused = await client.post("/auth/refresh/", json={"refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401
    login = await client.post(
        "/auth/login/", json={"username": "scan.target", "password": password}
    )
    access = login.json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    changed = await client.post(
        "/auth/password/",
        json={"current_password": password, "new_password": new_password},
        headers=bearer,
    )
    assert changed.status_code == 204
    login = await client.post(
        "/auth/login/", json={"username": "scan.target", "password": new_password}
    )
    final = login.json()
    assert (
        await client.post(
            "/auth/logout/", headers={"Authorization": f"Bearer {final['access_token']}"}
        )
    ).status_code == 204

    stored = (await db.scalars(select(AuditEvent))).all()
    actions = {event.action for event in stored}
    assert {"auth.register", "auth.login", "auth.refresh", "auth.password_change"} <= actions
    secrets = [
        password,
        new_password,
        pair["access_token"],
        pair["refresh_token"],
        refreshed.json()["refresh_token"],
        access,
        final["access_token"],
        final["refresh_token"],
    ]
    for event in stored:
        content = repr([getattr(event, column.key) for column in AuditEvent.__table__.columns])
        for secret in secrets:
            assert secret not in content
            # Nor any recognisable part of a token (its signature).
            assert secret.rsplit(".", 1)[-1] not in content


async def test_no_event_for_a_transaction_that_rolled_back(db: AsyncSession) -> None:
    before = len((await db.scalars(select(AuditEvent.id))).all())
    audit.record(
        db, meta=RequestMeta(None, None), actor_id=1, action="record.read", resource_type="record"
    )
    await rollback(db)
    await commit(db)
    assert len((await db.scalars(select(AuditEvent.id))).all()) == before


async def test_doctor_and_patient_refusals_carry_their_ids(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    patient = await create_patient(db)
    for user in (doctor, patient):
        tokens = await tokens_for(db, settings, user)
        assert (await client.get("/api/audit/verify", headers=tokens.headers)).status_code == 403
    refusals = (
        await db.scalars(select(AuditEvent).where(AuditEvent.action == "access.forbidden"))
    ).all()
    assert {event.actor_id for event in refusals} == {doctor.id, patient.id}
