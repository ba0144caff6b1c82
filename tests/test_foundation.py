"""The skeleton: health probes, docs, trailing slashes, settings, body limit, request ids."""

import subprocess
import sys

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from app.core.config import ConfigError, Settings
from app.core.db import driver_connection


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_when_database_does_not_answer(tmp_path: object) -> None:
    from app.main import create_app

    settings = Settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        environment="test",
        secret_key="x" * 40,
        db_pool_timeout=2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
async def test_paths_answer_with_and_without_trailing_slash(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200


async def test_swagger_and_schema_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = (await client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/login/"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_declared_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login/", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413


async def test_streamed_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * (512 * 1024)

    response = await client.post(
        "/auth/login/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_plain_postgres_urls_mean_asyncpg() -> None:
    for url in ("postgres://u:p@h/db", "postgresql://u:p@h/db"):
        assert Settings(database_url=url).database_url == "postgresql+asyncpg://u:p@h/db"


def test_production_refuses_a_missing_or_short_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=None).signing_key()
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings(environment="production", secret_key="short").signing_key()


def test_production_without_secret_key_exits_non_zero_naming_it(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        env={"ENVIRONMENT": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_development_key_is_generated_once_and_shared(tmp_path: object) -> None:
    from pathlib import Path

    database = Path(str(tmp_path)) / "h.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{database}")
    first = settings.signing_key()
    again = Settings(database_url=f"sqlite+aiosqlite:///{database}").signing_key()
    assert first == again
    assert len(first) >= 32
    assert (database.parent / ".hospital_secret_key").exists()


async def test_swagger_ui_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert "cdn.jsdelivr.net" not in page
    assert "/docs/assets/swagger/swagger-ui-bundle.js" in page
    for asset in ("swagger/swagger-ui-bundle.js", "swagger/swagger-ui.css", "fastapi/favicon.png"):
        response = await client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 1_000
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert (await client.get("/docs/")).status_code == 200


async def test_redoc_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")
    assert response.status_code == 200
    page = response.text
    assert "https://" not in page  # no CDN script, no web fonts
    assert '<redoc spec-url="/openapi.json">' in page
    assert "/docs/assets/redoc/redoc.standalone.js" in page
    script = await client.get("/docs/assets/redoc/redoc.standalone.js")
    assert script.status_code == 200
    assert len(script.content) > 500_000
    logo = await client.get("/redoc/logo-mini.svg")
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"
    assert (await client.get("/redoc/")).status_code == 200


class _ServerShuttingDown:
    """A bind whose new connection is refused as PostgreSQL refuses it while it shuts
    down: the driver's error (SQLSTATE 57P03) under the adapter's own exception."""

    async def get_raw_connection(self) -> None:
        try:
            raise asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
        except asyncpg.exceptions.CannotConnectNowError as cause:
            raise RuntimeError("InternalError") from cause


async def test_a_driver_connection_refused_by_the_server_is_unavailable() -> None:
    """Answered 503 like SQLAlchemy's own connection failures, never 500."""
    with pytest.raises(ConnectionError):
        async with driver_connection(_ServerShuttingDown()):  # type: ignore[arg-type]
            pass


STARTED_PROCESS = """
import asyncio, gc, sys
from app.core.config import Settings
from app.main import create_app

async def main() -> None:
    settings = Settings(database_url=sys.argv[1], environment="test", secret_key="x" * 40)
    app = create_app(settings)
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        print(before, gc.get_freeze_count())

asyncio.run(main())
"""


def test_a_started_process_keeps_its_start_up_objects_out_of_the_collector(
    tmp_path: object,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/started.db"
    run = subprocess.run(
        [sys.executable, "-c", STARTED_PROCESS, url], capture_output=True, text=True, check=True
    )
    before, frozen = map(int, run.stdout.split())
    assert before == 0
    assert frozen > 10_000  # the modules, routes and schemas loaded at start
