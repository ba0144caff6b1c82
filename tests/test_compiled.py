"""Statements compiled for the driver (core.compiled): kept, but never without bound."""

import pytest
from sqlalchemy import literal, select
from sqlalchemy.dialects import postgresql

from app.core import compiled

DIALECT = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]


def test_a_statement_is_compiled_once() -> None:
    statement = select(literal(1).label("one"))
    assert compiled.compiled(statement, DIALECT) is compiled.compiled(statement, DIALECT)


def test_the_compiled_forms_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shapes without end (searches, If-Match lists) keep the cache at its bound, the most
    recently used ones in it."""
    monkeypatch.setattr(compiled, "COMPILED_CACHED", 8)
    monkeypatch.setattr(compiled, "_compiled", type(compiled._compiled)())
    kept = select(literal(0).label("n"))
    first = compiled.compiled(kept, DIALECT)
    statements = [select(literal(n).label("n")) for n in range(1, 40)]
    for statement in statements:
        compiled.compiled(statement, DIALECT)
        assert compiled.compiled(kept, DIALECT) is first  # used again: stays
    assert len(compiled._compiled) == 8
    newest = statements[-1]
    assert compiled.compiled(newest, DIALECT) is compiled.compiled(newest, DIALECT)
