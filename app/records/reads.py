"""The hot reads of patient records on PostgreSQL: one statement, one round trip.

Every ward's screens read `GET /api/patient_records/{id}` and the record list all day. On
PostgreSQL each of the two is a single statement that
1. checks the token against the database as `get_principal` does (user active, token
   issued after `tokens_valid_after`, jti not revoked, login not revoked), taking the
   role and department from the user row;
2. reads only what that caller may see, with the scopes of `repository._read_scope`;
3. appends the access's audit events, exactly those `service` records, chained by the
   server (`audit.chain_sql`), including the refusals (403 for a role that may not read
   records, 404 for a record out of sight);
and its rows become the JSON answer directly (no ORM objects, no response model).

The service path stays the one for SQLite and behind PgBouncer (whose transaction mode
needs the statement inside a transaction); the same HTTP tests run both, one per database,
and tests/records/test_reads.py holds their answers to each other.
"""

from typing import Any

import orjson
from fastapi import Request, Response

from app.audit.chain_sql import chained_append_sql
from app.core.db import driver_connection, utcnow
from app.core.dependencies import request_meta
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.pagination import Page, next_link
from app.core.security import TokenClaims

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

# $1-$7 in every statement: the token's user, jti, login (family) and issue time; the
# instant of the access, and the request's origin for the audit events.
_CALLER = """
    caller AS (
        SELECT u.id, u.role, d.department_id
        FROM users u LEFT JOIN doctor_profiles d ON d.user_id = u.id
        WHERE u.id = $1 AND u.is_active
          AND u.tokens_valid_after < $4::timestamptz + interval '1 second'
          AND NOT EXISTS (SELECT FROM revoked_tokens WHERE jti = $2)
          AND EXISTS (SELECT FROM token_families f
                      WHERE f.id = $3 AND f.user_id = u.id AND f.revoked_at IS NULL)
    )"""
# A grant counts while unexpired; the latest-expiring one is named in the audit event.
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
# A caller whose role may not read records gets a 403, recorded as service does.
_FORBIDDEN_EVENT = """
    SELECT 1, $5::timestamptz, c.id, 'access.forbidden', 'endpoint', NULL::bigint,
           'denied', $6::text, $7::text, NULL::bigint, NULL::bigint, c.department_id
    FROM caller c WHERE c.role NOT IN ('doctor', 'patient')"""
_EVENT_COLUMNS = (
    "n, at, actor_id, action, resource_type, resource_id, outcome, ip, request_id, "
    "emergency_grant_id, patient_id, department_id"
)

# $8: the record's id.
GET_ONE = f"""
WITH RECURSIVE {_CALLER},
found AS (
    SELECT {_COLUMNS}, {_GRANT_USED} AS grant_id
    FROM caller c JOIN patient_records r ON r.id = $8
    WHERE {_VISIBLE_TO_CALLER}
),
events ({_EVENT_COLUMNS}) AS (
    SELECT 1, $5::timestamptz, c.id, 'record.read', 'record', $8::bigint,
           CASE WHEN found.id IS NULL THEN 'denied' ELSE 'allowed' END, $6::text, $7::text,
           found.grant_id, found.patient_id, c.department_id
    FROM caller c LEFT JOIN found ON true
    WHERE c.role IN ('doctor', 'patient')
    UNION ALL {_FORBIDDEN_EVENT}
),
{chained_append_sql("events")}
SELECT c.role, found.* FROM caller c LEFT JOIN found ON true
"""

# $8: the keyset (the last id of the previous page, or 0); $9: the page size. The page
# holds one row more than asked for: it says whether there is a next page. Each scope
# takes its own index path ((department_id, id) or (patient_id, id)) in id order.
_PAGE_OF_CALLER = f"""
    page AS (
        (SELECT {_COLUMNS}, NULL::bigint AS grant_id FROM patient_records r
         WHERE r.department_id = (SELECT department_id FROM caller WHERE role = 'doctor')
           AND r.id > $8 ORDER BY r.id LIMIT $9 + 1)
        UNION ALL
        (SELECT {_COLUMNS}, NULL::bigint FROM patient_records r
         WHERE r.patient_id = (SELECT id FROM caller WHERE role = 'patient')
           AND r.id > $8 ORDER BY r.id LIMIT $9 + 1)
    )"""
