"""Who the client is: the peer itself, unless the peer is a proxy named in FORWARDED_ALLOW_IPS.

The address is the one in the audit event and in the access log line. In-process through
the app, and on live servers started both ways an operator starts one: `hospital-api serve`
and `uvicorn app.main:app` (whose own default believes any loopback peer).
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.logging import configure_logging
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import create_patient
from tests.live import SERVE, UVICORN, start

FORGED = "203.0.113.66"  # what a client claims to be
BAD_LOGIN = {"username": "nobody-at-all", "password": "not the password"}


async def failed_login(http: httpx.AsyncClient, request_id: str, forwarded_for: str) -> None:
    """An audited request (a failed login) with a known request id."""
    response = await http.post(
        "/auth/login/",
        json=BAD_LOGIN,
        headers={"X-Forwarded-For": forwarded_for, "X-Request-ID": request_id},
    )
    assert response.status_code == 401, response.text


async def event_ip(session: AsyncSession, request_id: str) -> str | None:
    query = select(AuditEvent.ip).where(AuditEvent.request_id == request_id)
    [ip] = (await session.scalars(query)).all()
    return ip


def access_ip(log: str, request_id: str) -> str | None:
    """The `ip` of the request's access log line (JSON lines)."""
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    [entry] = [e for e in entries if e["logger"] == "app.access" and e["request_id"] == request_id]
    ip: str | None = entry["ip"]
    return ip


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[None]:
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    yield
    configure_logging(settings)


@pytest.fixture
def app_behind(
    engine: Any, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> Callable[..., httpx.AsyncClient]:
    """A client of the app configured with `forwarded_allow_ips`, connecting from `peer`."""

    def make(forwarded_allow_ips: str, peer: str) -> httpx.AsyncClient:
        settings = make_settings(
            database_url, forwarded_allow_ips=forwarded_allow_ips, log_format="json"
        )
        app = create_app(settings)
        app.state.engine, app.state.sessionmaker = engine, sessionmaker
        transport = httpx.ASGITransport(app=app, client=(peer, 50123))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    return make


@pytest.mark.parametrize(
    ("allowed", "peer", "forwarded_for", "client"),
    [
        ("", "127.0.0.1", FORGED, "127.0.0.1"),  # the default: no proxy, not even loopback
        ("", "10.0.0.7", FORGED, "10.0.0.7"),
        ("10.0.0.7", "192.0.2.10", FORGED, "192.0.2.10"),  # a peer that is not the proxy
        ("10.0.0.7", "10.0.0.7", FORGED, FORGED),
        ("10.0.0.0/8", "10.0.0.7", f"{FORGED}, 10.1.1.1", FORGED),  # two proxies of the net
        ("10.0.0.0/8", "10.0.0.7", f"{FORGED}, 198.51.100.1", "198.51.100.1"),  # the nearest
        ("10.0.0.7, 2001:db8::/32", "2001:db8::5", FORGED, FORGED),
        ("*", "192.0.2.10", f"{FORGED}, 10.1.1.1", FORGED),  # every peer: the first address
    ],
)
async def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy(
    app_behind: Callable[..., httpx.AsyncClient],
    db: AsyncSession,
    json_logs: None,
    capsys: pytest.CaptureFixture[str],
    allowed: str,
    peer: str,
    forwarded_for: str,
    client: str,
) -> None:
    capsys.readouterr()
    async with app_behind(allowed, peer) as http:
        await failed_login(http, "forwarded-1", forwarded_for)
    assert await event_ip(db, "forwarded-1") == client
    assert access_ip(capsys.readouterr().out, "forwarded-1") == client


def test_the_setting_takes_uvicorns_format_and_refuses_what_is_no_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).trusted_proxies() == []  # type: ignore[call-arg]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", " 10.0.0.0/8, 192.168.1.5 ,::1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.trusted_proxies() == ["10.0.0.0/8", "192.168.1.5", "::1"]
    for typo in ("10.0.0.0/33", "ingress", "10.0.0.1;10.0.0.2"):
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", typo)
        with pytest.raises(ValidationError, match="forwarded_allow_ips"):
            Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def live_database(fresh_database_url: Callable[[], Any]) -> str:
    url: str = await fresh_database_url()
    engine = create_engine(make_settings(url))
    async with create_sessionmaker(engine)() as session:
        await create_patient(session)  # a database in use
    await engine.dispose()
    return url


@pytest.mark.parametrize("command", [SERVE, UVICORN], ids=["hospital-api serve", "uvicorn"])
@pytest.mark.parametrize(
    ("allowed", "client"), [(None, "127.0.0.1"), ("127.0.0.1", FORGED)], ids=["default", "proxy"]
)
async def test_a_live_server_believes_only_the_configured_proxies(
    live_database: str, tmp_path: Path, command: list[str], allowed: str | None, client: str
) -> None:
    """The test connects from loopback, which uvicorn's own default would believe."""
    env = {} if allowed is None else {"forwarded_allow_ips": allowed}
    async with await start(
        live_database, tmp_path, command=command, log_format="json", **env
    ) as live:
        await failed_login(live.client, "live-forwarded", FORGED)
    engine = create_engine(make_settings(live_database))
    try:
        async with create_sessionmaker(engine)() as session:
            assert await event_ip(session, "live-forwarded") == client
    finally:
        await engine.dispose()
    assert access_ip(live.log(), "live-forwarded") == client
