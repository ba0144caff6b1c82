"""SQL of the audit trail: the chained append, the streamed walk over the chain, the lists."""

import weakref
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Select,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from app.audit import policy
from app.audit.chain import CONTENT_FIELDS, canonical_time, digest_of, link
from app.audit.models import AuditChainHead, AuditEvent, AuditLinkState, AuditPatientLink
from app.auth.caller import TOKEN_CALLER, scoped
from app.core.db import AnySelect, UTCDateTime, dialect_name, postgres_string
from app.core.pagination import MAX_LIMIT, keyset_page, written
from app.users.models import Role, User

CHAIN_HEAD_ID = 1
LINK_STATE_ID = 1


@dataclass(frozen=True, slots=True)
class NewEvent:
    at: datetime
    actor_id: int | None
    action: str
    resource_type: str
    resource_id: int | None
    outcome: str
    ip: str | None
    request_id: str | None
    emergency_grant_id: int | None = None
    patient_id: int | None = None
    department_id: int | None = None
    patient_ids: str | None = None  # several patients (see AuditEvent): `[3,17,42]`

    def digest(self) -> str:
        return digest_of(*_content(self))


# Any number of events in one statement on PostgreSQL: the chain is computed by the server,
# in the events' order, from the head it locks (a second transaction waits for that lock
# until the first commits, then reads its hash: concurrent appends in any number of
# processes form one chain), and ids follow the chain order (rows are inserted in ORDER BY n).
# The events come as one JSON array: the driver encodes array parameters element by element,
# at a cost to the process many times that of writing the JSON.
_APPEND_POSTGRES = text(
    """
    WITH RECURSIVE head AS (
        SELECT last_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE
    ), input AS (
        SELECT * FROM json_to_recordset(CAST(:events AS json)) AS t(
            n bigint, at timestamptz, actor_id bigint, action text, resource_type text,
            resource_id bigint, outcome text, ip text, request_id text,
            emergency_grant_id bigint, patient_id bigint, department_id bigint,
            patient_ids text, digest text)
    ), chain (n, hash) AS (
        SELECT 0::bigint, (SELECT last_hash FROM head)::text
        UNION ALL
        SELECT input.n, encode(sha256(convert_to(chain.hash || input.digest, 'UTF8')), 'hex')
        FROM chain JOIN input ON input.n = chain.n + 1
    ), event AS (
        INSERT INTO audit_events (at, actor_id, action, resource_type, resource_id, outcome,
            ip, request_id, emergency_grant_id, patient_id, department_id, patient_ids, hash)
        SELECT input.at, input.actor_id, input.action, input.resource_type,
            input.resource_id, input.outcome, input.ip, input.request_id,
            input.emergency_grant_id, input.patient_id, input.department_id,
            input.patient_ids, chain.hash
        FROM input JOIN chain ON chain.n = input.n ORDER BY input.n
        RETURNING id
    )
    UPDATE audit_chain_head
    SET last_event_id = (SELECT max(id) FROM event),
        last_hash = (SELECT hash FROM chain ORDER BY n DESC LIMIT 1)
    WHERE id = 1
    """
)

# An event's content in CONTENT_FIELDS order, as a tuple.
_content = attrgetter(*CONTENT_FIELDS)


def _as_json(events: Sequence[NewEvent]) -> str:
    """The statement's one parameter, `events`: the events in order, each with its position `n`
    and the digest of its canonical content (its time written as the chain writes it)."""
    rows = []
    for n, event in enumerate(events, 1):
        content = _content(event)
        row = dict(zip(CONTENT_FIELDS, content, strict=True))
        row["at"] = canonical_time(event.at)
        row["n"] = n
        row["digest"] = digest_of(*content)
        rows.append(row)
    return orjson.dumps(rows).decode()


# The append prepared once per driver connection: sent as a script, it would be parsed and
# planned at every append, which costs the server as much as running it.
_APPEND_PREPARED = "audit_append"
_prepared_on: "weakref.WeakSet[Any]" = weakref.WeakSet()


