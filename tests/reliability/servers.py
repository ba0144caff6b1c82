"""Real server processes and a throwaway PostgreSQL cluster, for the process-level suites.

`start_servers(n, database_url)` runs `hospital-api serve` n times on free loopback ports
(each a real uvicorn process of `app.main:app`) and stops them with SIGTERM, keeping their
exit codes and logs. `PostgresCluster` is a private PostgreSQL server (initdb + pg_ctl in a
temporary folder, on a free port) that a test may stop and start at will; the machine's
shared server is never touched.
"""

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "reliability-" + "s" * 40


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a server process: the given database, a fixed key, test settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_", "FIRST_ADMIN_", "WEB_CONCURRENCY"))
    }
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        ENVIRONMENT="test",
        PYTHONUNBUFFERED="1",
        # Every test here logs in from loopback, and the counts outlive a test: limits
        # that the load of these suites never reaches (tests may set their own).
        RATE_LIMIT_LOGIN="1000000/1m",
        RATE_LIMIT_REFRESH="1000000/1m",
        RATE_LIMIT_REGISTER="1000000/1m",
        RATE_LIMIT_MFA="1000000/1m",
    )
    env.update(overrides)
    return env


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
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

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (after `terminate`); kill it if it overstays `timeout`."""
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return self.exit_code

    def stop(self, timeout: float = 30) -> int:
        self.terminate()
        return self.wait(timeout)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def wait_until_healthy(server: ServerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {server.process.returncode}:\n{server.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not healthy after {timeout} s:\n{server.log()}")


async def start_server(
    database_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    graceful_timeout: int = 10,
    env: Mapping[str, str] | None = None,
) -> ServerProcess:
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--graceful-timeout",
        str(graceful_timeout),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(database_url, **dict(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(port, process, log_path)
    await wait_until_healthy(server)
    return server


@contextlib.asynccontextmanager
async def start_servers(
    count: int,
    database_url: str,
    log_dir: Path,
    **options: object,
) -> AsyncIterator[list[ServerProcess]]:
    """`count` server processes on one database; all stopped (SIGTERM) on the way out."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(await start_server(database_url, log_dir, **options))  # type: ignore[arg-type]
        yield servers
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(server.wait, 30)


def migrate(database_url: str) -> None:
    """`hospital-api migrate` against the given database, as an operator would run it."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env=server_env(database_url),
        check=True,
        capture_output=True,
    )


# --- a private PostgreSQL server ----------------------------------------------------------


def postgres_bin() -> Path:
    """The newest installed server binaries (Debian keeps them out of PATH)."""
    given = os.environ.get("PG_BIN")
    if given:
        return Path(given)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if not candidates:
        found = shutil.which("pg_ctl")
        if found:
            return Path(found).parent
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    return candidates[-1]


@dataclass
class PostgresCluster:
    """initdb + pg_ctl in a temporary folder; run as the `postgres` OS user when we are root
    (initdb refuses root). Only this cluster is ever stopped."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hms-pg-")))
    port: int = field(default_factory=free_port)
    running: bool = False

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(postgres_bin() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w",
            "start", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{self.server_log()}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session at once (what a database outage looks like to clients)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             str(self.port), "-U", "postgres", "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.stdout.strip()

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
