"""One log line per request: JSON in production, text in development; no PHI, no tokens."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.logging import configure_logging
from app.main import create_app
from tests.factories import create_department, create_doctor, tokens_for


@pytest.fixture
def json_logs(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The fixture app logs text; switch to JSON lines for one test (onto capsys's stdout)."""
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    yield
    configure_logging(settings)


def server_lines(out: str) -> list[dict[str, Any]]:
    """What the server logged (the test's own HTTP client logs the full URL it asked for)."""
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry["logger"] != "httpx"]


def access_lines(out: str) -> list[dict[str, Any]]:
    return [entry for entry in server_lines(out) if entry["logger"] == "app.access"]


async def test_json_line_per_request_with_route_template_and_request_id(
    client: httpx.AsyncClient, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = await client.get(
        "/api/department/424242?access_token=leaked-token-value&q=Jane+Doe",
        headers={"X-Request-ID": "req-log-1", "Authorization": "Bearer not-a-real-token"},
    )
    assert response.status_code == 401
    out = capsys.readouterr().out
    [entry] = access_lines(out)
    assert entry["level"] == "info"
    assert entry["time"].endswith("+00:00")
    assert entry["request_id"] == "req-log-1"
    assert entry["method"] == "GET"
    assert entry["route"] == "/api/department/{department_id}"
    assert entry["status"] == 401
    assert isinstance(entry["duration_ms"], float)
    assert entry["user_id"] is None
    logged = json.dumps(server_lines(out))
    for secret in ("424242", "leaked-token-value", "Jane", "not-a-real-token"):
        assert secret not in logged


async def test_authenticated_request_logs_the_user_id(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    json_logs: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doctor = await create_doctor(db, await create_department(db))
    tokens = await tokens_for(db, settings, doctor)
    capsys.readouterr()
    await client.get("/api/department/", headers=tokens.headers)
    out = capsys.readouterr().out
    [entry] = access_lines(out)
    assert entry["user_id"] == doctor.id
    assert tokens.access not in json.dumps(server_lines(out))


async def test_text_format_for_development(
    client: httpx.AsyncClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings.model_copy(update={"log_format": "text"}))
    capsys.readouterr()
    await client.get("/healthz")
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "app.access" in line]
    assert "GET /healthz 200" in line
    assert not line.startswith("{")


async def test_server_errors_log_at_error_level(
    settings: Settings, engine: Any, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"log_format": "json"}))
    app.state.engine = engine

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    capsys.readouterr()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/explode")).status_code == 500
    [entry] = access_lines(capsys.readouterr().out)
    assert entry["level"] == "error"
    assert entry["status"] == 500


async def test_without_the_access_log_only_server_errors_are_logged(
    settings: Settings, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings.model_copy(update={"access_log": False, "log_format": "json"}))

    async def boom(_request: Any) -> Any:
        raise RuntimeError("a bug")

    app.add_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        capsys.readouterr()
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/boom")).status_code == 500
    [entry] = access_lines(capsys.readouterr().out)
    assert (entry["level"], entry["status"], entry["route"]) == ("error", 500, "/boom")
