"""Seed a PostgreSQL database for the benchmark, fast: COPY (asyncpg), not API calls.

    python -m bench.seed small|large [--server postgresql://postgres@127.0.0.1:5432/postgres]

The database `hms_bench_<size>` is dropped, recreated and migrated (`alembic upgrade head`),
then filled with departments, doctors, patients, records and their first versions, and
with what a week of use leaves: an audit trail (a valid chain, its list pages linked) and
past logins and logouts. Every user shares one real argon2id hash of `PASSWORD`. Indexes
and foreign keys are dropped during the load and recreated afterwards (exactly as the
migration defined them), then the tables are vacuumed and analysed: the server runs
without autovacuum, and the planner must see the real sizes.
"""

import argparse
import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.audit.chain import CONTENT_FIELDS, GENESIS_HASH, canonical_patient_ids, digest_of, link
from app.audit.links import link_pending

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-2026"
# A surname given to a handful of patients only: `GET /api/patients/?q=vanterpool`.
RARE_SURNAME = "Vanterpool"
RARE_COUNT = 7
RANDOM_PAGE_COST = 1.1


@dataclass(frozen=True)
class Size:
    departments: int
    doctors: int
    patients: int
    records: int
    text_scale: int  # clinical text: roughly this many characters per field
    events: int = 0  # the audit trail's events before the run (Generator.trail)
    logins: int = 0  # past logins, and as many revoked access tokens


SIZES = {
    "small": Size(
        departments=10, doctors=100, patients=2_000, records=20_000, text_scale=300,
        events=100_000, logins=20_000,
    ),
    "large": Size(
        departments=10, doctors=500, patients=100_000, records=1_000_000, text_scale=300,
        events=1_000_000, logins=20_000,
    ),
}  # fmt: skip
LOADED_TABLES = ("users", "departments", "doctor_profiles", "patient_profiles")
RECORD_TABLES = ("patient_records", "patient_record_versions")
HISTORY_TABLES = ("audit_events", "audit_patient_links", "token_families", "revoked_tokens")
# One event in PAGE_EVERY of the trail is a list page, naming PAGE_PATIENTS patients.
PAGE_EVERY = 25
PAGE_PATIENTS = 50

DEPARTMENTS = [
    "Cardiology", "Neurology", "Oncology", "Paediatrics", "Orthopaedics", "Emergency",
    "Gastroenterology", "Pulmonology", "Nephrology", "Dermatology", "Endocrinology",
    "Haematology", "Rheumatology", "Urology", "Ophthalmology", "Psychiatry",
]  # fmt: skip
FIRST = [
    "Amelia", "Noah", "Olivia", "Liam", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo",
    "Chloe", "Arjun", "Hana", "Yusuf", "Ingrid", "Kofi", "Leila", "Tomasz", "Aiko", "Diego",
    "Freya", "Omar", "Priya", "Sven", "Zara", "Malik", "Elena", "Ravi", "Nora", "Felix",
]  # fmt: skip
LAST = [
    "Smith", "Garcia", "Nguyen", "Okafor", "Müller", "Rossi", "Kowalski", "Tanaka", "Silva",
    "Johansson", "Haddad", "Patel", "O'Brien", "Dubois", "Novak", "Yilmaz", "Kim", "Moreau",
    "Andersen", "Costa", "Ivanova", "Mensah", "Fischer", "Lopez", "Chen", "Sato", "Khan",
    "Murphy", "Horvat", "Larsen", "Baptiste", "Reyes", "Schmidt", "Ali", "Wright", "Clarke",
]  # fmt: skip
CLINICAL = {
    "diagnosis": [
        "Essential hypertension, stage 2, poorly controlled on current therapy.",
        "Type 2 diabetes mellitus with peripheral neuropathy; HbA1c 8.4%.",
        "Community-acquired pneumonia, right lower lobe, CURB-65 score 1.",
        "Acute exacerbation of chronic obstructive pulmonary disease.",
        "Paroxysmal atrial fibrillation with rapid ventricular response.",
        "Chronic kidney disease stage 3b, eGFR 38 mL/min/1.73m2.",
        "Iron deficiency anaemia secondary to chronic gastrointestinal blood loss.",
        "Migraine without aura, increasing frequency over three months.",
        "Osteoarthritis of the left knee with moderate joint space narrowing.",
        "Major depressive disorder, recurrent episode, moderate severity.",
    ],
    "observations": [
        "Patient alert and oriented, mild distress on arrival. BP 162/98, HR 104 irregular,",
        "RR 20, SpO2 93% on room air, temperature 38.1 C. Bibasal crackles on auscultation,",
        "no peripheral oedema. Abdomen soft, non-tender. Capillary refill under 2 seconds.",
        "Reports intermittent chest tightness on exertion over the past two weeks, relieved",
        "by rest. No syncope. ECG shows sinus rhythm with left ventricular hypertrophy.",
        "Bloods: Hb 10.2 g/dL, WCC 12.4, CRP 58, creatinine 142 umol/L, potassium 4.9.",
        "Chest radiograph: consolidation right lower zone, no effusion, heart size normal.",
        "Gait antalgic, tenderness over the medial joint line, effusion small, ROM 5-110.",
        "Mood low, sleep disturbed, appetite reduced; denies suicidal ideation today.",
    ],
    "treatments": [
        "Amlodipine 5 mg once daily increased to 10 mg; continue ramipril 10 mg once daily.",
        "Co-amoxiclav 1.2 g IV three times daily for 48 hours, then oral step-down to 625 mg.",
        "Apixaban 5 mg twice daily; bisoprolol 2.5 mg once daily titrated to heart rate.",
        "Metformin 1 g twice daily; start empagliflozin 10 mg; foot care education given.",
        "Salbutamol nebulisers 5 mg four-hourly, prednisolone 30 mg for five days.",
        "Ferrous fumarate 210 mg twice daily; refer for upper and lower endoscopy.",
        "Physiotherapy referral, paracetamol 1 g four times daily, weight-loss advice.",
        "Sertraline 50 mg once daily; follow-up with community mental health team.",
    ],
    "notes": [
        "Discussed diagnosis and plan with patient and family; questions answered.",
        "Review in clinic in six weeks with repeat renal function and electrolytes.",
        "Safety-netting advice given: return if chest pain, breathlessness or fever worsens.",
        "Allergies: penicillin (rash, 2009). Lives alone, independent with daily activities.",
        "Smoking cessation advice offered and accepted; referral to stop-smoking service.",
        "Next of kin informed. Capacity assessed and documented for treatment decisions.",
    ],
}