async def append_on_driver(connection: Any, events: Sequence[NewEvent], then: str = "") -> None:
    """`append` on PostgreSQL's driver connection, followed in the same message by `then`
    (the statement that ends the caller's transaction, if it has one; without one, the
    append commits on its own). The events are written in as a string constant.

    The server runs both statements as it receives them, so the chain head's lock, which
    the append takes, is held until the commit without waiting for the process to come
    back and send it (under load, after the turn of every other request queued in its
    event loop)."""
    if not events:
        if then:
            await connection.execute(then)
        return
    if connection not in _prepared_on:
        exists = "SELECT EXISTS (SELECT FROM pg_prepared_statements WHERE name = $1)"
        if not await connection.fetchval(exists, _APPEND_PREPARED):
            statement = _APPEND_POSTGRES.text.replace(":events", "$1")
            await connection.execute(f"PREPARE {_APPEND_PREPARED} (text) AS {statement}")
        _prepared_on.add(connection)
    events_sql = postgres_string(_as_json(events))
    await connection.execute(f"EXECUTE {_APPEND_PREPARED} ({events_sql});\n{then}")


async def append(bind: AsyncSession | AsyncConnection, events: Sequence[NewEvent]) -> None:
    """Append events to the chain, in the transaction of `bind`, in a constant number of
    statements whatever their count: one on PostgreSQL, three on SQLite."""
    if not events:
        return
    if dialect_name(bind) == "postgresql":
        await bind.execute(_APPEND_POSTGRES, {"events": _as_json(events)})
        return
    # SQLite holds the write lock from BEGIN IMMEDIATE on: the head is read, the chain
    # computed here, the events inserted and the head moved, all under that lock.
    last_hash = await bind.scalar(
        select(AuditChainHead.last_hash).where(AuditChainHead.id == CHAIN_HEAD_ID)
    )
    rows = []
    for event in events:
        last_hash = link(last_hash or "", event.digest())
        rows.append({**_fields(event), "hash": last_hash})
    # RETURNING promises no order on SQLite, but ids are taken in insertion order under the
    # write lock: the largest is the last event's (the walk by id relies on it too).
    inserted = (await bind.execute(insert(AuditEvent).returning(AuditEvent.id), rows)).scalars()
    await bind.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == CHAIN_HEAD_ID)
        .values(last_event_id=max(inserted), last_hash=last_hash)
    )


def _fields(event: NewEvent) -> dict[str, object]:
    return dict(zip(CONTENT_FIELDS, _content(event), strict=True))


# The columns the chain covers, in a fixed order: verification reads plain rows, not ORM
# objects (a million identity-mapped entities would cost both time and memory).
# The walk over the chain on PostgreSQL, in CONTENT_FIELDS order. The server writes the
# instant in its canonical text form (what chain.canonical_time makes of a datetime).
_CHAIN_WALK_POSTGRES = "SELECT id, {fields}, hash FROM audit_events ORDER BY id".format(
    fields=", ".join(
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        if name == "at"
        else name
        for name in CONTENT_FIELDS
    )
)


