"""Starting the servers under test, finding their workers, sampling their memory."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

UVICORN_FLAGS = ["--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
# The API's own settings under test: production, and (as uvicorn's above) no access log line
# per request: the app's line replaces uvicorn's. No per-address rate limit: every request
# comes from loopback, and the login storm measures logins, not refusals.
API_ENV = {"ENVIRONMENT": "production", "ACCESS_LOG": "false", "RATE_LIMIT_ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor, not helpers)."""
        pids = []
        for pid in _children(self.process.pid):
            cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
            if "resource_tracker" not in cmdline:
                pids.append(pid)
        return sorted(pids)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, asgi_app: str, env: dict[str, str], cwd: Path, log_dir: Path, python: str
) -> Server:
    port = free_port()
    log = log_dir / f"{name}.log"
    args = [python, "-m", "uvicorn", asgi_app, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*args, *UVICORN_FLAGS],
            cwd=cwd,
            env={**os.environ, **env, "PYTHONPATH": str(cwd)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, by its id
        )
    return Server(name, port, process, log)


def wait_ready(server: Server, path: str = "/healthz", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        try:
            with urllib.request.urlopen(server.base + path, timeout=2) as answer:
                if answer.status == 200 and len(server.workers()) >= 2:
                    time.sleep(1)  # let the second worker finish its start-up too
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{server.name} not ready after {timeout}s:\n{server.tail()}")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in _read(str(task / "children")).split()]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by these processes (their threads included)."""
    return sum(cpu_by_process(pids).values())


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    """Each live process's CPU time so far (exited ones are left out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        fields = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()
        if len(fields) > 12:
            found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def database_pids() -> list[int]:
    """The local PostgreSQL server's processes (none when it runs elsewhere): their CPU is
    the database's share of a request's cost, which the workers' CPU does not show."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        name = _read(str(stat)).partition("(")[2].partition(")")[0]
        if name == "postgres":
            pids.append(int(stat.parent.name))
    return pids


def rss_mb(pid: int) -> float | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class MemorySampler:
    """RSS of each worker every `interval` seconds, in a thread, while the load runs."""

    pids: list[int]
    interval: float = 0.5
    samples: list[tuple[float, int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "MemorySampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for pid in self.pids:
                rss = rss_mb(pid)
                if rss is not None:
                    self.samples.append((now, pid, rss))
            self._stop.wait(self.interval)

    def windows(self, seconds: float = 10) -> dict[str, dict[str, float]]:
        """Per worker: peak RSS in the first and in the last `seconds` of the sampling."""
        if not self.samples:
            return {}
        start, end = self.samples[0][0], self.samples[-1][0]
        report = {}
        for pid in self.pids:
            mine = [(t, r) for t, p, r in self.samples if p == pid]
            first = [r for t, r in mine if t <= start + seconds]
            last = [r for t, r in mine if t >= end - seconds]
            if first and last:
                report[str(pid)] = {
                    "first_window_mb": round(max(first), 1),
                    "last_window_mb": round(max(last), 1),
                    "peak_mb": round(max(r for _, r in mine), 1),
                    "growth_mb": round(max(last) - max(first), 1),
                }
        return report


def python() -> str:
    return sys.executable