def server_url(url: str) -> str:
    """asyncpg wants a plain postgresql:// URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def database_url(server: str, name: str) -> str:
    base, _, _ = server_url(server).rpartition("/")
    return f"{base}/{name}"


def _texts(rng: random.Random, field: str, scale: int, count: int) -> list[str]:
    """A pool of clinical texts of roughly `scale` characters built from real-looking lines."""
    lines = CLINICAL[field]
    pool = []
    for _ in range(count):
        parts: list[str] = []
        target = rng.randint(scale * 2 // 3, scale * 4 // 3)
        while sum(len(p) + 1 for p in parts) < target:
            parts.append(rng.choice(lines))
        pool.append(" ".join(parts))
    return pool


class Generator:
    """Deterministic rows: the same size and seed always give the same database."""

    def __init__(self, size: Size, password_hash: str, seed: int = 6) -> None:
        self.size = size
        self.password_hash = password_hash
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.valid_after = self.now - timedelta(days=1)
        self.first_doctor = 2  # user 1 is an administrator
        self.first_patient = self.first_doctor + size.doctors
        doctor_ids = range(self.first_doctor, self.first_patient)
        self.doctors_of = {
            d: [u for u in doctor_ids if self.department_of_doctor(u) == d]
            for d in range(1, size.departments + 1)
        }
        pool = 4000
        self.texts = {field: _texts(self.rng, field, size.text_scale, pool) for field in CLINICAL}

    def department_of_doctor(self, user_id: int) -> int:
        return (user_id - self.first_doctor) % self.size.departments + 1

    def departments(self) -> list[tuple[Any, ...]]:
        rows = []
        for i in range(1, self.size.departments + 1):
            name = DEPARTMENTS[(i - 1) % len(DEPARTMENTS)]
            name = name if i <= len(DEPARTMENTS) else f"{name} {i}"
            rows.append(
                (i, name, name.casefold(), f"The {name} department.", f"Building {i}", name,
                 self.now - timedelta(days=3650))
            )  # fmt: skip
        return rows

    def _user(self, user_id: int, username: str, full_name: str, role: str) -> tuple[Any, ...]:
        email = f"{username}@bench.example.org"
        created = self.now - timedelta(days=self.rng.randint(2, 3000))
        return (
            user_id, username, username.casefold(), email, email.casefold(), full_name,
            full_name.casefold(), self.password_hash, role, True, self.valid_after, created,
        )  # fmt: skip

    def users(self) -> Iterator[tuple[Any, ...]]:
        yield self._user(1, "admin", "Bench Administrator", "admin")
        for user_id in range(self.first_doctor, self.first_patient):
            name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            yield self._user(user_id, f"doctor{user_id:05d}", f"Dr {name}", "doctor")
        rare = set(self.rng.sample(range(self.size.patients), RARE_COUNT))
        for n in range(self.size.patients):
            last = RARE_SURNAME if n in rare else self.rng.choice(LAST)
            name = f"{self.rng.choice(FIRST)} {last}"
            yield self._user(self.first_patient + n, f"patient{n:06d}", name, "patient")

    def doctor_profiles(self) -> Iterator[tuple[Any, ...]]:
        for user_id in range(self.first_doctor, self.first_patient):
            department = self.department_of_doctor(user_id)
            yield (user_id, department, DEPARTMENTS[(department - 1) % len(DEPARTMENTS)],
                   f"LIC-{user_id:07d}")  # fmt: skip

    def patient_profiles(self) -> Iterator[tuple[Any, ...]]:
        sexes = ("female", "male", "other", "unknown", None)
        for n in range(self.size.patients):
            born = date(1930, 1, 1) + timedelta(days=self.rng.randint(0, 33_000))
            phone = f"+44 20 {self.rng.randint(1000, 9999)} {self.rng.randint(1000, 9999)}"
            yield (self.first_patient + n, born, self.rng.choice(sexes), phone)

    def records(self) -> Iterator[tuple[Any, ...]]:
        """(id, patient, department, author, diagnosis, observations, treatments, notes,
        created_at): one row feeds both the record and its version 1."""
        rng, texts, size = self.rng, self.texts, self.size
        start = self.now - timedelta(days=5 * 365)
        span = int((self.now - start).total_seconds())
        for record_id in range(1, size.records + 1):
            department = rng.randint(1, size.departments)
            author = rng.choice(self.doctors_of[department])
            patient = self.first_patient + rng.randrange(size.patients)
            created = start + timedelta(seconds=span * record_id // size.records)
            notes = rng.choice(texts["notes"]) if rng.random() < 0.8 else None
            yield (
                record_id, patient, department, author, rng.choice(texts["diagnosis"]),
                rng.choice(texts["observations"]), rng.choice(texts["treatments"]), notes,
                created,
            )  # fmt: skip

    def trail(self) -> list[tuple[Any, ...]]:
        """A week of audit events, a valid chain from the genesis hash (ids 1, 2, ...):
        record reads by doctors of the records' departments and, one in PAGE_EVERY, a
        list page naming PAGE_PATIENTS patients."""
        rng, size = self.rng, self.size
        start = self.now - timedelta(days=7)
        step = timedelta(days=7) / max(size.events, 1)
        rows = []
        previous = GENESIS_HASH
        for event_id in range(1, size.events + 1):
            department = rng.randint(1, size.departments)
            actor = rng.choice(self.doctors_of[department])
            at = start + step * event_id
            if event_id % PAGE_EVERY:
                patient = self.first_patient + rng.randrange(size.patients)
                action, resource, patient_ids = "record.read", rng.randint(1, size.records), None
            else:
                named = rng.sample(range(size.patients), min(PAGE_PATIENTS, size.patients))
                patient_ids = canonical_patient_ids(self.first_patient + n for n in named)
                patient, action, resource = None, "record.list", None
            content = (at, actor, action, "record", resource, "allowed", "10.0.0.7",
                       f"bench{event_id}", None, patient, department, patient_ids)  # fmt: skip
            previous = link(previous, digest_of(*content))
            rows.append((event_id, *content, previous))
        return rows

    def logins(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Past logins (token families: a week's, most expired, some revoked) and as many
        revoked access tokens (logouts) not yet expired."""
        families, revoked = [], []
        for n in range(self.size.logins):
            user = self.first_patient + self.rng.randrange(self.size.patients)
            created = self.now - timedelta(days=7) + timedelta(days=7) * n / self.size.logins
            revoked_at = created + timedelta(hours=1) if n % 5 == 0 else None
            families.append(
                (f"{n:032x}", user, f"{n:032x}", created, created + timedelta(days=7), revoked_at)
            )
            revoked.append((f"{n + self.size.logins:032x}", self.now + timedelta(minutes=15)))
        return families, revoked


