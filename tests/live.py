"""The app, live: served by a real uvicorn process of this checkout on a free loopback port,
on the database it is given (SQLite or PostgreSQL), committing for real.

`await start(database_url, folder, **settings)` starts one and returns its `Live` handle: its
`url`, a `client` bound to it, the `settings` it runs with, a `sessionmaker` onto its
database, and its process (log, pid, workers, exit code). `async with await start(...) as
live:` stops it when the block ends (SIGTERM, as a container runtime sends it) and checks
that it shut down cleanly. Several processes on one database are several `start` calls.

`in_process=True` runs the same app in the test's own process instead (its lifespan, an
ASGI transport), for the tests that must reach inside it: a monkeypatch, a frozen clock.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
# The app served the way uvicorn's documentation starts one, with uvicorn's own defaults.
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
# uvicorn re-raises SIGTERM once it has shut down: a single process ends "killed by
# SIGTERM", a supervisor of workers with 0; both are clean.
CLEAN_EXITS = (0, -signal.SIGTERM)

# The tests log in from loopback, often, and the counts are kept in the database: limits
# that no suite reaches (a test sets its own to test one).
DEFAULTS: dict[str, Any] = {
    "rate_limit_login": "1000000/1m",
    "rate_limit_refresh": "1000000/1m",
    "rate_limit_register": "1000000/1m",
    "rate_limit_mfa": "1000000/1m",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """The process environment of a server or command: this one's, less every variable the
    app reads as a setting, plus the test's settings."""
    names = {name.upper() for name in Settings.model_fields}
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in names
        and key != "PROMETHEUS_MULTIPROC_DIR"
        and not key.startswith("UVICORN_")  # uvicorn's command line reads these
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(
        DATABASE_URL=settings.database_url,
        SECRET_KEY=str(settings.secret_key),
        ENVIRONMENT=settings.environment,
    )
    for name, value in overrides.items():
        if isinstance(value, bool):
            env[name.upper()] = "true" if value else "false"
        elif isinstance(value, list | dict):
            env[name.upper()] = json.dumps(value)
        else:
            env[name.upper()] = str(value)
    return env


class Live:
    """A started app: a server process, or the app in this process (`process` is None)."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        engine: AsyncEngine | None = None,
        process: subprocess.Popen[bytes] | None = None,
        log_path: Path | None = None,
        lifespan: contextlib.AsyncExitStack | None = None,
    ) -> None:
        self.url, self.client, self.settings = url, client, settings
        self.sessionmaker = sessionmaker
        self.process, self.log_path = process, log_path
        self.exit_code: int | None = None
        self._engine, self._lifespan = engine, lifespan
        self._stopped = False

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    async def scalar(self, query: Any) -> Any:
        async with self.sessionmaker() as session:
            return await session.scalar(query)

    # --- the process --------------------------------------------------------------------

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, "the app runs in this process"
        return self.process

    @property
    def pid(self) -> int:
        return self._running().pid

    def log(self) -> str:
        assert self.log_path is not None, "the app runs in this process"
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The processes serving requests: uvicorn's workers, or the process itself."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except OSError:
            pids = []
        workers = [pid for pid in pids if b"resource_tracker" not in _cmdline(pid)]
        return workers or [self.pid]

    def poll(self) -> int | None:
        """The exit status, None while the process runs."""
        return self._running().poll()

    def terminate(self) -> None:
        process = self._running()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (after `terminate`); kill it if it overstays `timeout`."""
        process = self._running()
        try:
            self.exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        return self.exit_code

    async def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (or end the lifespan), then close the client and the engine."""
        if self._stopped:
            return self.exit_code
        self._stopped = True
        try:
            await self.client.aclose()
            if self._lifespan is not None:
                await self._lifespan.aclose()
            if self.process is not None:
                self.terminate()
                await asyncio.to_thread(self.wait, timeout)
        finally:
            if self._engine is not None:
                await self._engine.dispose()
        return self.exit_code

    def assert_stopped_cleanly(self) -> None:
        if self.process is None:
            return
        log = self.log()
        assert self.exit_code in CLEAN_EXITS, f"exit status {self.exit_code}\n{log}"
        assert "Application shutdown complete" in log, log

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
        if kind is None:
            self.assert_stopped_cleanly()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def start(
    database_url: str,
    folder: Path | None = None,
    *,
    in_process: bool = False,
    command: Sequence[str] = SERVE,
    graceful_timeout: int | None = None,
    ready: str = "/readyz",
    **overrides: Any,
) -> Live:
    """Serve the app on `database_url`, its log in `folder`, once `ready` answers 200.

    `overrides` are settings by name, as Python values or as the environment spells them
    (`db_pool_size=1`, `web_concurrency=2` for two uvicorn workers, `rate_limit_refresh="6/1h"`).
    `command` is `SERVE` (`hospital-api serve`) or `UVICORN`; `graceful_timeout` is
    `serve --graceful-timeout`. `ready="/healthz"` for a server whose database is down.
    """
    overrides = {**DEFAULTS, **overrides}
    settings = make_settings(database_url, **overrides)
    if in_process:
        return await _in_process(settings)
    assert folder is not None, "a server process needs a folder for its log"
    port = free_port()
    arguments = [*command, "--port", str(port)]
    if graceful_timeout is not None:
        arguments += ["--graceful-timeout", str(graceful_timeout)]
    log_path = folder / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            arguments,
            cwd=ROOT,
            env=environment(settings, overrides),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals reach the server alone, never pytest
        )
    url = f"http://127.0.0.1:{port}"
    engine = create_engine(settings)
    live = Live(
        url,
        httpx.AsyncClient(base_url=url, timeout=60),
        settings,
        create_sessionmaker(engine),
        engine=engine,
        process=process,
        log_path=log_path,
    )
    try:
        await asyncio.to_thread(wait_until_ready, url, process, path=ready, log=log_path)
    except BaseException:
        await live.stop()
        raise
    return live


async def _in_process(settings: Settings) -> Live:
    app: FastAPI = create_app(settings)
    lifespan = contextlib.AsyncExitStack()
    await lifespan.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://test")
    return Live("http://test", client, settings, app.state.sessionmaker, lifespan=lifespan)


def wait_until_ready(
    url: str,
    process: subprocess.Popen[Any],
    *,
    path: str = "/readyz",
    log: Path | None = None,
    timeout: float = 60,
) -> None:
    """Poll `path` until it answers 200; fail if the process exits first or time runs out."""

    def output() -> str:
        return log.read_text(errors="replace") if log is not None else ""

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}\n{output()}")
            with contextlib.suppress(httpx.TransportError):
                if http.get(path).status_code == 200:
                    return
            time.sleep(0.1)
    raise AssertionError(f"{path} did not answer 200 within {timeout} s\n{output()}")


def migrate(database_url: str) -> None:
    """`hospital-api migrate` against the given database, as an operator would run it."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env=environment(make_settings(database_url), {}),
        check=True,
        capture_output=True,
    )


async def race(*requests: Awaitable[httpx.Response]) -> list[httpx.Response]:
    """Start every request before any may finish."""
    gate = asyncio.Event()

    async def run(request: Awaitable[httpx.Response]) -> httpx.Response:
        await gate.wait()
        return await request

    tasks = [asyncio.create_task(run(request)) for request in requests]
    await asyncio.sleep(0)
    gate.set()
    return list(await asyncio.gather(*tasks))
