"""The server behind PgBouncer in transaction mode (DB_PGBOUNCER=true): several workers, many
concurrent requests, two server connections; no prepared statement is lost or collides.
(Without DB_PGBOUNCER the same requests fail: asyncpg's cached statements are looked up on
server connections that never prepared them.)"""

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.factories import seed
from tests.live import free_port, start

pytestmark = [
    pytest.mark.slow_ops,
    pytest.mark.postgres_only,  # PgBouncer pools PostgreSQL connections
]


@pytest.fixture
def pgbouncer() -> Iterator[int]:
    """PgBouncer on a free loopback port, transaction pooling, at most 2 server connections."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert os.path.exists(binary), "pgbouncer is not installed (make ops-test installs it)"
    server = make_url(os.environ["TEST_DATABASE_URL"])
    user = server.username or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        for path in folder.iterdir():
            os.chown(path, account.pw_uid, account.pw_gid)
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


async def test_server_through_pgbouncer_transaction_mode(
    fresh_database_url: Callable[[], Any], pgbouncer: int, tmp_path: Path
) -> None:
    direct = await fresh_database_url()  # migrated directly, as the migration Job does
    seeded = await seed(direct)
    pooled = make_url(direct).set(host="127.0.0.1", port=pgbouncer)
    url = pooled.render_as_string(hide_password=False)

    async with await start(url, tmp_path, db_pgbouncer=True, web_concurrency=2) as live:
        http = live.client
        credentials = {"username": seeded.doctor_username, "password": seeded.password}

        async def login() -> str:
            response = await http.post("/auth/login/", json=credentials)
            assert response.status_code == 200, response.text
            token: str = response.json()["access_token"]
            return token

        tokens = await asyncio.gather(*(login() for _ in range(4)))

        async def read(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            departments = await http.get("/api/department/", headers=headers)
            assert departments.status_code == 200, departments.text
            assert [item["name"] for item in departments.json()] == [seeded.department]
            records = await http.get("/api/patient_records/", headers=headers)
            assert records.status_code == 200, records.text

        await asyncio.gather(*(read(tokens[n % len(tokens)]) for n in range(40)))
        assert (await http.get("/readyz")).status_code == 200