USER_COLUMNS = (
    "id", "username", "username_key", "email", "email_key", "full_name", "full_name_key",
    "password_hash", "role", "is_active", "tokens_valid_after", "created_at",
)  # fmt: skip
RECORD_COLUMNS = (
    "id", "patient_id", "department_id", "author_id", "diagnosis", "observations",
    "treatments", "notes", "version", "created_at", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("id", *CONTENT_FIELDS, "hash")
VERSION_COLUMNS = (
    "id", "record_id", "version", "patient_id", "department_id", "author_id", "diagnosis",
    "observations", "treatments", "notes", "created_at", "updated_at",
)  # fmt: skip


async def _drop_constraints(conn: asyncpg.Connection) -> list[str]:
    """Drop every foreign key, and the keys and indexes of the loaded tables; return the
    statements that recreate them exactly (keys first, then indexes, then foreign keys)."""
    tables = list(LOADED_TABLES + RECORD_TABLES + HISTORY_TABLES)
    foreign = await conn.fetch(
        """SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
           FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"""
    )
    keys = await conn.fetch(
        """SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def,
                  conindid
           FROM pg_constraint WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY($1)""",
        tables,
    )
    indexes = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i
           WHERE i.indrelid::regclass::text = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        tables,
    )
    recreate = [f'ALTER TABLE {k["tbl"]} ADD CONSTRAINT "{k["conname"]}" {k["def"]}' for k in keys]
    recreate += [i["def"] for i in indexes]
    recreate += [
        f'ALTER TABLE {f["tbl"]} ADD CONSTRAINT "{f["conname"]}" {f["def"]}' for f in foreign
    ]
    for f in foreign:
        await conn.execute(f'ALTER TABLE {f["tbl"]} DROP CONSTRAINT "{f["conname"]}"')
    for i in indexes:
        await conn.execute(f'DROP INDEX "{i["name"]}"')
    for k in keys:
        await conn.execute(f'ALTER TABLE {k["tbl"]} DROP CONSTRAINT "{k["conname"]}"')
    return recreate


