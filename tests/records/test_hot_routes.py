"""The hot routes (records.hot_routes) take only the requests of the shape they serve, and
answer those exactly as the documented routes do."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match

from app.core.config import Settings
from app.core.pagination import encode_cursor
from app.records.hot_routes import ROUTES, HotRead
from tests.conftest import is_postgres
from tests.factories import create_record
from tests.records.world import World, build_world

BEARER = [(b"authorization", b"Bearer some.token.here")]


def scope(app: Any, path: str, query: str = "", **overrides: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": BEARER,
        "app": app,
        **overrides,
    }


def matched(app: Any, request_scope: dict[str, Any]) -> list[str]:
    return [route.path for route in ROUTES if route.matches(request_scope)[0] is Match.FULL]


ONE = "/api/patient_records/{record_id}"
LIST = "/api/patient_records/"
VALID_CURSOR = encode_cursor(41)

SHAPES = [
    ("/api/patient_records/7", "", {}, [ONE]),
    ("/api/patient_records/7/", "", {}, [ONE]),
    ("/api/patient_records/9223372036854775807", "", {}, [ONE]),
    ("/api/patient_records/", "", {}, [LIST]),
    ("/api/patient_records", "", {}, [LIST]),
    ("/api/patient_records/", f"limit=200&cursor={VALID_CURSOR}&patient_id=3", {}, [LIST]),
    ("/api/patient_records/", "limit=%35", {}, [LIST]),  # "5", as Starlette decodes it
    # Everything else is the documented routes' to answer.
    ("/api/patient_records/9223372036854775808", "", {}, []),
    ("/api/patient_records/0", "", {}, []),
    ("/api/patient_records/007", "", {}, []),
    ("/api/patient_records/7", "x=1", {}, []),
    ("/api/patient_records/7/history", "", {}, []),
    ("/api/patient_records/", "limit=0", {}, []),
    ("/api/patient_records/", "limit=201", {}, []),
    ("/api/patient_records/", "limit=", {}, []),
    ("/api/patient_records/", "limit=5&limit=6", {}, []),
    ("/api/patient_records/", "patient_id=-1", {}, []),
    ("/api/patient_records/", "cursor=abc", {}, []),
    ("/api/patient_records/", "cursor=" + "A" * 65, {}, []),
    ("/api/patient_records/", "sort=id", {}, []),
    ("/api/patient_records/7", "", {"method": "POST"}, []),
    ("/api/patient_records/7", "", {"method": "HEAD"}, []),
    ("/api/patient_records/7", "", {"headers": []}, []),
    ("/api/patient_records/7", "", {"headers": [(b"authorization", b"Bearer ")]}, []),
    ("/api/patient_records/7", "", {"headers": [(b"authorization", b"Basic dTpw")]}, []),
]


@pytest.mark.parametrize(("path", "query", "overrides", "routes"), SHAPES)
def test_the_hot_routes_take_only_their_shape(
    app: Any, path: str, query: str, overrides: dict[str, Any], routes: list[str]
) -> None:
    # SQLite is served by the documented routes alone (the service path).
    assert matched(app, scope(app, path, query, **overrides)) == (routes if is_postgres() else [])


def documented_only(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = [route for route in app.router.routes if not isinstance(route, HotRead)]
    monkeypatch.setattr(app.router, "routes", routes)


KEPT_HEADERS = ("content-type", "cache-control", "etag", "link", "www-authenticate")


def answer(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    return response.status_code, response.json(), headers


@pytest.mark.postgres_only  # the hot routes serve PostgreSQL only
async def test_hot_and_documented_routes_answer_alike(
    app: Any,
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world: World = await build_world(db)
    doctor = world.users["doctor_own"]
    second = await create_record(
        db, patient=world.users["patient_owner"], doctor=doctor, department=world.department
    )
    await db.commit()
    record, patient = world.record, world.users["patient_owner"]
    requests = [
        (caller, path)
        for caller in ("admin", "doctor_own", "doctor_other", "patient_owner", "patient_other")
        for path in (
            f"/api/patient_records/{record.id}",
            f"/api/patient_records/{second.id + 1000}",
            "/api/patient_records/",
            "/api/patient_records/?limit=1",
            f"/api/patient_records/?limit=1&cursor={encode_cursor(record.id)}",
            f"/api/patient_records/?patient_id={patient.id}",
        )
    ]
    headers = {caller: await world.headers(db, settings, caller) for caller, _ in requests}
    garbage = {"Authorization": "Bearer not.a.token"}
    requests_with_headers = [(headers[caller], path) for caller, path in requests]
    requests_with_headers.append((garbage, f"/api/patient_records/{record.id}"))

    hot = [answer(await client.get(path, headers=h)) for h, path in requests_with_headers]
    documented_only(app, monkeypatch)
    documented = [answer(await client.get(path, headers=h)) for h, path in requests_with_headers]

    assert hot == documented
    assert {status for status, _, _ in hot} == {200, 401, 403, 404}
    own_record = hot[requests.index(("doctor_own", f"/api/patient_records/{record.id}"))]
    assert own_record[0] == 200
    assert own_record[2]["etag"] == '"1"'


@pytest.mark.postgres_only
async def test_a_hot_read_is_counted_under_its_documented_route(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await build_world(db)
    headers = await world.headers(db, settings, "doctor_own")

    response = await client.get(f"/api/patient_records/{world.record.id}", headers=headers)
    metrics = (await client.get("/metrics")).text

    assert response.status_code == 200
    assert 'route="/api/patient_records/{record_id}",status="200"' in metrics
