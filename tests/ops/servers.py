"""Helpers for tests that start the real `hospital-api` command and talk to it over loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the server did not become ready within {timeout} s")


def stop(process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """SIGTERM, as a container runtime or Kubernetes sends it: a graceful shutdown.

    uvicorn re-raises the signal once it has shut down, so a single-process server ends
    "killed by SIGTERM" (exit status 143 in a shell) and a supervisor of workers with 0;
    both are clean when the application's shutdown completed.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the server did not stop within the grace period") from None
    output = log.read_text()
    assert code in (0, -signal.SIGTERM), f"exit status {code}\n{output}"
    assert "Application shutdown complete" in output, output


def start_server(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals reach the server alone, never pytest
        )


SECRET_KEY = "live-server-" + "k" * 40


@dataclass(frozen=True)
class Seeded:
    department: str
    doctor_username: str
    password: str
    diagnosis: str


async def seed(database_url: str) -> Seeded:
    """A department, a doctor with a known password, a patient and one record, committed."""
    from app.core.config import Settings
    from app.core.db import create_engine, create_sessionmaker
    from tests.factories import (
        DEFAULT_PASSWORD,
        create_department,
        create_doctor,
        create_patient,
        create_record,
    )

    settings = Settings(database_url=database_url, environment="test", secret_key=SECRET_KEY)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            department = await create_department(session, name="Cardiology ward")
            doctor = await create_doctor(session, department)
            patient = await create_patient(session)
            diagnosis = "Atrial fibrillation, rate controlled"
            await create_record(
                session, patient=patient, doctor=doctor, department=department, diagnosis=diagnosis
            )
            return Seeded(department.name, doctor.username, DEFAULT_PASSWORD, diagnosis)
    finally:
        await engine.dispose()


SERVE = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
# The app served the way uvicorn's documentation starts one, with uvicorn's own defaults.
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]


@contextmanager
def live_server(
    database_url: str, folder: Path, command: list[str] = SERVE, **settings: str
) -> Iterator[str]:
    """`hospital-api serve` (or `command`) of this checkout on a free loopback port; yields
    its base URL; its log is `folder / "server.log"`.

    `settings` are more environment variables (`WEB_CONCURRENCY="2"`).
    """
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(folder),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    server = start_server([*command, "--port", str(port)], env, ROOT, folder / "server.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, server)
        yield base_url
    finally:
        stop(server, folder / "server.log")