async def _copy_records(url: str, gen: Generator) -> None:
    """Records and versions, on two connections at once (the server writes both in parallel)."""
    queue_size = 64
    queues: list[asyncio.Queue[list[tuple[Any, ...]] | None]] = [
        asyncio.Queue(queue_size),
        asyncio.Queue(queue_size),
    ]

    async def produce() -> None:
        batch: list[tuple[Any, ...]] = []
        for r in gen.records():
            batch.append(r)
            if len(batch) == 5000:
                await _put(batch)
                batch = []
        if batch:
            await _put(batch)
        for q in queues:
            await q.put(None)

    async def _put(batch: list[tuple[Any, ...]]) -> None:
        rid, pid, dep, aut, dia, obs, tre, notes, at = 0, 1, 2, 3, 4, 5, 6, 7, 8
        records = [
            (r[rid], r[pid], r[dep], r[aut], r[dia], r[obs], r[tre], r[notes], 1, r[at], r[at])
            for r in batch
        ]
        versions = [
            (r[rid], r[rid], 1, r[pid], r[dep], r[aut], r[dia], r[obs], r[tre], r[notes],
             r[at], r[at])
            for r in batch
        ]  # fmt: skip
        await queues[0].put(records)
        await queues[1].put(versions)

    async def consume(
        queue: asyncio.Queue[list[tuple[Any, ...]] | None], table: str, columns: tuple[str, ...]
    ) -> None:
        async def rows() -> Any:
            while (batch := await queue.get()) is not None:
                for row in batch:
                    yield row

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET synchronous_commit = off")
            # The versions are copied beside the records: the trigger that keeps a record's
            # version as it is written (migration 0008) stays off for this copy.
            await conn.execute("SET session_replication_role = replica")
            await conn.copy_records_to_table(table, records=rows(), columns=columns)
        finally:
            await conn.close()

    await asyncio.gather(
        produce(),
        consume(queues[0], "patient_records", RECORD_COLUMNS),
        consume(queues[1], "patient_record_versions", VERSION_COLUMNS),
    )


