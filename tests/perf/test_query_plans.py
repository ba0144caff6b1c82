"""The hot queries use indexes: no sequential scan of patient records or audit events.

The database holds enough rows (20,000 records and their versions, 20,000 audit events and
5,000 list pages naming 4 patients each, 20,000 past logins and revoked tokens, loaded with
COPY and analysed) for the planner to
choose as it would in production. The statements are captured exactly as the
repositories issue them, by running the endpoints through the app, and each is then
EXPLAINed with its own parameters.
"""

import asyncio
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from app.audit import links, repository
from app.audit.chain import canonical_patient_ids
from app.audit.links import link_pending
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.main import create_app
from bench.seed import PASSWORD, Size, known_password_hash, load, server_url
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres_only  # query plans of PostgreSQL

SIZE = Size(departments=10, doctors=50, patients=2_000, records=20_000, text_scale=60)
AUDIT_EVENTS = 20_000
LIST_PAGES = 5_000
PATIENTS_PER_PAGE = 4
PAST_LOGINS = 20_000
# Tables that grow without bound; the per-request token check reads the last two.
GUARDED = {
    "patient_records",
    "patient_record_versions",
    "audit_events",
    "audit_patient_links",
    "token_families",
    "revoked_tokens",
}
EXPLAINABLE = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")


