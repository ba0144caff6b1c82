"""A throwaway PostgreSQL cluster, for the process-level suites: a private PostgreSQL server
(initdb + pg_ctl in a temporary folder, on a free port) that a test may stop and start at
will; the machine's shared server is never touched.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port


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