# $10: one patient. Only there do a doctor's emergency grants widen the list.
_PAGE_OF_PATIENT = f"""
    page AS (
        SELECT {_COLUMNS}, {_GRANT_USED} AS grant_id
        FROM caller c JOIN patient_records r ON r.patient_id = $10 AND r.id > $8
        WHERE {_VISIBLE_TO_CALLER}
        ORDER BY r.id LIMIT $9 + 1
    )"""
# One event per patient whose data is shown, in order of first appearance, naming the
# first grant that showed one of his records.
_LIST_EVENTS = f"""
    events ({_EVENT_COLUMNS}) AS (
        SELECT row_number() OVER (ORDER BY min(shown.id)), $5::timestamptz, c.id,
               'record.list', 'record', NULL::bigint, 'allowed', $6::text, $7::text,
               (array_agg(shown.grant_id ORDER BY shown.id)
                    FILTER (WHERE shown.grant_id IS NOT NULL))[1],
               shown.patient_id, c.department_id
        FROM (SELECT * FROM page ORDER BY id LIMIT $9) shown, caller c
        GROUP BY shown.patient_id, c.id, c.department_id
        UNION ALL {_FORBIDDEN_EVENT}
    )"""


def _list_statement(page_cte: str) -> str:
    return f"""
WITH RECURSIVE {_CALLER},
{page_cte},
{_LIST_EVENTS},
{chained_append_sql("events")}
SELECT c.role, page.* FROM caller c LEFT JOIN page ON true ORDER BY page.id
"""


LIST_OWN = _list_statement(_PAGE_OF_CALLER)
LIST_OF_PATIENT = _list_statement(_PAGE_OF_PATIENT)


def available(request: Request) -> bool:
    """PostgreSQL, reached directly (not through PgBouncer)."""
    settings = request.app.state.settings
    return bool(request.app.state.engine.dialect.name == "postgresql" and not settings.db_pgbouncer)


async def _run(request: Request, claims: TokenClaims, statement: str, *args: Any) -> list[Any]:
    """Run a hot statement for the caller; 401/403 as the rows say (the refusal is already
    recorded by the statement itself)."""
    meta = request_meta(request)
    async with driver_connection(request.app.state.sessionmaker.kw["bind"]) as connection:
        rows: list[Any] = await connection.fetch(
            statement,
            claims.user_id,
            claims.jti,
            claims.family,
            claims.issued_at,
            utcnow(),
            meta.ip,
            meta.request_id,
            *args,
        )
    if not rows:
        raise Unauthorized()
    request.state.user_id = claims.user_id  # for the access log line
    if rows[0]["role"] not in READERS:
        raise Forbidden()
    return rows


def _record(row: Any) -> dict[str, Any]:
    return {field: row[field] for field in FIELDS}


def _json(body: Any, headers: dict[str, str]) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_UTC_Z)
    return Response(content, media_type="application/json", headers=headers)


async def get_record(request: Request, claims: TokenClaims, record_id: int) -> Response:
    rows = await _run(request, claims, GET_ONE, record_id)
    row = rows[0]
    if row["id"] is None:
        raise NotFound("Record not found")
    return _json(_record(row), {"Cache-Control": "no-store", "ETag": f'"{row["version"]}"'})


async def list_records(
    request: Request, claims: TokenClaims, page: Page, patient_id: int | None
) -> Response:
    after = page.after_id or 0
    if patient_id is None:
        rows = await _run(request, claims, LIST_OWN, after, page.limit)
    else:
        rows = await _run(request, claims, LIST_OF_PATIENT, after, page.limit, patient_id)
    records = [_record(row) for row in rows if row["id"] is not None]
    headers = {"Cache-Control": "no-store"}
    if len(records) > page.limit:
        records = records[: page.limit]
        headers["Link"] = next_link(request, records[-1]["id"])
    return _json(records, headers)
