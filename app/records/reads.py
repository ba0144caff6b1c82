"""The hot reads of patient records on PostgreSQL: one statement, then the audit append.

Every ward's screens read `GET /api/patient_records/{id}` and the record list all day. On
PostgreSQL each of the two is a single statement on the driver that
1. checks the token against the database as `get_principal` does (user active, token
   issued after `tokens_valid_after`, jti not revoked, login not revoked), taking the
   role and department from the user row;
2. reads only what that caller may see, with the scopes of `repository._read_scope`;
and its rows become the JSON answer directly (no ORM objects, no response model). The
access's audit events, exactly those `service` records (refusals included: 403 for a role
that may not read records, 404 for a record out of sight), are committed before the answer
leaves, in one append shared with the other requests waiting (`audit.batcher`).

The service path stays the one for SQLite and behind PgBouncer (whose transaction mode
needs the statement inside a transaction); the same HTTP tests run both, one per database,
and tests/records/test_reads.py holds their answers to each other.
"""

from functools import lru_cache
from typing import Any, Unpack

import orjson
from fastapi import Request, Response

from app.audit import service as audit
from app.audit.repository import NewEvent
from app.audit.service import Subject
from app.core.context import RequestMeta
from app.core.db import driver_connection, utcnow
from app.core.dependencies import request_meta
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.pagination import MAX_LIMIT, Page, next_link
from app.core.responses import NO_STORE
from app.core.security import TokenClaims
from app.records.service import page_subjects

# The record's columns, first in every row of the statements below (`_record` relies on it).
FIELDS = (
    "id",
    "patient_id",
    "department_id",
    "author_id",
    "diagnosis",
    "observations",
    "treatments",
    "notes",
    "version",
    "created_at",
    "updated_at",
)
_COLUMNS = ", ".join(f"r.{field}" for field in FIELDS)
READERS = ("doctor", "patient")

# $1-$4 in every statement: the token's user, jti, login (family) and issue time.
_CALLER = """
    caller AS (
        SELECT u.id, u.role, d.department_id
        FROM users u LEFT JOIN doctor_profiles d ON d.user_id = u.id
        WHERE u.id = $1 AND u.is_active
          AND u.tokens_valid_after <= $4::timestamptz  -- security.issued_before
          AND NOT EXISTS (SELECT FROM revoked_tokens WHERE jti = $2)
          AND EXISTS (SELECT FROM token_families f
                      WHERE f.id = $3 AND f.user_id = u.id AND f.revoked_at IS NULL)
    )"""
# A grant counts while unexpired at $5 (now); the latest-expiring one is named in the
# audit event.
_GRANT_OF_CALLER = """
    SELECT g.id FROM emergency_grants g
    WHERE g.doctor_id = c.id AND g.patient_id = r.patient_id AND g.expires_at > $5"""
_VISIBLE_TO_CALLER = f"""
    (c.role = 'patient' AND r.patient_id = c.id)
    OR (c.role = 'doctor' AND (r.department_id = c.department_id
                               OR EXISTS ({_GRANT_OF_CALLER})))"""
# The grant is only what made the record visible when it is outside his department.
_GRANT_USED = f"""
    CASE WHEN c.role = 'doctor' AND r.department_id IS DISTINCT FROM c.department_id
         THEN ({_GRANT_OF_CALLER} ORDER BY g.expires_at DESC, g.id DESC LIMIT 1)
    END"""
# $5: now; $6: the record's id.
GET_ONE = f"""
WITH {_CALLER},
found AS (
    SELECT {_COLUMNS}, {_GRANT_USED} AS grant_id
    FROM caller c JOIN patient_records r ON r.id = $6
    WHERE {_VISIBLE_TO_CALLER}
)
SELECT found.*, c.id AS caller_id, c.role, c.department_id AS caller_department_id
FROM caller c LEFT JOIN found ON true
"""

# The page holds one row more than asked for ({rows}): it says whether there is a next
# page. The page size is written into the statement, not bound: with `LIMIT $n` the
# planner's generic plan would expect a tenth of the scope's rows (100,000 in a
# department of the large seed), so PostgreSQL would plan every execution afresh
# (0.3 ms) and the list would slow down as the table grows. One statement per page size
# (1 to 200) is prepared once per connection.

# $5: the keyset (the last id of the previous page, or 0). Each scope takes its own index
# path ((department_id, id) or (patient_id, id)) in id order.
_PAGE_OF_CALLER = f"""
    page AS (
        (SELECT {_COLUMNS}, NULL::bigint AS grant_id FROM patient_records r
         WHERE r.department_id = (SELECT department_id FROM caller WHERE role = 'doctor')
           AND r.id > $5 ORDER BY r.id LIMIT {{rows}})
        UNION ALL
        (SELECT {_COLUMNS}, NULL::bigint FROM patient_records r
         WHERE r.patient_id = (SELECT id FROM caller WHERE role = 'patient')
           AND r.id > $5 ORDER BY r.id LIMIT {{rows}})
    )"""
