"""HTTP rules every route keeps: no caching of what names people, HEAD wherever GET is, and
405 with the path's methods. The routes are read from the app (its OpenAPI schema and its
plain routes), so a new route is covered without editing this file."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.routing import all_routes
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import DEFAULT_PASSWORD, create_admin, seed
from tests.live import start
from tests.records.world import World, build_world

SCHEMA: dict[str, Any] = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()
OPERATIONS = [
    (method.upper(), path) for path, methods in SCHEMA["paths"].items() for method in methods
]
PERSONAL = ("/auth/", "/api/", "/fhir/")  # API.md section 2: every answer there is no-store
CALLERS = ("anonymous", "admin", "doctor_own", "patient_owner")
# Headers of a request's own, which a HEAD and a GET need not share.
PER_REQUEST = {"x-request-id", "content-length", "date"}


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)


def fill(path: str, world: World) -> str:
    return path.format(
        record_id=world.record.id,
        patient_id=world.users["patient_owner"].id,
        doctor_id=world.users["doctor_own"].id,
        user_id=world.users["patient_owner"].id,
        department_id=world.department.id,
        resource_id=world.record.id,  # FHIR's ids
        version_id=1,
    )


def plain_get_paths() -> list[str]:
    """The app's GET routes outside the schema (documentation, metrics), without parameters."""
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    documented = {path for method, path in OPERATIONS if method == "GET"}
    paths = {
        route.path
        for route in all_routes(app)
        if "GET" in (route.methods or ())
        and "{" not in route.path
        and route.path.rstrip("/") not in {path.rstrip("/") for path in documented}
    }
    return sorted(paths)


# ---- Cache-Control: no-store ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [op for op in OPERATIONS if op[1].startswith(PERSONAL)],
    ids=[f"{m} {p}" for m, p in OPERATIONS if p.startswith(PERSONAL)],
)
async def test_every_answer_under_auth_and_api_is_no_store(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    method: str,
    path: str,
) -> None:
    """Whatever the answer (the data, 401, 403, 404, 422...), for every caller."""
    for caller in CALLERS:
        headers = await world.headers(db, settings, caller)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        response = await client.request(method, fill(path, world), json=body, headers=headers)
        assert response.status_code < 500, (caller, response.text)
        assert response.headers.get("Cache-Control") == "no-store", (caller, response.status_code)