async def stream_chain(session: AsyncSession, batch: int = 10_000) -> AsyncGenerator[Sequence[Any]]:
    """Every event in chain order as a row (id, *CONTENT_FIELDS, hash), `batch` rows at a time;
    `at` is a datetime, or on PostgreSQL already its canonical text.

    A server-side cursor inside the session's transaction: memory stays bounded whatever
    the length of the chain, and its single snapshot sees a consistent prefix of the chain.
    On PostgreSQL the cursor is asyncpg's own: its C decoding of plain records costs half
    of what building SQLAlchemy rows does, and this walk is the whole cost of a verify.

    A caller that may stop early walks it inside `contextlib.aclosing`: the cursor, and the
    read-only transaction opened for it, then end before the connection does anything else
    (left to the garbage collector, they would end later, in the middle of another statement
    on the same connection, or in the pool).
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(select(1))  # the driver opens the transaction lazily
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        if raw.is_in_transaction():
            async for record in raw.cursor(_CHAIN_WALK_POSTGRES, prefetch=batch):
                yield record
            return
        # A read request runs in autocommit mode: the cursor needs a transaction of its own.
        async with raw.transaction(isolation="repeatable_read", readonly=True):
            async for record in raw.cursor(_CHAIN_WALK_POSTGRES, prefetch=batch):
                yield record
        return
    columns = (
        AuditEvent.id,
        *(getattr(AuditEvent, name) for name in CONTENT_FIELDS),
        AuditEvent.hash,
    )
    query = select(*columns).order_by(AuditEvent.id).execution_options(yield_per=batch)
    async with connection.stream(query) as result:
        async for partition in result.partitions():
            for row in partition:
                yield row


@dataclass(frozen=True, slots=True)
class ChainHead:
    last_event_id: int | None
    last_hash: str


async def chain_head(session: AsyncSession) -> ChainHead | None:
    """The head as the database holds it now (read with a query, never the identity map)."""
    row = (
        await session.execute(
            select(AuditChainHead.last_event_id, AuditChainHead.last_hash).where(
                AuditChainHead.id == CHAIN_HEAD_ID
            )
        )
    ).one_or_none()
    return ChainHead(row.last_event_id, row.last_hash) if row else None


async def first_event_after(session: AsyncSession, event_id: int | None) -> int | None:
    query = select(func.min(AuditEvent.id))
    if event_id is not None:
        query = query.where(AuditEvent.id > event_id)
    return await session.scalar(query)


@dataclass(frozen=True, slots=True)
class EventFilters:
    actor_id: int | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


EVENT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.at,
    AuditEvent.actor_id,
    AuditEvent.action,
    AuditEvent.resource_type,
    AuditEvent.resource_id,
    AuditEvent.outcome,
    AuditEvent.ip,
    AuditEvent.request_id,
    AuditEvent.emergency_grant_id,
)
EVENT_FIELDS = tuple(column.key for column in EVENT_COLUMNS)
_FILTERS = {
    "actor_id": AuditEvent.actor_id == bindparam("actor_id"),
    "action": AuditEvent.action == bindparam("action"),
    "resource_type": AuditEvent.resource_type == bindparam("resource_type"),
    "resource_id": AuditEvent.resource_id == bindparam("resource_id"),
    "since": AuditEvent.at >= bindparam("since", type_=UTCDateTime()),
    "until": AuditEvent.at < bindparam("until", type_=UTCDateTime()),
}


@lru_cache(maxsize=1024)
def events_page(limit: int, filters: frozenset[str]) -> AnySelect:
    """A page of the trail in id order, with the given filters (EventFilters.given binds
    them). Binds after."""
    query = select(*EVENT_COLUMNS).where(
        policy.trail_visible(TOKEN_CALLER), *(_FILTERS[name] for name in sorted(filters))
    )
    return scoped(keyset_page(query, AuditEvent.id, limit))


ACCESS_LOG_FIELDS = (
    "id",
    "at",
    "actor_id",
    "actor_name",
    "actor_role",
    "department_id",
    "action",
    "outcome",
    "emergency",
)
_PATIENT_ID: BindParameter[Any] = bindparam("patient_id")
# The keyset of pages newest first: ids below `before` (the last id seen, or above all).
BEFORE = bindparam("before", type_=BigInteger)
NEWEST = 2**63 - 1


def log_page(dialect: str, limit: int) -> AnySelect:
    """A page of the events that touched one patient's data, newest first (rows of
    ACCESS_LOG_FIELDS, the look-ahead row included), with the actor's name and role: those
    naming him alone (patient_id), the pages naming him among others that are linked
    (audit.links), and those not linked yet, read from the chain after the link mark.
    Binds patient_id, before.

    Each of the three walks its own index backwards ((patient_id, id), the links' key, the
    events' key down to the mark) for at most a page; the newest of all make the page.
    """
    rows = limit + 1
    direct = select(AuditEvent.id.label("id")).where(
        AuditEvent.patient_id == _PATIENT_ID, AuditEvent.id < BEFORE
    )
    unlinked = select(AuditEvent.id.label("id")).where(
        _not_linked_yet(),
        AuditEvent.patient_ids.is_not(None),
        _names(_PATIENT_ID),
        AuditEvent.id < BEFORE,
    )
    linked = _linked(dialect, rows)
    # Each inside a subquery: SQLite takes no ORDER BY or LIMIT on a member of a UNION.
    newest = [
        query.order_by(query.selected_columns.id.desc()).limit(written(rows)).subquery()
        for query in (direct, linked, unlinked)
    ]
    hits = union_all(*(select(page.c.id) for page in newest)).subquery()
    return (
        select(
            AuditEvent.id,
            AuditEvent.at,
            AuditEvent.actor_id,
            User.full_name.label("actor_name"),
            User.role.label("actor_role"),
            AuditEvent.department_id,
            AuditEvent.action,
            AuditEvent.outcome,
            AuditEvent.emergency_grant_id.is_not(None).label("emergency"),
        )
        .join(hits, hits.c.id == AuditEvent.id)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
        .limit(written(rows))
    )


@lru_cache(maxsize=2 * MAX_LIMIT)
def access_log_page(dialect: str, limit: int) -> AnySelect:
    """A patient's access log page (log_page) for the caller: (found, visible, then
    ACCESS_LOG_FIELDS), `found` NULL for an id that is no patient, `visible` false for a
    caller who may not read his log. Binds patient_id, before."""
    log = log_page(dialect, limit).subquery()
    visible = policy.access_log_visible(TOKEN_CALLER, _PATIENT_ID)
    patient = aliased(User)
    query = (
        select(patient.id.label("found"), visible.label("visible"), *log.c)
        .select_from(patient)
        .outerjoin(log, visible)
        .where(patient.id == _PATIENT_ID, patient.role == Role.PATIENT.value)
    )
    return scoped(query)


def head_event_id_query() -> Select[int | None]:
    return select(AuditChainHead.last_event_id).where(AuditChainHead.id == CHAIN_HEAD_ID)


def head_event_id() -> ScalarSelect[int]:
    """The id of the chain's last event, as a subquery: the upper bound of the ranges of
    events after the link mark (see `_not_linked_yet`, `links.pending_events`)."""
    return (
        select(AuditChainHead.last_event_id)
        .where(AuditChainHead.id == CHAIN_HEAD_ID)
        .scalar_subquery()
    )


def _not_linked_yet() -> ColumnElement[bool]:
    """The events after the link mark, up to the chain's head. Bounded on both sides, the
    range is one the planner prices as small however stale its statistics of the trail."""
    mark = select(AuditLinkState.linked_event_id).where(AuditLinkState.id == LINK_STATE_ID)
    return AuditEvent.id.between(mark.scalar_subquery() + 1, head_event_id())


def _names(patient_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """The event's patient_ids (canonical: `[3,17,42]`) name this patient."""
    delimited = func.replace(func.replace(AuditEvent.patient_ids, "[", ","), "]", ",")
    return delimited.contains(literal(",") + cast(patient_id, String) + literal(","))


def _linked(dialect: str, rows: int) -> AnySelect:
    """The ids in the patient's newest `rows` link rows before the cursor: each row holds
    at least one such id, and a later row only later ones, so these rows are enough."""
    links = select(AuditPatientLink.event_ids).where(
        AuditPatientLink.patient_id == _PATIENT_ID, AuditPatientLink.first_event_id < BEFORE
    )
    newest = links.order_by(AuditPatientLink.first_event_id.desc()).limit(written(rows)).subquery()
    if dialect == "postgresql":
        ids = func.json_array_elements_text(cast(newest.c.event_ids, JSON)).table_valued("value")
    else:
        ids = func.json_each(newest.c.event_ids).table_valued("value")
    event_id = cast(ids.c.value, BigInteger)
    return (
        select(event_id.label("id")).select_from(newest).join(ids, true()).where(event_id < BEFORE)
    )