# $5: now; $6: the keyset; $7: one patient. Only there do a doctor's emergency grants
# widen the list.
_PAGE_OF_PATIENT = f"""
    page AS (
        SELECT {_COLUMNS}, {_GRANT_USED} AS grant_id
        FROM caller c JOIN patient_records r ON r.patient_id = $7 AND r.id > $6
        WHERE {_VISIBLE_TO_CALLER}
        ORDER BY r.id LIMIT {{rows}}
    )"""


# No ORDER BY on the whole: sorting the page's wide rows (records of a few kB) took a third
# of the statement's time; `list_records` puts the rows in order instead.
def _list_statement(page_cte: str) -> str:
    return f"""
WITH {_CALLER},
{page_cte}
SELECT page.*, c.id AS caller_id, c.role, c.department_id AS caller_department_id
FROM caller c LEFT JOIN page ON true
"""


_LIST_OWN = _list_statement(_PAGE_OF_CALLER)
_LIST_OF_PATIENT = _list_statement(_PAGE_OF_PATIENT)


@lru_cache(maxsize=MAX_LIMIT)
def list_own(limit: int) -> str:
    """The caller's own records (a doctor's department's, a patient's), `limit` per page."""
    return _LIST_OWN.format(rows=int(limit) + 1)


@lru_cache(maxsize=MAX_LIMIT)
def list_of_patient(limit: int) -> str:
    """One patient's records that the caller may see, `limit` per page."""
    return _LIST_OF_PATIENT.format(rows=int(limit) + 1)


def available(app: Any) -> bool:
    """PostgreSQL, reached directly (not through PgBouncer)."""
    state = app.state
    return bool(state.engine.dialect.name == "postgresql" and not state.settings.db_pgbouncer)


async def _run(request: Request, claims: TokenClaims, statement: str, *args: Any) -> list[Any]:
    """The caller's row and what he may see; 401 when the database refuses the token."""
    async with driver_connection(request.app.state.sessionmaker.kw["bind"]) as connection:
        rows: list[Any] = await connection.fetch(
            statement, claims.user_id, claims.jti, claims.family, claims.issued_at, *args
        )
    if not rows:
        raise Unauthorized()
    request.state.user_id = claims.user_id  # for the access log line
    return rows


def _event(
    meta: RequestMeta, caller: Any, action: str, resource_type: str, **subject: Unpack[Subject]
) -> NewEvent:
    """One event of the caller's access, as `audit.record_by` makes it."""
    return audit.new_event(
        meta=meta,
        actor_id=caller["caller_id"],
        department_id=caller["caller_department_id"],
        action=action,
        resource_type=resource_type,
        **subject,
    )


async def _audit(request: Request, caller: Any, events: list[NewEvent]) -> None:
    """Commit the access's events (as service records them) before anything is answered;
    a role that may not read records is refused (403) and that refusal recorded instead."""
    forbidden = caller["role"] not in READERS
    if forbidden:
        denied = audit.Outcome.DENIED
        meta = request_meta(request)
        events = [_event(meta, caller, "access.forbidden", "endpoint", outcome=denied)]
    if events:  # else nothing was shown: an empty page
        bind = request.app.state.sessionmaker.kw["bind"]
        await request.app.state.audit_batcher.append(bind, events)
    if forbidden:
        raise Forbidden()


def _record_id(row: Any) -> int:
    return int(row["id"])


def _record(row: Any) -> dict[str, Any]:
    return dict(zip(FIELDS, row, strict=False))  # the record's columns come first


def _json(body: Any, headers: dict[str, str]) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_UTC_Z)
    return Response(content, media_type="application/json", headers=headers)


async def get_record(request: Request, claims: TokenClaims, record_id: int) -> Response:
    [row] = await _run(request, claims, GET_ONE, utcnow(), record_id)
    visible = row["id"] is not None  # else its columns are all null: the record is unseen
    read = _event(
        request_meta(request),
        row,
        "record.read",
        "record",
        resource_id=record_id,
        outcome=audit.Outcome.ALLOWED if visible else audit.Outcome.DENIED,
        patient_id=row["patient_id"],
        emergency_grant_id=row["grant_id"],
    )
    await _audit(request, row, [read])
    if not visible:
        raise NotFound("Record not found")
    return _json(_record(row), {"Cache-Control": NO_STORE, "ETag": f'"{row["version"]}"'})


async def list_records(
    request: Request, claims: TokenClaims, page: Page, patient_id: int | None
) -> Response:
    after = page.after_id or 0
    if patient_id is None:
        rows = await _run(request, claims, list_own(page.limit), after)
    else:
        statement = list_of_patient(page.limit)
        rows = await _run(request, claims, statement, utcnow(), after, patient_id)
    shown = sorted((row for row in rows if row["id"] is not None), key=_record_id)[: page.limit]
    patients, used_grant = page_subjects((row["patient_id"], row["grant_id"]) for row in shown)
    events: list[NewEvent] = []
    if patients:  # one event for the page, none for an empty one (as service.list_records)
        read = _event(
            request_meta(request),
            rows[0],
            "record.list",
            "record",
            patients=patients,
            emergency_grant_id=used_grant,
        )
        events.append(read)
    await _audit(request, rows[0], events)
    headers = {"Cache-Control": NO_STORE}
    if len(rows) > page.limit:
        headers["Link"] = next_link(request, shown[-1]["id"])
    return _json([_record(row) for row in shown], headers)
