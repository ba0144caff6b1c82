"""Unique keys of names become their NFKC-casefolded, trimmed form; rate-limit counters.

Usernames, emails and department names were unique by their casefolded text only:
'Ｃardiology' (a fullwidth C) and 'Cardiology ' stood beside 'Cardiology'. The keys
(`users.username_key`, `users.email_key`, `departments.name_key`, and the searched
`users.full_name_key`) are now compatibility-normalised (NFKC), casefolded and trimmed, and
their unique constraints hold that form. The stored names themselves do not change. The
lock-out counters (`login_failures`) are keyed the same way; two counters that become one
keep the higher count.

Existing rows that now share a key: the oldest row (lowest id) keeps the key; each later
one gets a placeholder key (" DUPLICATE 7 OF 3") that collides with nothing, now or later:
no key starts with a space under the new rule, none has capitals under the old one. Such a
user still logs in (a username cannot collide: usernames are ASCII without spaces), such a
department is still listed; an admin should rename them. Their table and ids, never their
names, are logged as warnings.

`rate_limit_counters` holds the per-address request counts of app.core.ratelimit.

Downgrading puts back the casefolded keys (the same placeholders for rows that would
collide under that rule) and drops the counters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
Rule = Callable[[str], str]


def key_0006(value: str) -> str:
    """app.users.models.casefold_key as of this revision (a migration keeps its own copy)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold()).strip()


def key_0005(value: str) -> str:
    return value.casefold()


@dataclass(frozen=True)
class Key:
    table: str
    source: str  # the column the key is made from
    key: str
    length: int
    unique: bool = True


KEYS = (
    Key("users", "username", "username_key", 150),
    Key("users", "email", "email_key", 254),
    Key("users", "full_name", "full_name_key", 600, unique=False),
    Key("departments", "name", "name_key", 100),
)


def _placeholder(row_id: int, keeper_id: int, length: int) -> str:
    return f" DUPLICATE {row_id} OF {keeper_id}"[:length]


def _rekey(bind: sa.Connection, spec: Key, rule: Rule) -> None:
    table = sa.table(
        spec.table, sa.column("id", sa.BigInteger), sa.column(spec.source), sa.column(spec.key)
    )
    rows = bind.execute(
        sa.select(table.c.id, table.c[spec.source], table.c[spec.key]).order_by(table.c.id)
    ).all()
    wanted: dict[int, str] = {}
    keepers: dict[str, int] = {}
    duplicates: list[int] = []
    for row_id, source, current in rows:
        # A key that normalisation made longer than its column is kept at its beginning.
        key = rule(source)[: spec.length]
        if spec.unique and key in keepers:
            duplicates.append(row_id)
            key = _placeholder(row_id, keepers[key], spec.length)
        else:
            keepers.setdefault(key, row_id)
        if key != current:
            wanted[row_id] = key
    if duplicates:
        logger.warning(
            "%s.%s: rows %s share the key of an older row; they keep their %s under a "
            "placeholder key: rename them",
            spec.table,
            spec.key,
            ", ".join(map(str, duplicates)),
            spec.source,
        )
    if not wanted:
        return
    update = table.update().where(table.c.id == sa.bindparam("row_id"))
    if spec.unique:
        # First out of each other's way (a row's new key may be another's old one).
        bind.execute(
            update.values({spec.key: sa.bindparam("temporary")}),
            [{"row_id": i, "temporary": f" MOVING {i}"} for i in wanted],
        )
    bind.execute(
        update.values({spec.key: sa.bindparam("new_key")}),
        [{"row_id": i, "new_key": key} for i, key in wanted.items()],
    )


_failures = sa.table(
    "login_failures",
    sa.column("username_key"),
    sa.column("failures", sa.Integer),
    sa.column("window_started_at"),
)


def _rekey_login_failures(bind: sa.Connection, rule: Rule) -> None:
    """Counters are keyed by the key of the username tried; merged, the higher count wins."""
    rows = bind.execute(
        sa.select(_failures.c.username_key, _failures.c.failures, _failures.c.window_started_at)
    ).all()
    merged: dict[str, tuple[int, object]] = {}
    changed = False
    for key, failures, started in rows:
        new_key = rule(key)[:150]
        changed = changed or new_key != key
        if new_key not in merged or failures > merged[new_key][0]:
            merged[new_key] = (failures, started)
    if not changed:
        return
    bind.execute(_failures.delete())
    bind.execute(
        _failures.insert(),
        [
            {"username_key": key, "failures": failures, "window_started_at": started}
            for key, (failures, started) in merged.items()
        ],
    )


def _migrate(rule: Rule) -> None:
    bind = op.get_bind()
    for spec in KEYS:
        _rekey(bind, spec, rule)
    _rekey_login_failures(bind, rule)


def upgrade() -> None:
    _migrate(key_0006)
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    with op.batch_alter_table("rate_limit_counters") as batch:
        batch.create_index(
            batch.f("ix_rate_limit_counters_window_ends_at"), ["window_ends_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limit_counters") as batch:
        batch.drop_index(batch.f("ix_rate_limit_counters_window_ends_at"))
    op.drop_table("rate_limit_counters")
    _migrate(key_0005)