async def test_answers_naming_a_person_are_no_store(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await create_admin(db)
    registered = await client.post(
        "/auth/register/",
        json={
            "username": "new_patient",
            "email": "new_patient@example.org",
            "password": "a long passphrase",
            "full_name": "New Patient",
        },
    )
    assert registered.status_code == 201
    login = await client.post(
        "/auth/login/", json={"username": admin.username, "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 200
    assert login.headers["Pragma"] == "no-cache"  # RFC 6749 section 5.1, for token responses
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await client.get("/auth/me", headers=headers)
    verify = await client.get("/api/audit/verify", headers=headers)
    assert (me.status_code, verify.status_code) == (200, 200)
    for response in (registered, login, me, verify):
        assert response.headers["Cache-Control"] == "no-store", response.request.url


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/no-such-thing", 404),
        ("GET", "/auth", 404),
        ("PUT", "/api/department/", 405),
        ("POST", "/auth/me", 405),
        ("GET", "/api/department/?limit=0", 401),
    ],
)
async def test_errors_under_auth_and_api_are_no_store_too(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_body_refused_as_too_large_is_no_store(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register/", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 413
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs", "/apiary", "/authors"])
async def test_answers_outside_auth_and_api_may_be_cached(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert "no-store" not in response.headers.get("Cache-Control", "")


# ---- HEAD -------------------------------------------------------------------------------

GET_OPERATIONS = [path for method, path in OPERATIONS if method == "GET"]


def same_headers(get: httpx.Response, head: httpx.Response) -> None:
    assert head.status_code == get.status_code
    assert head.content == b""
    shared = {key: value for key, value in get.headers.items() if key not in PER_REQUEST}
    assert {key: value for key, value in head.headers.items() if key not in PER_REQUEST} == shared
    assert ("content-length" in head.headers) == ("content-length" in get.headers)


@pytest.mark.parametrize("path", GET_OPERATIONS)
async def test_head_answers_as_get_without_the_body(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World, path: str
) -> None:
    """Every GET route of the schema, for every caller: the GET's status and headers
    (Content-Type, ETag, Link, Cache-Control, WWW-Authenticate...), no body."""
    url = fill(path, world) + ("?limit=1" if path.endswith("/") else "")
    for caller in CALLERS:
        headers = await world.headers(db, settings, caller)
        get = await client.get(url, headers=headers)
        head = await client.head(url, headers=headers)
        same_headers(get, head)


@pytest.mark.parametrize("path", plain_get_paths())
async def test_head_answers_on_the_plain_routes_too(client: httpx.AsyncClient, path: str) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_of_a_record_carries_its_etag_and_is_audited_as_a_read(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    from tests.records.world import events

    headers = await world.headers(db, settings, "doctor_own")
    head = await client.head(f"/api/patient_records/{world.record.id}", headers=headers)
    assert (head.status_code, head.headers["ETag"], head.content) == (200, '"1"', b"")
    assert int(head.headers["Content-Length"]) > 0  # the length the GET's body has
    [event] = await events(db, "record.read")
    assert (event.resource_id, event.outcome) == (world.record.id, "allowed")


HEAD_SERIES = 'http_requests_total{method="HEAD",route="/healthz",status="200"}'


async def healthz_heads(client: httpx.AsyncClient) -> float:
    lines = (await client.get("/metrics")).text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(HEAD_SERIES))


async def test_healthz_answers_head_counted_as_a_head(client: httpx.AsyncClient) -> None:
    before = await healthz_heads(client)
    response = await client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == str(len(b'{"status":"ok"}'))
    assert await healthz_heads(client) == before + 1  # by its method, under its route


async def test_head_on_a_live_server(fresh_database_url: Any, tmp_path: Path) -> None:
    """What `curl -I` and a HEAD health check send, to uvicorn serving the app."""
    url = await fresh_database_url()
    seeded = await seed(url)
    async with await start(url, tmp_path) as live:
        http = live.client
        credentials = {"username": seeded.doctor_username, "password": seeded.password}
        login = await http.post("/auth/login/", json=credentials)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        [record] = (await http.get("/api/patient_records/", headers=headers)).json()
        paths = ["/healthz", "/readyz", "/docs", "/openapi.json", "/auth/me"]
        paths += [
            "/api/department/",
            "/api/patient_records/",
            f"/api/patient_records/{record['id']}",
        ]
        for path in [*paths, "/metrics"]:
            get = await http.get(path, headers=headers)
            head = await http.head(path, headers=headers)
            assert head.status_code == get.status_code == 200, path
            assert head.content == b"", path
            assert head.headers.get("ETag") == get.headers.get("ETag"), path
            if path in paths:  # the metrics change with every request
                assert head.headers["Content-Length"] == get.headers["Content-Length"], path


# ---- 405 and Allow ----------------------------------------------------------------------


def methods_by_path() -> dict[str, set[str]]:
    served: dict[str, set[str]] = {}
    for method, path in OPERATIONS:
        served.setdefault(path, set()).add(method)
    return served


@pytest.mark.parametrize(("path", "served"), sorted(methods_by_path().items()))
async def test_a_method_the_path_does_not_serve_is_405_with_allow(
    client: httpx.AsyncClient, world: World, path: str, served: set[str]
) -> None:
    allowed = served | ({"HEAD"} if "GET" in served else set())
    expected = ", ".join(sorted(allowed))
    for method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} - allowed:
        response = await client.request(method, fill(path, world))
        assert response.status_code == 405, (method, response.text)
        assert response.headers["Allow"] == expected, method
        if method == "HEAD":
            assert response.content == b""