async def _copy_history(url: str, conn: asyncpg.Connection, gen: Generator) -> None:
    """The trail (chained, its list pages linked by the app's own linking run) and the
    logins that a week of use leaves. The planner sees them from the start, as it would
    in service: plans made over an empty trail scan it whole, and a connection keeps its
    plans until the table is analysed again (autovacuum, off on this server)."""
    events = gen.trail()
    if events:
        await conn.copy_records_to_table("audit_events", records=events, columns=EVENT_COLUMNS)
        last_id, last_hash = events[-1][0], events[-1][-1]
        await conn.execute(
            "UPDATE audit_chain_head SET last_event_id = $1, last_hash = $2", last_id, last_hash
        )
        await _link_pages(url)
    families, revoked = gen.logins()
    await conn.copy_records_to_table(
        "token_families",
        records=families,
        columns=("id", "user_id", "current_refresh_jti", "created_at", "expires_at", "revoked_at"),
    )
    await conn.copy_records_to_table(
        "revoked_tokens", records=revoked, columns=("jti", "expires_at")
    )


async def _link_pages(url: str) -> None:
    """Every list page of the trail linked to its patients, in one run of audit.links."""
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with async_sessionmaker(engine)() as session:
            await link_pending(session, limit=2**31)
            await session.commit()
    finally:
        await engine.dispose()


async def load(url: str, size: Size, password_hash: str) -> dict[str, float]:
    """Fill a migrated, empty database; returns the seconds each phase took."""
    url = server_url(url)
    timings: dict[str, float] = {}
    gen = Generator(size, password_hash)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        recreate = await _drop_constraints(conn)
        await conn.copy_records_to_table(
            "departments",
            records=gen.departments(),
            columns=("id", "name", "name_key", "description", "location", "specialization",
                     "created_at"),
        )  # fmt: skip
        await conn.copy_records_to_table("users", records=gen.users(), columns=USER_COLUMNS)
        await conn.copy_records_to_table(
            "doctor_profiles",
            records=gen.doctor_profiles(),
            columns=("user_id", "department_id", "specialization", "license_number"),
        )
        await conn.copy_records_to_table(
            "patient_profiles",
            records=gen.patient_profiles(),
            columns=("user_id", "date_of_birth", "sex", "phone"),
        )
        timings["users"] = time.perf_counter() - started

        started = time.perf_counter()
        await _copy_records(url, gen)
        timings["records"] = time.perf_counter() - started

        started = time.perf_counter()
        await _copy_history(url, conn, gen)
        timings["history"] = time.perf_counter() - started

        started = time.perf_counter()
        for statement in recreate:
            await conn.execute(statement)
        for table in ("users", "departments", "patient_records", "patient_record_versions",
                      "audit_events"):  # fmt: skip
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        timings["indexes"] = time.perf_counter() - started

        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        timings["vacuum_analyze"] = time.perf_counter() - started
        # The planner's cost of a random page on SSD, as docs/deploying.md recommends
        # (PostgreSQL's default, 4, is a spinning disk's): for the connections to come.
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{database}" SET random_page_cost = {RANDOM_PAGE_COST}')
    finally:
        await conn.close()
    return timings


async def recreate_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server_url(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def migrate(url: str) -> None:
    """`alembic upgrade head` (its env.py runs its own event loop: call outside one)."""
    from alembic import command

    from app.migrations import alembic_config

    asyncpg_url = server_url(url).replace("postgresql://", "postgresql+asyncpg://", 1)
    command.upgrade(alembic_config(asyncpg_url, configure_logger=False), "head")


def known_password_hash() -> str:
    from app.core.security import hash_password_sync

    return hash_password_sync(PASSWORD)


@dataclass
class SeedReport:
    size: str
    database: str
    url: str
    counts: dict[str, int]
    seconds: dict[str, float]


def seed(size_name: str, server: str = DEFAULT_SERVER) -> SeedReport:
    size = SIZES[size_name]
    name = f"hms_bench_{size_name}"
    url = database_url(server, name)
    seconds: dict[str, float] = {}
    total = time.perf_counter()
    started = time.perf_counter()
    asyncio.run(recreate_database(server, name))
    migrate(url)
    seconds["create_and_migrate"] = time.perf_counter() - started
    seconds.update(asyncio.run(load(url, size, known_password_hash())))
    seconds["total"] = time.perf_counter() - total
    return SeedReport(
        size=size_name,
        database=name,
        url=url,
        counts=asdict(size) | {"users": 1 + size.doctors + size.patients},
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("--server", default=DEFAULT_SERVER)
    args = parser.parse_args()
    report = seed(args.size, args.server)
    print(f"seeded {report.database}: {report.counts}")
    print("seconds: " + ", ".join(f"{k} {v}" for k, v in report.seconds.items()))


if __name__ == "__main__":
    main()
