"""The benchmark: seed, serve the API and the ceiling side by side, load them with wrk, report.

    python -m bench.run --size small|large|both [--reuse] [--profile]

For each size: seed PostgreSQL (bench/seed.py) unless `--reuse` finds the seed in place,
start the API (`uvicorn app.main:app`, 2 workers, uvloop, httptools, no access log,
ENVIRONMENT=production) and the ceiling (bench/ceiling.py) the same way on free loopback
ports, log in once as a doctor of the measured record's department, then run wrk
(`-t2 -c32 -d10s --latency` and `-t1 -c1 -d5s --latency`) on every endpoint, the ceiling's
before and after the API's so that their ratio is measured side by side. Then the login
storm (single-connection `GET /auth/me` while 32 connections log in), and the workers'
memory. Prints a table and writes bench/results/<timestamp>-<size>.json and
bench/results/latest-<size>.json.
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench import flat, profile, servers, wrk
from bench.seed import (
    DEFAULT_SERVER,
    PASSWORD,
    RARE_SURNAME,
    SIZES,
    SeedReport,
    database_url,
    migrate,
    seed,
    server_url,
)
from bench.targets import CEILINGS, Target, targets

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# The record read and the list are measured PAIRED_ROUNDS times each, every run between
# two of their ceiling's; their ratio is the median of the rounds'.
PAIRED = {
    "GET /api/patient_records/{id}": CEILINGS["b"],
    "GET /api/patient_records/?limit=50": CEILINGS["d"],
}
PAIRED_ROUNDS = 5
ROUND_LABELS = ("", *(f"round {n}" for n in range(2, PAIRED_ROUNDS + 1)))  # not the storm's
TARGETS = {"flat": 0.15, "storm": 3.0, "rss_mb": 150.0}
# The API's pool, stated to it rather than left to its defaults, so that the report says
# what was measured.
API_POOL = {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0"}
MEMORY_GROWTH_TOLERANCE = 0.05  # the last window's peak may exceed the first's by 5%
HISTORY_VERSIONS = 20  # the versions the measured record's history shows
PATCHED_RECORDS = 1_000


@dataclass(frozen=True)
class Fixture:
    record_id: int
    department_id: int
    doctor_id: int
    doctor_username: str
    query: str
    query_matches: int
    records: int
    users: int
    patient_id: int = 0  # the measured record's patient
    # Records of the department other than the measured one: PATCH changes each in turn
    # (32 connections changing one record would measure the turns they take at its lock).
    patch_ids: tuple[int, ...] = field(default=(), repr=False)
    admin_username: str = "admin"
    password: str = PASSWORD

    @property
    def history_id(self) -> int:
        return self.record_id


async def _fixture(url: str) -> Fixture:
    conn = await asyncpg.connect(server_url(url))
    try:
        records = await conn.fetchval("SELECT count(*) FROM patient_records")
        users = await conn.fetchval("SELECT count(*) FROM users")
        record = await conn.fetchrow(
            "SELECT id, department_id, patient_id FROM patient_records WHERE id >= $1 "
            "ORDER BY id LIMIT 1",
            max(records // 2, 1),
        )
        patch_ids = await conn.fetch(
            "SELECT id FROM patient_records WHERE department_id = $1 AND id > $2 "
            "ORDER BY id LIMIT $3",
            record["department_id"],
            record["id"],
            PATCHED_RECORDS,
        )
        doctor = await conn.fetchrow(
            """SELECT u.id, u.username FROM users u JOIN doctor_profiles d ON d.user_id = u.id
               WHERE d.department_id = $1 AND u.is_active ORDER BY u.id LIMIT 1""",
            record["department_id"],
        )
        query = RARE_SURNAME.lower()
        matches = await conn.fetchval(
            "SELECT count(*) FROM users WHERE role = 'patient' AND "
            "(full_name ILIKE $1 OR username ILIKE $1)",
            f"%{query}%",
        )
    finally:
        await conn.close()
    return Fixture(
        record["id"], record["department_id"], doctor["id"], doctor["username"], query,
        matches, records, users, record["patient_id"], tuple(r["id"] for r in patch_ids),
    )  # fmt: skip


async def _seed_in_place(server: str, size: str) -> bool:
    name = f"hms_bench_{size}"
    conn = await asyncpg.connect(server_url(server))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
    finally:
        await conn.close()
    try:
        fixture = await _fixture(database_url(server, name))
    except asyncpg.PostgresError:
        return False
    return fixture.records == SIZES[size].records


def _request(
    url: str, *, token: str | None = None, body: str | None = None, method: str | None = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = body.replace(wrk.COUNTER, "check").encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _hash_timing(app_dir: Path) -> dict[str, Any]:
    """argon2's parameters and the time of one hash, as the served tree configures them."""
    script = (
        "import json, statistics, time\n"
        "from app.core import security\n"
        "handler = security._passwords.handler('argon2')\n"
        "times = []\n"
        "for _ in range(5):\n"
        "    t = time.perf_counter(); security.hash_password_sync('bench-password-2026')\n"
        "    times.append(1000 * (time.perf_counter() - t))\n"
        "print(json.dumps({'type': handler.type, 'memory_kib': handler.memory_cost,\n"
        "    'passes': handler.default_rounds, 'lanes': handler.parallelism,\n"
        "    'hash_ms_median': round(statistics.median(times), 1)}))\n"
    )
    done = subprocess.run(
        [servers.python(), "-c", script],
        cwd=app_dir,
        env={**os.environ, "PYTHONPATH": str(app_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {"error": (done.stderr or done.stdout)[-500:]}


def _machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
    }


class Bench:
    def __init__(self, size: str, args: argparse.Namespace) -> None:
        self.size = size
        self.args = args
        self.url = database_url(args.server, f"hms_bench_{size}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.stamp = stamp
        self.work = RESULTS / "logs" / f"{stamp}-{size}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.secret = secrets.token_urlsafe(48)
        self.runs: list[dict[str, Any]] = []
        self.admin_token = ""
        self.heavy = wrk.QUICK if args.quick else wrk.HEAVY
        self.single = wrk.Load(1, 1, 2) if args.quick else wrk.SINGLE

    # -- set-up ------------------------------------------------------------------------

    def prepare_database(self) -> dict[str, Any]:
        seed_file = RESULTS / f"seed-{self.size}.json"
        if self.args.reuse and asyncio.run(_seed_in_place(self.args.server, self.size)):
            print(f"[{self.size}] reusing the seeded database hms_bench_{self.size}")
            migrate(self.url)  # a seed made before the latest migration is brought up to it
            previous = json.loads(seed_file.read_text()) if seed_file.exists() else {}
            return {"reused": True, **previous}
        print(f"[{self.size}] seeding hms_bench_{self.size} ...", flush=True)
        report: SeedReport = seed(self.size, self.args.server)
        print(f"[{self.size}] seeded in {report.seconds['total']} s: {report.seconds}")
        data = asdict(report)
        data.pop("url")
        seed_file.write_text(json.dumps(data, indent=2) + "\n")
        return {"reused": False, **data}

    def start_servers(self) -> tuple[servers.Server, servers.Server]:
        api_env = {
            "DATABASE_URL": server_url(self.url).replace("postgresql://", "postgresql+asyncpg://"),
            "SECRET_KEY": self.secret,
            **servers.API_ENV,
            **API_POOL,
        }
        ceiling_env = {"DATABASE_URL": self.url, "SECRET_KEY": self.secret}
        py = servers.python()
        api = servers.start("api", "app.main:app", api_env, self.args.app_dir, self.work, py)
        ceiling = servers.start("ceiling", "bench.ceiling:app", ceiling_env, ROOT, self.work, py)
        try:
            servers.wait_ready(ceiling)
            servers.wait_ready(api)
        except Exception:
            api.stop()
            ceiling.stop()
            raise
        return api, ceiling

    # -- load --------------------------------------------------------------------------

    def wrk_args(self, target: Target, base: str, load: wrk.Load, token: str) -> list[str]:
        """`token`: the doctor's; the admin's and none are given by the target's caller."""
        token = {"doctor": token, "admin": self.admin_token, "": ""}[target.caller]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return wrk.command(
            base + target.path,
            load,
            headers=headers,
            method=target.method,
            body=target.body,
            content_type=target.content_type,
            script_dir=self.work,
            ids=target.ids,
        )

    def measure(
        self, target: Target, server: servers.Server, load: wrk.Load, token: str, label: str = ""
    ) -> dict[str, Any]:
        """One wrk run, and the CPU the server's workers spent per request during it (a
        figure that the other load on a shared machine disturbs far less than req/s)."""
        workers, database = server.workers(), servers.database_pids()
        cpu_before = servers.cpu_seconds(workers)
        db_before = servers.cpu_by_process(database)
        result, raw = wrk.run(self.wrk_args(target, server.base, load, token))
        cpu = servers.cpu_seconds(workers) - cpu_before
        db_after = servers.cpu_by_process(database)
        # Only the processes alive before and after: a backend that ended took its CPU time
        # with it, and the pools keep theirs open throughout.
        db_cpu = sum(db_after[pid] - db_before[pid] for pid in db_before.keys() & db_after.keys())
        entry = {
            "seq": len(self.runs),
            "endpoint": target.name,
            "server": target.server,
            "connections": load.connections,
            "threads": load.threads,
            "seconds": load.seconds,
            "label": label,
            **result.as_dict(),
            "cpu_ms_per_request": _per_request(cpu, result.requests),
            "db_cpu_ms_per_request": _per_request(db_cpu, result.requests) if database else None,
        }
        (self.work / f"wrk-{len(self.runs):02d}.txt").write_text(raw)
        self.runs.append(entry)
        print(
            f"  {target.name:<38} c{load.connections:<3} {result.rps:9.1f} req/s  "
            f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}  "
            f"cpu {entry['cpu_ms_per_request']} ms/req  db {entry['db_cpu_ms_per_request']} ms/req"
            + (f"  ({label})" if label else ""),
            flush=True,
        )
        return entry

    def run(self) -> dict[str, Any]:
        seed_info = self.prepare_database()
        fixture = asyncio.run(_fixture(self.url))
        print(f"[{self.size}] fixture: {fixture}")
        api, ceiling = self.start_servers()
        try:
            return self._run_loaded(api, ceiling, fixture, seed_info)
        finally:
            api.stop()
            ceiling.stop()

    def _run_loaded(
        self,
        api: servers.Server,
        ceiling: servers.Server,
        fixture: Fixture,
        seed_info: dict[str, Any],
    ) -> dict[str, Any]:
        base = {"api": api.base, "ceiling": ceiling.base}
        by_name = {"api": api, "ceiling": ceiling}
        token = _login(api.base, fixture.doctor_username)
        self.admin_token = _login(api.base, fixture.admin_username)
        _make_history(api.base, token, fixture.history_id)

        available, missing = [], {}
        for target in targets(fixture):
            caller = {"doctor": token, "admin": self.admin_token, "": None}[target.caller]
            url = base[target.server] + target.path
            status, _ = _request(url, token=caller, body=target.body, method=target.method)
            if 200 <= status < 300:
                available.append(target)
            else:
                missing[target.name] = status
                print(f"  {target.name}: answers {status}, not measured")
        ceilings = {t.name: t for t in available if t.server == "ceiling"}
        api_targets = [t for t in available if t.server == "api"]
        if self.args.only:
            api_targets = [t for t in api_targets if any(o in t.name for o in self.args.only)]

        # The first run of each worker's life is a full-length one: its memory reaches its
        # level under load in about 10 s (the memory check compares the first and last 10 s).
        print(f"[{self.size}] warm-up", flush=True)
        for index, target in enumerate([*ceilings.values(), *api_targets]):
            if self.args.quick:
                seconds = 1
            else:
                seconds = 10 if index == len(ceilings) else 3
            server = base[target.server]
            wrk.run(self.wrk_args(target, server, wrk.Load(2, 32, seconds), token))

        workers = api.workers()
        paired = [(t, ceilings.get(PAIRED[t.name])) for t in api_targets if t.name in PAIRED]
        rounds = ROUND_LABELS[1:2] if self.args.quick else ROUND_LABELS[1:]
        print(f"[{self.size}] measuring (API workers {workers})", flush=True)
        with servers.MemorySampler(workers) as sampler:
            # Every endpoint between two runs of its ceiling (consecutive endpoints of one
            # ceiling share the run between them): a drifting machine moves both alike.
            for reference in (*CEILINGS.values(), None):
                group = [t for t in api_targets if CEILINGS.get(t.reference or "") == reference]
                reference_run = ceilings.get(reference or "")
                if reference_run is not None and group:
                    self.measure(reference_run, by_name["ceiling"], self.heavy, token)
                for target in group:
                    self.measure(target, by_name["api"], self.heavy, token)
                    if reference_run is not None:
                        self.measure(reference_run, by_name["ceiling"], self.heavy, token)
            for load in (self.heavy, self.single):
                for label in rounds if load is self.heavy else ROUND_LABELS[:1]:
                    for target, reference_run in paired:
                        if reference_run is None:
                            continue
                        if load is self.single:
                            self.measure(reference_run, by_name["ceiling"], load, token, label)
                        self.measure(target, by_name["api"], load, token, label)
                        self.measure(reference_run, by_name["ceiling"], load, token, label)
            storm = self.login_storm(api, api_targets, token)
        time.sleep(2)
        final_rss = {str(pid): _round(servers.rss_mb(pid)) for pid in workers}

        profiles = {}
        if self.args.profile:
            profiles = self.profile(api, api_targets, token)

        return self.report(
            fixture, seed_info, missing, storm, sampler, final_rss, profiles, api, workers
        )

    def login_storm(
        self, api: servers.Server, api_targets: list[Target], token: str
    ) -> dict[str, Any]:
        """Single-connection GET /auth/me, idle and while 32 connections log in."""
        me = next((t for t in api_targets if t.name == "GET /auth/me"), None)
        login = next((t for t in api_targets if t.name == "POST /auth/login/"), None)
        if me is None or login is None:
            return {"skipped": "GET /auth/me or POST /auth/login/ not available"}
        print(f"[{self.size}] login storm", flush=True)
        idle = self.measure(me, api, wrk.SINGLE, token, "idle, before the storm")
        storm_load = wrk.Load(2, 32, wrk.SINGLE.seconds + 4)
        storm_process = wrk.start(self.wrk_args(login, api.base, storm_load, token))
        time.sleep(2)
        during = self.measure(me, api, wrk.SINGLE, token, "during the login storm")
        storm_result, raw = wrk.finish(storm_process)
        (self.work / "wrk-storm.txt").write_text(raw)
        return {
            "idle_p50_ms": idle["p50_ms"],
            "storm_p50_ms": during["p50_ms"],
            "idle_p99_ms": idle["p99_ms"],
            "storm_p99_ms": during["p99_ms"],
            "ratio_p50": round(during["p50_ms"] / idle["p50_ms"], 2),
            "ratio_p99": round(during["p99_ms"] / idle["p99_ms"], 2),
            "logins_per_second": storm_result.rps,
            "login_p50_ms": storm_result.p50_ms,
            "login_errors": storm_result.errors,
            "me_errors": during["errors"],
        }

    def profile(self, api: servers.Server, api_targets: list[Target], token: str) -> dict[str, Any]:
        if profile.py_spy() is None:
            print("py-spy not installed: no profile")
            return {}
        found: dict[str, Any] = {}
        # The two hot reads, or every endpoint chosen with --only.
        names = ("GET /api/patient_records/{id}", "GET /api/patient_records/?limit=50")
        chosen = api_targets if self.args.only else [t for t in api_targets if t.name in names]
        for target in [t for t in chosen if t.method == "GET"]:
            out = self.work / f"profile-{len(found)}.txt"
            load = wrk.Load(2, 32, 12)
            spy = profile.record(api.workers()[0], 10, out)
            if spy is None:
                break
            time.sleep(0.5)
            wrk.run(self.wrk_args(target, api.base, load, token))
            spy.wait(30)
            if out.exists():
                summary = profile.summarize(out)
                summary["raw"] = str(out.relative_to(ROOT))
                found[target.name] = summary
                profile.print_summary(target.name, summary)
        return found

    # -- report ------------------------------------------------------------------------

    def _runs_of(self, endpoint: str, connections: int) -> list[dict[str, Any]]:
        return [
            r for r in self.runs if r["endpoint"] == endpoint and r["connections"] == connections
        ]

    def report(
        self,
        fixture: Fixture,
        seed_info: dict[str, Any],
        missing: dict[str, int],
        storm: dict[str, Any],
        sampler: servers.MemorySampler,
        final_rss: dict[str, float | None],
        profiles: dict[str, Any],
        api: servers.Server,
        workers: list[int],
    ) -> dict[str, Any]:
        table = []
        for connections in (self.heavy.connections, self.single.connections):
            for name in CEILINGS.values():
                ceiling_runs = self._runs_of(name, connections)
                if ceiling_runs:
                    table.append(_row(name, connections, ceiling_runs, None, None))
            for target in targets(fixture):
                mine = [
                    r for r in self._runs_of(target.name, connections) if r["label"] in ROUND_LABELS
                ]
                if target.server != "api" or not mine:
                    continue
                ceiling = CEILINGS.get(target.reference or "")
                ceiling_runs = self._runs_of(ceiling, connections) if ceiling else []
                ref = statistics.mean(r["rps"] for r in ceiling_runs) if ceiling_runs else None
                row = _row(target.name, connections, mine, target.reference, ref)
                if ceiling_runs:
                    row |= _paired_ratio(mine, ceiling_runs)
                row["target"] = target.target
                if target.target is not None and row.get("ratio") is not None:
                    row["met"] = row["ratio"] >= target.target
                table.append(row)
        memory = sampler.windows()
        data = {
            "size": self.size,
            "timestamp": self.stamp,
            "command": self.args.command,
            "machine": _machine(),
            "server": {
                "uvicorn": " ".join(servers.UVICORN_FLAGS),
                "api": (
                    "app.main:app, ENVIRONMENT=production, "
                    f"pool {API_POOL['DB_POOL_SIZE']} + overflow {API_POOL['DB_MAX_OVERFLOW']}"
                    " per worker"
                ),
                "ceiling": "bench.ceiling:app, asyncpg pool 10 per worker",
                "app_dir": str(self.args.app_dir),
                "workers": workers,
            },
            "seed": seed_info,
            "fixture": asdict(fixture),
            "table": table,
            "not_measured": missing,
            "login_storm": storm,
            "password_hashing": _hash_timing(self.args.app_dir),
            "memory": {"windows": memory, "final_rss_mb": final_rss},
            "profiles": profiles,
            "runs": self.runs,
        }
        data["checks"] = _checks(data)
        _print_table(data)
        RESULTS.mkdir(exist_ok=True)
        text = json.dumps(data, indent=2, default=str) + "\n"
        if self.args.quick:  # the harness checked: not a result to keep
            (RESULTS / f"quick-{self.size}.json").write_text(text)
            print(f"written bench/results/quick-{self.size}.json")
            return data
        (RESULTS / f"{self.stamp}-{self.size}.json").write_text(text)
        (RESULTS / f"latest-{self.size}.json").write_text(text)
        print(f"written bench/results/{self.stamp}-{self.size}.json and latest-{self.size}.json")
        return data


def _login(base: str, username: str) -> str:
    status, body = _request(
        base + "/auth/login/", body=json.dumps({"username": username, "password": PASSWORD})
    )
    if status != 200:
        raise RuntimeError(f"login as {username} answered {status}: {body!r}")
    return str(json.loads(body)["access_token"])


def _make_history(base: str, token: str, record_id: int) -> None:
    """Versions for the measured record's history, through the API (kept on --reuse)."""
    status, body = _request(f"{base}/api/patient_records/{record_id}", token=token)
    version = json.loads(body)["version"] if status == 200 else HISTORY_VERSIONS
    for n in range(version, HISTORY_VERSIONS):
        change = json.dumps({"notes": f"Follow-up {n}: stable, continue the treatment."})
        url = f"{base}/api/patient_records/{record_id}"
        _request(url, token=token, body=change, method="PATCH")


def _paired_ratio(mine: list[dict[str, Any]], ceiling: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each run's ratio to the mean of its ceiling's runs just before and just
    after it (the machine's drift moves both alike), when every run has both."""
    ratios = []
    for run in mine:
        before = [c for c in ceiling if c["seq"] < run["seq"]]
        after = [c for c in ceiling if c["seq"] > run["seq"]]
        if not before or not after:
            return {}
        ratios.append(run["rps"] / statistics.mean((before[-1]["rps"], after[0]["rps"])))
    return {
        "ratio": round(statistics.median(ratios), 3),
        "paired_ratios": [round(r, 3) for r in ratios],
    }


def _per_request(cpu_seconds: float, requests: int) -> float | None:
    return round(1000 * cpu_seconds / requests, 3) if requests else None


def _row(
    name: str,
    connections: int,
    runs: list[dict[str, Any]],
    reference: str | None,
    reference_rps: float | None,
) -> dict[str, Any]:
    rps = statistics.mean(r["rps"] for r in runs)
    db = [r["db_cpu_ms_per_request"] for r in runs if r.get("db_cpu_ms_per_request") is not None]
    return {
        "endpoint": name,
        "connections": connections,
        "rps": round(rps, 1),
        "p50_ms": round(statistics.mean(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.mean(r["p99_ms"] for r in runs), 2),
        "errors": sum(r["errors"] for r in runs),
        "cpu_ms_per_request": round(statistics.mean(r["cpu_ms_per_request"] or 0 for r in runs), 3),
        "db_cpu_ms_per_request": round(statistics.mean(db), 3) if db else None,
        "ceiling": reference,
        "ratio": round(rps / reference_rps, 3) if reference_rps else None,
    }


def _find(data: dict[str, Any], endpoint: str, connections: int = 32) -> dict[str, Any] | None:
    return next(
        (r for r in data["table"] if r["endpoint"] == endpoint and r["connections"] == connections),
        None,
    )


def _checks(data: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for row in data["table"]:
        if row.get("met") is not None and row["connections"] == wrk.HEAVY.connections:
            checks[f"{row['endpoint']} >= {row['target']}x ceiling ({row['ceiling']})"] = row["met"]
    checks["zero non-2xx and socket errors"] = all(r["errors"] == 0 for r in data["runs"])
    storm = data["login_storm"]
    if "ratio_p50" in storm:
        checks["GET /auth/me p50 during login storm < 3x idle"] = (
            storm["ratio_p50"] < TARGETS["storm"]
        )
    final = [v for v in data["memory"]["final_rss_mb"].values() if v is not None]
    if final:
        checks["worker RSS after the run < 150 MB"] = max(final) < TARGETS["rss_mb"]
    windows = data["memory"]["windows"].values()
    if windows:
        checks["no RSS growth first vs last 10 s window (<= 5%)"] = all(
            w["last_window_mb"] <= w["first_window_mb"] * (1 + MEMORY_GROWTH_TOLERANCE)
            for w in windows
        )
    return checks


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(data: dict[str, Any]) -> None:
    print(f"\n== {data['size']} seed ({data['fixture']['records']:,} records) ==")
    print(f"{'endpoint':<38} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'x ceiling':>10} {'cpu ms/req':>10} {'db ms/req':>9}")  # fmt: skip
    for row in data["table"]:
        ratio = f"{row['ratio']:.2f} ({row['ceiling']})" if row["ratio"] is not None else ""
        print(
            f"{row['endpoint']:<38} {row['connections']:>5} {row['rps']:>9.1f} "
            f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['errors']:>6} {ratio:>10} "
            f"{row['cpu_ms_per_request']:>10.2f} {_fmt(row.get('db_cpu_ms_per_request')):>9}"
        )
    storm = data["login_storm"]
    if "ratio_p50" in storm:
        print(
            f"GET /auth/me, 1 connection: idle p50 {storm['idle_p50_ms']} ms, during a "
            f"32-connection login storm p50 {storm['storm_p50_ms']} ms -> {storm['ratio_p50']}x "
            f"(p99 {storm['ratio_p99']}x; {storm['logins_per_second']} logins/s)"
        )
    hashing = data["password_hashing"]
    if "hash_ms_median" in hashing:
        print(
            f"password hashing: argon2{hashing['type']}, {hashing['memory_kib']} KiB, "
            f"{hashing['passes']} passes, {hashing['lanes']} lane(s): "
            f"{hashing['hash_ms_median']} ms per hash"
        )
    for pid, w in data["memory"]["windows"].items():
        print(
            f"worker {pid}: RSS first 10 s {w['first_window_mb']} MB, last 10 s "
            f"{w['last_window_mb']} MB, peak {w['peak_mb']} MB, after the run "
            f"{_fmt(data['memory']['final_rss_mb'].get(pid), 1)} MB"
        )
    for name, ok in data["checks"].items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")


def _verdict(flat: bool | None) -> str:
    return "reference" if flat is None else "ok" if flat else "NOT FLAT"


def compare_sizes(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """Flat with size: every figure at the large seed within 15% of the small seed's.

    Judged on the ratio to the ceiling measured in the same run where there is one (the
    drift of a shared machine cancels out), else on req/s; CPU per request is shown too.
    """
    rows = []
    for row in large["table"]:
        other = _find(small, row["endpoint"], row["connections"])
        if other is None or not other["rps"]:
            continue

        def change(key: str, row: dict[str, Any] = row, other: dict[str, Any] = other) -> Any:
            return round(row[key] / other[key] - 1, 3) if row[key] and other[key] else None

        judged = change("ratio") if change("ratio") is not None else change("rps")
        if row["endpoint"].startswith("ceiling"):
            judged = None  # the reference itself
        rows.append(
            {
                "endpoint": row["endpoint"],
                "connections": row["connections"],
                "small_rps": other["rps"],
                "large_rps": row["rps"],
                "rps_change": change("rps"),
                "ratio_change": change("ratio"),
                "cpu_change": change("cpu_ms_per_request"),
                "flat": None if judged is None else abs(judged) <= TARGETS["flat"],
            }
        )
    print("\n== large vs small, runs minutes apart (ratio to each run's own ceiling) ==")
    for r in rows:
        ratio = "" if r["ratio_change"] is None else f"{100 * r['ratio_change']:+6.1f}%"
        cpu = "" if r["cpu_change"] is None else f"{100 * r['cpu_change']:+6.1f}%"
        print(
            f"{r['endpoint']:<38} c{r['connections']:<3} req/s {r['small_rps']:>8.1f} -> "
            f"{r['large_rps']:>8.1f} ({100 * r['rps_change']:+6.1f}%)  x ceiling {ratio:>7}  "
            f"cpu/req {cpu:>7}  {_verdict(r['flat'])}"
        )
    result = {"small": small["timestamp"], "large": large["timestamp"], "rows": rows}
    (RESULTS / "latest-comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "large", "both"], default="small")
    parser.add_argument("--reuse", action="store_true", help="keep a seeded database in place")
    parser.add_argument("--profile", action="store_true", help="py-spy the hot endpoints")
    parser.add_argument(
        "--quick", action="store_true", help="short runs, one round: checks the harness only"
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument(
        "--only", action="append", help="measure only the API endpoints whose name contains this"
    )
    parser.add_argument(
        "--app-dir", type=Path, default=ROOT, help="the source tree whose app/ is served"
    )
    args = parser.parse_args()
    args.command = "python -m bench.run " + " ".join(
        a
        for a in [
            f"--size {args.size}",
            "--reuse" * args.reuse,
            "--profile" * args.profile,
            "--quick" * args.quick,
        ]
        if a
    )
    wrk.ensure_wrk()
    sizes = ["small", "large"] if args.size == "both" else [args.size]
    results = {size: Bench(size, args).run() for size in sizes}
    if len(results) == 2:
        comparison = compare_sizes(results["small"], results["large"])
        fixtures = {size: Fixture(**data["fixture"]) for size, data in results.items()}
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        comparison["side_by_side"] = flat.interleaved(
            fixtures, args.server, args.app_dir, RESULTS / "logs" / f"{stamp}-flat"
        )
        rows = comparison["side_by_side"]["rows"]
        comparison["checks"] = {
            "every API figure at the large seed within 15% of the small seed's": all(
                r["flat"] for r in rows
            ),
            "zero non-2xx and socket errors (side by side)": all(r["errors"] == 0 for r in rows),
        }
        for name, ok in comparison["checks"].items():
            print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
        (RESULTS / "latest-comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")


if __name__ == "__main__":
    main()
