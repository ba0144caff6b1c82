"""Where a worker's CPU goes under load: py-spy samples, summed by layer and by function.

py-spy (`pip install py-spy`) records one worker's stacks while wrk loads the endpoint;
each sample is charged to the innermost frame that belongs to a known layer (so time
inside asyncpg called from SQLAlchemy counts as driver time, and SQLAlchemy's own Python
as ORM/Core time).
"""

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Checked in order against each frame's file (py-spy names it relative to its sys.path
# entry, e.g. "sqlalchemy/orm/session.py"); the first match names the layer.
LAYERS = [
    ("asyncpg (driver)", ("asyncpg/",)),
    ("SQLAlchemy ORM", ("sqlalchemy/orm/",)),
    ("SQLAlchemy Core/engine", ("sqlalchemy/",)),
    ("Pydantic", ("pydantic/", "pydantic_core/")),
    ("JSON", ("orjson", "json/", "fastapi/encoders.py")),
    ("JWT (jose)", ("jose/", "ecdsa/", "rsa/", "hmac.py", "hashlib")),
    ("argon2 / passlib", ("argon2/", "passlib/", "libpass/")),
    ("audit (app)", ("app/audit/",)),
    ("app code", ("app/",)),
    ("FastAPI", ("fastapi/",)),
    ("Starlette", ("starlette/",)),
    ("uvicorn / httptools", ("uvicorn/", "httptools/")),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("logging / metrics", ("logging/", "prometheus_client/")),
]


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    tool = py_spy()
    if tool is None:
        return None
    return subprocess.Popen(
        [tool, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
         "--format", "raw", "--threads", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


# Threads that only wait (py-spy does not always see a lock wait as idle).
_WAITING = ("Queue.get (queue.py", "Condition.wait (threading.py", "always_pong")


def _frames(stack: str) -> list[str]:
    """The stack without its leading "thread (id): name" entry."""
    frames = [f for f in stack.split(";") if f]
    return frames[1:] if frames and frames[0].startswith("thread (") else frames


def _waiting(stack: str) -> bool:
    return any(w in stack for w in _WAITING)


def _file(frame: str) -> str:
    return frame.rpartition("(")[2]


def _layer(frame: str) -> str | None:
    file = _file(frame)
    for name, prefixes in LAYERS:
        if any(file.startswith(p) or f"/{p}" in file for p in prefixes):
            return name
    return None


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Self time by layer, and inclusive time of the app's own functions."""
    layers: Counter[str] = Counter()
    app_inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if _waiting(stack):
            continue
        frames = _frames(stack)
        total += count
        layer = next((lay for f in reversed(frames) if (lay := _layer(f))), "other")
        layers[layer] += count
        leaves[frames[-1] if frames else "?"] += count
        for f in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            if _file(f).startswith("app/"):
                app_inclusive[f] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "by_layer_pct": dict(share(layers, len(layers))) if total else {},
        "app_functions_inclusive_pct": share(app_inclusive, top) if total else [],
        "hottest_frames_pct": share(leaves, top) if total else [],
    }


def print_summary(title: str, summary: dict[str, Any]) -> None:
    print(f"\nProfile of {title}: {summary['samples']} samples (CPU of one worker)")
    for name, pct in summary["by_layer_pct"].items():
        print(f"  {pct:5.1f}%  {name}")
    print("  app functions (inclusive):")
    for name, pct in summary["app_functions_inclusive_pct"][:15]:
        print(f"  {pct:5.1f}%  {name}")
