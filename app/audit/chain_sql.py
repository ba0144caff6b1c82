"""The chained append written in SQL, for PostgreSQL statements that decide their own events.

A hot read (records.reads) checks the token, reads what the caller may see and appends
the audit events of that access in a single statement: the events depend on what the
statement finds (allowed or denied, which patient, which emergency grant), so their
content digest must be computed by the server too. `content_digest_sql` renders the very
bytes that `chain.digest_of` hashes; tests/audit/test_chain_sql.py holds the two to it.
"""

from app.audit.chain import CONTENT_FIELDS

_TEXT_FIELDS = frozenset({"action", "resource_type", "outcome", "ip", "request_id"})
# The server writes an instant as chain.canonical_time does: UTC, microseconds, "Z".
CANONICAL_TIME_SQL = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _json_value(alias: str, field: str) -> str:
    column = f"{alias}.{field}"
    if field == "at":
        return "'\"' || " + CANONICAL_TIME_SQL.format(column) + " || '\"'"
    if field in _TEXT_FIELDS:
        return f"coalesce(to_json({column}::text)::text, 'null')"
    return f"coalesce({column}::bigint::text, 'null')"


def content_digest_sql(alias: str) -> str:
    """SQL for the SHA-256 (hex) of the canonical content of the event row `alias`: the
    compact JSON array of CONTENT_FIELDS that orjson writes (`["…Z",7,"record.read",…]`)."""
    values = " || ',' || ".join(_json_value(alias, field) for field in CONTENT_FIELDS)
    return f"encode(sha256(convert_to('[' || {values} || ']', 'UTF8')), 'hex')"


def chained_append_sql(events: str) -> str:
    """CTEs (for a `WITH RECURSIVE` statement) that append the rows of the CTE `events` to
    the chain, in the order of their column `n` (1, 2, …), and move the chain head.

    `events` has the columns `n` and CONTENT_FIELDS. The head is locked (FOR UPDATE) only
    when there is an event to append; under the lock the statement sees the latest head
    (READ COMMITTED re-reads a row it waited for), so appends of any process form one chain.
    """
    columns = ", ".join(CONTENT_FIELDS)
    chosen = ", ".join(f"{events}.{field}" for field in CONTENT_FIELDS)
    return f"""
    chain_head AS (
        SELECT last_hash FROM audit_chain_head
        WHERE id = 1 AND EXISTS (SELECT FROM {events})
        FOR UPDATE
    ), chained (n, hash) AS (
        SELECT 0::bigint, (SELECT last_hash FROM chain_head)::text
        UNION ALL
        SELECT {events}.n::bigint, encode(sha256(convert_to(
            chained.hash || {content_digest_sql(events)}, 'UTF8')), 'hex')
        FROM chained JOIN {events} ON {events}.n = chained.n + 1
    ), appended AS (
        INSERT INTO audit_events ({columns}, hash)
        SELECT {chosen}, chained.hash
        FROM {events} JOIN chained ON chained.n = {events}.n
        ORDER BY {events}.n
        RETURNING id
    ), moved_head AS (
        UPDATE audit_chain_head
        SET last_event_id = (SELECT max(id) FROM appended),
            last_hash = (SELECT hash FROM chained ORDER BY n DESC LIMIT 1)
        WHERE id = 1 AND EXISTS (SELECT FROM appended)
        RETURNING last_event_id
    )"""
