"""Flat with size, measured side by side: the API on the small and on the large seed at once.

Two runs minutes apart on a shared machine differ by more than 15% for reasons that have
nothing to do with the data (the ceiling itself moves that much), so the verdict comes
from this phase: both APIs are served together (a smaller pool each, the same for both),
and every endpoint is loaded on one then the other, several times, the order swapped
each round (small-large, large-small, ...). Each run is compared with its neighbour on
the other seed, and the median of those ratios is the verdict: a machine that speeds up
or slows down over the phase moves both runs of a pair alike.
"""

import secrets
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import servers, wrk
from bench.seed import database_url, server_url

if TYPE_CHECKING:
    from bench.run import Fixture

ROUNDS = 3
LOADS = (wrk.Load(2, 32, 4),)
POOL = {"DB_POOL_SIZE": "8", "DB_MAX_OVERFLOW": "0"}  # two APIs share the server's connections
LIMIT = 0.15


def interleaved(
    fixtures: dict[str, "Fixture"], server: str, app_dir: Path, work: Path
) -> dict[str, Any]:
    from bench.run import _login
    from bench.targets import targets

    work.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    apis: dict[str, servers.Server] = {}
    try:
        for size in fixtures:
            url = server_url(database_url(server, f"hms_bench_{size}"))
            env = {
                "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
                "SECRET_KEY": secret,
                **servers.API_ENV,
                **POOL,
            }
            apis[size] = servers.start(
                f"api-{size}", "app.main:app", env, app_dir, work, servers.python()
            )
        for api in apis.values():
            servers.wait_ready(api)
        tokens = {
            (size, caller): _login(api.base, username)
            for size, api in apis.items()
            for caller, username in (
                ("doctor", fixtures[size].doctor_username),
                ("admin", fixtures[size].admin_username),
            )
        }
        plans = {size: [t for t in targets(f) if t.flat] for size, f in fixtures.items()}
        names = [t.name for t in plans["small"]]
        samples: dict[tuple[str, int, str], list[wrk.Result]] = {}
        print("\n[flat] small and large seeds served side by side, runs alternated", flush=True)
        for index, name in enumerate(names):
            for load in LOADS:
                for round_ in range(ROUNDS):
                    order = ["small", "large"] if round_ % 2 == 0 else ["large", "small"]
                    for size in order:
                        api = apis[size]
                        target = plans[size][index]
                        headers = {"Authorization": f"Bearer {tokens[size, target.caller]}"}
                        args = wrk.command(
                            api.base + target.path,
                            load,
                            headers=headers,
                            method=target.method,
                            body=target.body,
                            content_type=target.content_type,
                            script_dir=work,
                        )
                        result, _ = wrk.run(args)
                        samples.setdefault((name, load.connections, size), []).append(result)
    finally:
        for api in apis.values():
            api.stop()

    rows: list[dict[str, Any]] = []
    for name in names:
        for load in LOADS:
            small = samples[(name, load.connections, "small")]
            large = samples[(name, load.connections, "large")]
            rps = {k: statistics.median(r.rps for r in v) for k, v in (("s", small), ("l", large))}
            p50 = {
                k: statistics.median(r.p50_ms for r in v) for k, v in (("s", small), ("l", large))
            }
            pairs = zip(small, large, strict=True)
            ratios = [on_large.rps / on_small.rps for on_small, on_large in pairs if on_small.rps]
            change = statistics.median(ratios) - 1 if ratios else float("nan")
            rows.append(
                {
                    "endpoint": name,
                    "connections": load.connections,
                    "small_rps": round(rps["s"], 1),
                    "large_rps": round(rps["l"], 1),
                    "small_p50_ms": round(p50["s"], 2),
                    "large_p50_ms": round(p50["l"], 2),
                    "rps_change": round(change, 3),
                    "errors": sum(r.errors for r in small + large),
                    "small_runs_rps": [r.rps for r in small],
                    "large_runs_rps": [r.rps for r in large],
                    "flat": abs(change) <= LIMIT,
                }
            )
    print(
        f"== flat with size: large vs small side by side, {ROUNDS} rounds; change: median of "
        "the paired runs' ratios"
    )
    for r in rows:
        print(
            f"{r['endpoint']:<38} c{r['connections']:<3} req/s {r['small_rps']:>8.1f} -> "
            f"{r['large_rps']:>8.1f} ({100 * r['rps_change']:+6.1f}%)  p50 {r['small_p50_ms']} "
            f"-> {r['large_p50_ms']} ms  {'ok' if r['flat'] else 'NOT FLAT'}"
        )
    return {"rounds": ROUNDS, "pool": POOL, "rows": rows}
