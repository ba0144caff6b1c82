"""Search criteria as SQL: extra WHERE conditions on a statement that a policy has already
narrowed to what the caller may see. They can only narrow it further.

A criterion names a field (a key of the repository's searchable columns) and the
comparisons it ORs; its values are bound parameters. A statement is built for the shape
of its criteria (fields, comparisons, how many), so each shape is built and compiled once
and any values run it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    SQLColumnExpression,
    and_,
    bindparam,
    false,
    or_,
)

# The comparisons, and how many values each binds.
ARITY = {
    "eq": 1,
    "like": 1,  # the value is a LIKE pattern escaped with "/" (like_escape)
    "lt": 1,
    "le": 1,
    "gt": 1,
    "ge": 1,
    "within": 2,  # low <= column < high
    "outside": 2,  # column < low or column >= high
}


@dataclass(frozen=True, slots=True)
class Criterion:
    field: str
    comparisons: tuple[str, ...]  # ORed; none at all matches nothing


Criteria = tuple[Criterion, ...]
Columns = Mapping[str, SQLColumnExpression[Any]]  # a repository's searchable fields


def bind_name(criterion: int, alternative: int, part: int) -> str:
    return f"search_{criterion}_{alternative}_{part}"


def like_escape(text: str) -> str:
    """`text` as the literal part of a LIKE pattern (`%` and `_` match themselves)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def conditions(columns: Columns, criteria: Criteria) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `criteria` over `columns` (all of them must hold)."""
    found = []
    for index, criterion in enumerate(criteria):
        column = columns[criterion.field]
        alternatives = [
            _comparison(column, comparison, index, alternative)
            for alternative, comparison in enumerate(criterion.comparisons)
        ]
        found.append(or_(*alternatives) if alternatives else false())
    return found


def _comparison(
    column: SQLColumnExpression[Any], comparison: str, index: int, alternative: int
) -> ColumnElement[bool]:
    first: BindParameter[Any] = bindparam(bind_name(index, alternative, 0))
    if comparison == "eq":
        return column == first
    if comparison == "like":
        return column.like(first, escape="/")
    if comparison == "lt":
        return column < first
    if comparison == "le":
        return column <= first
    if comparison == "gt":
        return column > first
    if comparison == "ge":
        return column >= first
    second: BindParameter[Any] = bindparam(bind_name(index, alternative, 1))
    if comparison == "within":
        return and_(column >= first, column < second)
    if comparison == "outside":
        return or_(column < first, column >= second)
    raise ValueError(f"unknown comparison {comparison!r}")


@dataclass(slots=True)
class Search:
    """Criteria being gathered, with the values they bind."""

    criteria: list[Criterion] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, field_name: str, alternatives: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """One criterion: any of `alternatives` (comparison, its values) holds. None at
        all: nothing matches."""
        index = len(self.criteria)
        for alternative, (comparison, values) in enumerate(alternatives):
            if len(values) != ARITY[comparison]:
                raise ValueError(f"{comparison} takes {ARITY[comparison]} values")
            for part, value in enumerate(values):
                self.values[bind_name(index, alternative, part)] = value
        self.criteria.append(Criterion(field_name, tuple(c for c, _ in alternatives)))

    @property
    def shape(self) -> Criteria:
        return tuple(self.criteria)
