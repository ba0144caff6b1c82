"""A verification that stops at a tampered event answers, and leaves its connection clean.

The trail is changed by hand through a connection of its own, as an operator with direct
database access would, on a database that commits for real; the app serves with a pool of
one connection, so every request after the verification runs on the connection it used.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.db import create_engine, create_sessionmaker
from tests.audit.helpers import event_ids, tamper, write_events
from tests.conftest import make_settings
from tests.factories import DEFAULT_PASSWORD, create_admin, tokens_for
from tests.live import start

INSERTED = (
    "INSERT INTO audit_events (at, actor_id, action, resource_type, outcome, hash) "
    "VALUES (CURRENT_TIMESTAMP, 1, 'record.read', 'record', 'allowed', :hash)"
)
# How the trail is changed (the third event altered or deleted, one added by hand), and
# which event verification must name: the altered one, the one after the gap, the added one.
TAMPERING = {
    "altered": "UPDATE audit_events SET actor_id = 999 WHERE id = :id",
    "deleted": "DELETE FROM audit_events WHERE id = :id",
    "inserted": INSERTED,
}


async def ordinary_requests(http: httpx.AsyncClient, headers: dict[str, str]) -> list[int]:
    """Ten requests of every kind: reads, a write, a refused one, a verification."""
    calls = [
        ("GET", "/auth/me", None),
        ("GET", "/api/department/", None),
        ("POST", "/api/department/", {"name": "After the check"}),
        ("GET", "/api/audit/", None),
        ("GET", "/api/department/999999", None),
    ] * 2
    statuses = []
    for method, path, body in calls:
        response = await http.request(method, path, json=body, headers=headers)
        statuses.append(response.status_code)
    return statuses


@pytest.mark.parametrize("how", list(TAMPERING))
async def test_verify_names_the_tampered_event_and_the_next_requests_are_served(
    fresh_database_url: Callable[[], Any], tmp_path: Path, how: str
) -> None:
    url = await fresh_database_url()
    async with await start(url, tmp_path, db_pool_size=1, db_pool_timeout=3) as live:
        async with live.sessionmaker() as session:
            admin = await create_admin(session)
            headers = (await tokens_for(session, live.settings, admin)).headers
            await write_events(session, 5)
            before = await event_ids(session)
        await tamper(url, TAMPERING[how], id=before[2], hash="f" * 64)
        async with live.sessionmaker() as session:
            after = await event_ids(session)
        named_id = {"altered": before[2], "deleted": before[3], "inserted": after[-1]}[how]

        response = await live.client.get("/api/audit/verify", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": False, "first_bad_event_id": named_id}

        statuses = await ordinary_requests(live.client, headers)
        assert statuses == [200, 200, 201, 200, 404, 200, 200, 409, 200, 404]
        again = await live.client.get("/api/audit/verify", headers=headers)
        assert again.json() == {"ok": False, "first_bad_event_id": named_id}


@pytest.mark.postgres_only  # the walk's own read-only transaction is PostgreSQL's
async def test_on_a_live_server_with_a_pool_of_one_connection(
    fresh_database_url: Callable[[], Any], tmp_path: Path
) -> None:
    url = await fresh_database_url()
    engine = create_engine(make_settings(url))
    try:
        async with create_sessionmaker(engine)() as session:
            admin = await create_admin(session)
            await write_events(session, 5)
            ids = await event_ids(session)
    finally:
        await engine.dispose()
    await tamper(url, TAMPERING["altered"], id=ids[2])

    async with await start(url, tmp_path, db_pool_size=1, db_pool_timeout=3) as live:
        login = await live.client.post(
            "/auth/login/", json={"username": admin.username, "password": DEFAULT_PASSWORD}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = await live.client.get("/api/audit/verify", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": False, "first_bad_event_id": ids[2]}
        statuses = await ordinary_requests(live.client, headers)
        assert statuses == [200, 200, 201, 200, 404, 200, 200, 409, 200, 404]
