"""Running wrk and reading its report."""

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    seconds: int


HEAVY = Load(threads=2, connections=32, seconds=6)
QUICK = Load(threads=2, connections=32, seconds=2)  # `--quick`: the harness itself checked
SINGLE = Load(threads=1, connections=1, seconds=5)
# wrk's own default (2 s) counts a slow answer as a socket error and drops its latency;
# 32 concurrent logins (argon2, tens of ms of CPU each, on 2 cores) legitimately take
# longer. Answers slower than this still count as errors; p99 shows the real latency.
TIMEOUT = "10s"


@dataclass
class Result:
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    socket_detail: dict[str, int]

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"errors": self.errors}


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing the Debian package")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required (apt-get install wrk)")
    return found


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> Result:
    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+(\S+)", output, re.M)
        return _ms(match.group(1)) if match else float("nan")

    requests = re.search(r"(\d+) requests in", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency_max = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if not requests or not rps:
        raise ValueError("unreadable wrk output:\n" + output)
    detail = dict(
        zip(
            ("connect", "read", "write", "timeout"),
            (int(g) for g in sockets.groups()) if sockets else (0, 0, 0, 0),
            strict=True,
        )
    )
    return Result(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_ms=percentile("50"),
        p90_ms=percentile("90"),
        p99_ms=percentile("99"),
        max_ms=_ms(latency_max.group(1)) if latency_max else float("nan"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(detail.values()),
        socket_detail=detail,
    )


COUNTER = "{n}"  # in a body: a value no other request of the run sends


def _lua(
    method: str, body: str | None, content_type: str | None, path: str, ids: tuple[int, ...]
) -> str:
    """wrk's script: the method and body, a new value in the body at each request (COUNTER)
    and, given `ids`, a path that ends in a different one of them at each request, in turn
    (`path` is the URL's path up to that id)."""

    def quote(value: str) -> str:
        return "[==[" + value + "]==]"

    lines = [f"wrk.method = {quote(method)}"]
    if content_type:
        lines.append(f'wrk.headers["Content-Type"] = {quote(content_type)}')
    counted = body is not None and COUNTER in body
    if not counted and not ids:
        if body is not None:
            lines.append(f"wrk.body = {quote(body)}")
        return "\n".join(lines) + "\n"
    head, tail = body.split(COUNTER, 1) if counted and body is not None else (body or "", "")
    # Each thread has its own Lua state: its number keeps the threads' values apart.
    lines += [
        "local threads = 0",
        "function setup(thread) threads = threads + 1; thread:set('tid', threads) end",
        "local n = 0",
        "local ids = {" + ", ".join(map(str, ids)) + "}",
        "function request()",
        "  n = n + 1",
        "  local path = nil",
        f"  if #ids > 0 then path = {quote(path)} .. ids[(n * 2 + tid) % #ids + 1] end",
        f"  local body = {quote(head)}"
        + (" .. tid .. '-' .. n .. " + quote(tail) if counted else ""),
        f"  return wrk.format(nil, path, nil, {'body' if body is not None else 'nil'})",
        "end",
    ]
    return "\n".join(lines) + "\n"


def command(
    url: str,
    load: Load,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    content_type: str | None = None,
    script_dir: Path | None = None,
    ids: tuple[int, ...] = (),
) -> list[str]:
    args = [
        ensure_wrk(),
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{load.seconds}s",
        f"--timeout={TIMEOUT}",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if method != "GET" or body is not None or ids:
        folder = script_dir or Path(tempfile.mkdtemp(prefix="bench-wrk-"))
        script = folder / f"{method.lower()}-{abs(hash((url, body, ids))) % 10**8}.lua"
        prefix = urlsplit(url).path.rpartition("/")[0] + "/"
        script.write_text(_lua(method, body, content_type, prefix, ids))
        args += ["-s", str(script)]
    return [*args, url]


def run(args: list[str]) -> tuple[Result, str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout), done.stdout


def start(args: list[str]) -> subprocess.Popen[str]:
    """wrk in the background (the login storm beside a latency probe)."""
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[Result, str]:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err or out}")
    return parse(out), out