async def _seed_history(url: str, patients: list[int], actor: int) -> None:
    """Past events (their hashes are not a valid chain: only the plans matter here), list
    pages with their patients' links, and past logins and revoked tokens, as a week of use
    leaves them."""
    start = utcnow() - timedelta(days=30)
    soon = utcnow() + timedelta(days=3)
    rows = (
        (start + timedelta(seconds=n), actor, "record.read", "record", n + 1, "allowed",
         "127.0.0.1", f"req{n}", patients[n % len(patients)], 1, "0" * 64)
        for n in range(AUDIT_EVENTS)
    )  # fmt: skip
    pages = (
        (start + timedelta(seconds=n), actor, "record.list", "record", "allowed", "127.0.0.1",
         f"page{n}", canonical_patient_ids(
             patients[(n * PATIENTS_PER_PAGE + k) % len(patients)]
             for k in range(PATIENTS_PER_PAGE)
         ), 1, "0" * 64)
        for n in range(LIST_PAGES)
    )  # fmt: skip
    conn = await asyncpg.connect(server_url(url))
    try:
        await conn.copy_records_to_table(
            "audit_events",
            records=rows,
            columns=("at", "actor_id", "action", "resource_type", "resource_id", "outcome",
                     "ip", "request_id", "patient_id", "department_id", "hash"),
        )  # fmt: skip
        await conn.copy_records_to_table(
            "audit_events",
            records=pages,
            columns=("at", "actor_id", "action", "resource_type", "outcome", "ip",
                     "request_id", "patient_ids", "department_id", "hash"),
        )  # fmt: skip
        await conn.copy_records_to_table(
            "token_families",
            records=(
                (f"{n:032x}", patients[n % len(patients)], f"{n:032x}", start, soon, None)
                for n in range(PAST_LOGINS)
            ),
            columns=("id", "user_id", "current_refresh_jti", "created_at", "expires_at",
                     "revoked_at"),
        )  # fmt: skip
        await conn.copy_records_to_table(
            "revoked_tokens",
            records=((f"{n:032x}", soon) for n in range(PAST_LOGINS)),
            columns=("jti", "expires_at"),
        )
        await conn.execute(HEAD_AFTER_COPY)
        await _link(url)
        for table in ("audit_events", "audit_patient_links", "token_families", "revoked_tokens"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


# Events copied in bypass the appends: the chain head names the last, as an append would.
HEAD_AFTER_COPY = "UPDATE audit_chain_head SET last_event_id = (SELECT max(id) FROM audit_events)"


async def _link(url: str, pages: int = LIST_PAGES) -> None:
    """The pages' links, as the background linking leaves them (audit.links)."""
    engine = create_engine(make_settings(url))
    try:
        async with create_sessionmaker(engine)() as session:
            assert await link_pending(session, limit=pages) == pages
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def seeded(fresh_database_url: Any) -> dict[str, Any]:
    url: str = await fresh_database_url()
    await load(url, SIZE, known_password_hash())
    conn = await asyncpg.connect(server_url(url))
    try:
        doctor = await conn.fetchrow(
            """SELECT u.id, u.username, d.department_id FROM users u
               JOIN doctor_profiles d ON d.user_id = u.id ORDER BY u.id LIMIT 1"""
        )
        record_id = await conn.fetchval(
            "SELECT id FROM patient_records WHERE department_id = $1 AND id > $2 "
            "ORDER BY id LIMIT 1",
            doctor["department_id"],
            SIZE.records // 2,
        )
        patients = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM users WHERE role = 'patient' ORDER BY id")
        ]
        admin = await conn.fetchval("SELECT username FROM users WHERE role = 'admin'")
    finally:
        await conn.close()
    await _seed_history(url, patients, doctor["id"])
    return {
        "url": url,
        "doctor": doctor["username"],
        "doctor_id": doctor["id"],
        "department_id": doctor["department_id"],
        "record_id": record_id,
        "patient_id": patients[len(patients) // 2],
        "admin": admin,
    }


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows_read(plan: dict[str, Any], table: str) -> int:
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in _nodes(plan)
        if node.get("Relation Name") == table
    )


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for node in _nodes(plan):
        yield node.get("Node Type", ""), node.get("Relation Name", "")


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await client.post("/auth/login/", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def statements_of(url: str, reads: dict[str, list[str]]) -> list[tuple[str, Any, str]]:
    """Every statement the GETs of `reads` (paths by username) issue, with its parameters
    and its endpoint, run through the app; each read must answer 200."""
    settings = make_settings(url)
    engine = create_engine(settings)
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    statements: list[tuple[str, Any, str]] = []
    current = {"endpoint": ""}

    def capture(query: Any) -> None:  # as the driver sends it (reads run on it directly)
        if query.query.lstrip().upper().startswith(EXPLAINABLE) and "pg_catalog" not in query.query:
            statements.append((query.query, query.args, current["endpoint"]))

    def on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.driver_connection.add_query_logger(capture)

    event.listen(engine.sync_engine, "connect", on_connect)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for username, paths in reads.items():
                current["endpoint"] = "POST /auth/login/"
                headers = await _login(client, username)
                for path in paths:
                    current["endpoint"] = f"GET {path}"
                    answer = await client.get(path, headers=headers)
                    assert answer.status_code == 200, (path, answer.text)
                    await asyncio.sleep(0)  # the driver reports a statement on the next turn
    finally:
        await engine.dispose()
    return statements


@pytest.fixture(scope="module")
async def captured(seeded: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Every statement each read endpoint issues, with its parameters, run through the app."""
    record, patient = seeded["record_id"], seeded["patient_id"]
    department = seeded["department_id"]
    doctor_reads = [
        f"/api/patient_records/{record}",
        "/api/patient_records/?limit=50",
        f"/api/patient_records/?patient_id={patient}",
        f"/api/patient_records/{record}/history",
        "/api/patients/?q=vanterpool",
        "/api/patients/",
        f"/api/patients/{patient}",
        "/api/doctors/",
        f"/api/doctors/{seeded['doctor_id']}",
        "/api/department/",
        f"/api/department/{department}",
        f"/api/department/{department}/doctors",
        f"/api/department/{department}/patients",
        "/auth/me",
        # FHIR: the same policies' statements, with search parameters as extra conditions
        f"/fhir/R4/Condition/{record}",
        f"/fhir/R4/Condition/{record}/_history",
        f"/fhir/R4/Condition/{record}/_history/1",
        f"/fhir/R4/Condition?patient={patient}&_count=50",
        "/fhir/R4/Condition?_count=50&_include=Condition:subject&_total=accurate",
        "/fhir/R4/Condition?recorded-date=ge2020&_lastUpdated=lt2100",
        f"/fhir/R4/Patient/{patient}",
        "/fhir/R4/Patient?_count=50",
        "/fhir/R4/Patient?name=vanter&_total=accurate",
        "/fhir/R4/Patient?name:contains=nterp&birthdate=ge1950&gender=female",
        "/fhir/R4/Patient?identifier=nobody",
        "/fhir/R4/Practitioner?name=a",
        f"/fhir/R4/PractitionerRole?organization=Organization/{department}",
        "/fhir/R4/Organization?name:contains=a",
    ]
    admin_reads = [
        f"/api/patients/{patient}/access-log",
        f"/api/audit/?actor_id={seeded['doctor_id']}",
        "/api/audit/emergency-access",
    ]
    statements = await statements_of(
        seeded["url"], {seeded["doctor"]: doctor_reads, seeded["admin"]: admin_reads}
    )
    # Every read was seen issuing SQL.
    seen = {endpoint for *_, endpoint in statements}
    assert {f"GET {path}" for path in doctor_reads + admin_reads} <= seen
    return statements


async def test_every_read_scans_records_and_audit_events_by_index(
    seeded: dict[str, Any], captured: list[tuple[str, Any, str]]
) -> None:
    offenders = []
    conn = await asyncpg.connect(server_url(seeded["url"]))
    try:
        for statement, parameters, endpoint in captured:
            plan = json.loads(
                await conn.fetchval("EXPLAIN (FORMAT JSON) " + statement, *parameters)
            )
            for node, relation in _scans(plan[0]["Plan"]):
                if node == "Seq Scan" and relation in GUARDED:
                    offenders.append((endpoint, relation, " ".join(statement.split())))
    finally:
        await conn.close()
    assert offenders == []


# Pages of every patient the caller may read.
PATIENT_PAGES = (
    "GET /api/patients/",
    "GET /api/patients/?q=vanterpool",
    "GET /fhir/R4/Patient?_count=50",
)


async def test_a_page_of_patients_reads_its_page_not_every_patient(
    seeded: dict[str, Any], captured: list[tuple[str, Any, str]]
) -> None:
    """Staff read every patient and a patient only himself: asked as one OR, PostgreSQL
    guesses that it keeps 1% of the patients and sorts all of them for a staff member's
    page (2,000 rows read). The cases are planned apart, and a page reads about a page,
    in the plan made for its values and in the generic plan a prepared statement keeps."""
    pages = [(s, p, e) for s, p, e in captured if e in PATIENT_PAGES and "LIMIT 51" in s]
    assert {e for *_, e in pages} == set(PATIENT_PAGES)
    conn = await asyncpg.connect(server_url(seeded["url"]))
    try:
        for statement, parameters, endpoint in pages:
            await conn.execute(f"PREPARE page AS {statement}")
            values = ", ".join(map(_literal, parameters))
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                explain = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page({values})"
                plan = json.loads(await conn.fetchval(explain))[0]["Plan"]
                read = {table: _rows_read(plan, table) for table in ("users", "patient_profiles")}
                # a page, its look-ahead row, and staff accounts walked past in users' key
                assert max(read.values()) <= 4 * 51, (endpoint, mode, read)
            await conn.execute("DEALLOCATE page")
    finally:
        await conn.close()


def _literal(value: Any) -> str:
    """A test value as SQL (EXECUTE takes no bound parameters): ints, text, instants, days."""
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return "NULL" if value is None else str(int(value))


# FHIR searches by a date range or a name: how many rows a range or a name's pattern keeps
# is known only with its values, so PostgreSQL may plan those statements with them (a custom
# plan), as it should.
VALUE_PLANNED_SEARCHES = ("recorded-date=", "_lastUpdated=", "birthdate=", "name=")
# PostgreSQL's charge for planning a statement afresh (plancache.c, cached_plan_cost):
# 1000 x cpu_operator_cost (0.0025) per relation, plus one.
PLANNING_CHARGE_PER_RELATION = 2.5


async def test_pages_are_served_by_a_generic_plan(
    seeded: dict[str, Any], captured: list[tuple[str, Any, str]]
) -> None:
    """A prepared statement is planned afresh at every execution unless its generic plan
    costs less than a custom plan plus the charge for planning it (PostgreSQL's rule): a
    cost that would grow with the tables (a page size bound as a parameter did that at a
    million records). Every page read keeps its generic plan."""
    pages = [
        (s, p, e)
        for s, p, e in captured
        if "LIMIT 51" in s
        and e.startswith("GET")
        and not any(r in e for r in VALUE_PLANNED_SEARCHES)
    ]
    assert {e for *_, e in pages} >= {"GET /api/patient_records/?limit=50"}
    offenders = []
    conn = await asyncpg.connect(server_url(seeded["url"]))
    try:
        for statement, parameters, endpoint in pages:
            await conn.execute(f"PREPARE page AS {statement}")
            values = ", ".join(map(_literal, parameters))
            plans = {}
            for mode in ("force_generic_plan", "force_custom_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                explain = f"EXPLAIN (FORMAT JSON) EXECUTE page({values})"
                plans[mode] = json.loads(await conn.fetchval(explain))[0]["Plan"]
            await conn.execute("DEALLOCATE page")
            custom = plans["force_custom_plan"]
            relations = sum(1 for _node, relation in _scans(custom) if relation)
            charge = PLANNING_CHARGE_PER_RELATION * (relations + 1)
            generic = plans["force_generic_plan"]["Total Cost"]
            if generic >= custom["Total Cost"] + charge:
                offenders.append((endpoint, generic, custom["Total Cost"], charge))
    finally:
        await conn.close()
    assert offenders == []


HISTORY = 25_000


async def test_a_linking_run_reads_only_the_events_after_the_mark(
    fresh_database_url: Any,
) -> None:
    """Statistics taken while the trail was empty (a new deployment, or autovacuum behind):
    a run must still start at the mark, not walk the chain up to it."""
    url: str = await fresh_database_url()
    conn = await asyncpg.connect(server_url(url))
    try:
        await conn.execute("VACUUM (ANALYZE) audit_events")
        await conn.copy_records_to_table(
            "audit_events",
            records=(
                (utcnow(), 1, "record.list", "record", "allowed", f"[{n},{n + 1}]", "0" * 64)
                for n in range(HISTORY)
            ),
            columns=("at", "actor_id", "action", "resource_type", "outcome", "patient_ids",
                     "hash"),
        )  # fmt: skip
        await conn.execute(HEAD_AFTER_COPY)
        await _link(url, HISTORY)
        mark = await conn.fetchval("SELECT linked_event_id FROM audit_link_state")
        head = await conn.fetchval("SELECT last_event_id FROM audit_chain_head")
        statement = links.pending_events(mark, head, links.EVENTS_PER_RUN).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
    finally:
        await conn.close()
    read = [
        node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        for node in _nodes(json.loads(plan)[0]["Plan"])
        if node.get("Relation Name") == "audit_events"
    ]
    assert read == [0]  # the history is linked: nothing after the mark


UNLINKED_READS = 50_000
UNLINKED_PAGES = 3


async def test_events_after_the_mark_are_read_by_the_pages_among_them(
    fresh_database_url: Any,
) -> None:
    """Between linking runs the events after the mark are mostly single-patient reads: an
    access log and a linking run read only the pages among them (events naming several
    patients), by their own index, not every event after the mark."""
    url: str = await fresh_database_url()
    patient = 7
    conn = await asyncpg.connect(server_url(url))
    try:
        await conn.copy_records_to_table(
            "audit_events",
            records=[
                (utcnow(), 1, "record.read", "record", "allowed", patient + 1 + n % 50, None,
                 "0" * 64)
                for n in range(UNLINKED_READS)
            ] + [
                (utcnow(), 1, "record.list", "record", "allowed", None, f"[{patient},99]",
                 "0" * 64)
                for _ in range(UNLINKED_PAGES)
            ],
            columns=("at", "actor_id", "action", "resource_type", "outcome", "patient_id",
                     "patient_ids", "hash"),
        )  # fmt: skip
        await conn.execute(HEAD_AFTER_COPY)
        await conn.execute("VACUUM (ANALYZE) audit_events")
        head = await conn.fetchval("SELECT last_event_id FROM audit_chain_head")
        statements = {
            "linking run": links.pending_events(0, head, links.EVENTS_PER_RUN),
            "access log": repository.log_page("postgresql", 50).params(
                patient_id=patient, before=repository.NEWEST
            ),
        }
        read = {}
        for name, query in statements.items():
            compiled = query.compile(dialect=asyncpg_dialect())
            values = [compiled.params[key] for key in compiled.positiontup or ()]
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
            plan = json.loads(await conn.fetchval(explain, *values))[0]["Plan"]
            read[name] = _rows_read(plan, "audit_events")
    finally:
        await conn.close()
    assert read == {"linking run": UNLINKED_PAGES, "access log": 2 * UNLINKED_PAGES}


MANY_PATIENTS = Size(departments=2, doctors=4, patients=100_000, records=100, text_scale=10)


async def _generic_plan(conn: Any, statement: str, parameters: Any) -> dict[str, Any]:
    """The executed generic plan of a captured statement, with its parameters."""
    await conn.execute(f"PREPARE captured AS {statement}")
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        values = ", ".join(map(_literal, parameters))
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE captured({values})"
        return cast(dict[str, Any], json.loads(await conn.fetchval(explain))[0]["Plan"])
    finally:
        await conn.execute("DEALLOCATE captured")


async def _search_plan(conn: Any, url: str, doctor: str, q: str) -> dict[str, Any]:
    """The generic plan of the patients' search for `q`, run as the app issues it."""
    statements = await statements_of(url, {doctor: [f"/api/patients/?q={q}"]})
    [(page, parameters)] = [(s, p) for s, p, _ in statements if "LIMIT 51" in s]
    return await _generic_plan(conn, page, parameters)


async def test_a_name_among_many_patients_is_found_by_the_name_indexes(
    fresh_database_url: Any,
) -> None:
    """Among 100,000 patients, 7 carry a rare name and thousands a common one. The generic
    plan of the search guesses that 900 match (a bound pattern), and walking the users' key
    until it has a page looks cheaper than the name indexes: for the rare name that walk
    reads every user. The matches are found by the indexes first, whatever the guess, and
    only the page's own rows are joined to their profiles: joining every match of the
    common name merged them with every patient profile."""
    url: str = await fresh_database_url()
    await load(url, MANY_PATIENTS, known_password_hash())
    conn = await asyncpg.connect(server_url(url))
    try:
        doctor = await conn.fetchval("SELECT username FROM users WHERE role = 'doctor' LIMIT 1")
        rare = await _search_plan(conn, url, doctor, "vanterpool")
        common = await _search_plan(conn, url, doctor, "son")
        matches = await conn.fetchval("SELECT count(*) FROM users WHERE full_name_key LIKE '%son%'")
    finally:
        await conn.close()
    assert rare["Actual Rows"] == 7
    assert _rows_read(rare, "users") <= 4 * 51, _rows_read(rare, "users")
    assert common["Actual Rows"] == 51
    assert matches > 1_000  # common enough to tell a page from every match
    # Each match is checked once for a profile (an index probe), the page's 51 are read.
    assert _rows_read(common, "patient_profiles") <= matches + 2 * 51
    assert _rows_read(common, "users") <= matches + 2 * 51


async def test_the_token_check_reads_one_login_whatever_the_callers_count(
    fresh_database_url: Any,
) -> None:
    """Every request checks its login (token family) is alive. A doctor who has logged in
    2,000 times among 20,000 users who have logged in once each: the generic plan of the
    check guesses that a user has about one login, so looking it up by its user looked as
    cheap as by its key, and read all 2,000 of his on every request."""
    url: str = await fresh_database_url()
    await load(
        url,
        Size(departments=1, doctors=2, patients=20_000, records=10, text_scale=1),
        known_password_hash(),
    )
    conn = await asyncpg.connect(server_url(url))
    try:
        doctor, doctor_id = await conn.fetchrow(
            "SELECT username, id FROM users WHERE role = 'doctor' ORDER BY id LIMIT 1"
        )
        patients = [r[0] for r in await conn.fetch("SELECT id FROM users WHERE role = 'patient'")]
        owners = [*(patients[n % len(patients)] for n in range(20_000)), *[doctor_id] * 2_000]
        soon = utcnow() + timedelta(days=3)
        await conn.copy_records_to_table(
            "token_families",
            records=((f"{n:032x}", user, f"{n:032x}", utcnow(), soon, utcnow())
                     for n, user in enumerate(owners)),
            columns=("id", "user_id", "current_refresh_jti", "created_at", "expires_at",
                     "revoked_at"),
        )  # fmt: skip
        await conn.execute("VACUUM (ANALYZE) token_families")
        statements = await statements_of(url, {doctor: ["/auth/me"]})
        [(check, parameters)] = [
            (s, p) for s, p, e in statements if e == "GET /auth/me" and "token_families" in s
        ]
        plan = await _generic_plan(conn, check, parameters)
    finally:
        await conn.close()
    assert plan["Actual Rows"] == 1  # the check passed: the doctor is who the token says
    assert _rows_read(plan, "token_families") == 1
