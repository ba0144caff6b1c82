"""SQLAlchemy Core statements compiled once per dialect, run on PostgreSQL's driver.

The statements are SQLAlchemy's (the policies build them once, per page size): here each is
compiled to its SQL text and parameter order once per dialect, and executed on the
asyncpg connection itself, its rows taken as the driver returns them. A SQLAlchemy
connection around each execution (checkout, execution context, events, result objects)
cost as much CPU as the statement. The same statement object runs through SQLAlchemy on
SQLite (and behind PgBouncer), so both databases run one statement per rule.
"""

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    sql: str
    names: tuple[str, ...]  # the parameters in positional order ($1, $2...)
    defaults: Mapping[str, Any]  # values the statement binds itself (literals)
    bind_processors: Mapping[str, Processor]
    result_processors: tuple[tuple[int, Processor], ...]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments, from the values of the statement's named parameters."""
        arguments = []
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            processor = self.bind_processors.get(name)
            arguments.append(value if processor is None else processor(value))
        return arguments

    def rows(self, records: list[Any]) -> list[tuple[Any, ...]]:
        """The driver's records as tuples, with the columns' types applied where they
        change anything (none do on asyncpg for the types used here, but a type that does
        is honoured)."""
        if not self.result_processors:
            return [tuple(record) for record in records]
        rows = []
        for record in records:
            row = list(record)
            for index, processor in self.result_processors:
                row[index] = processor(row[index])
            rows.append(tuple(row))
        return rows


# Statements are built once (module constants, or cached per page size and per search
# shape), but the shapes a caller can ask for are many more than those caches keep: the
# compiled forms are bounded too, the least recently used going first, so that no sequence
# of requests makes a worker's memory grow.
COMPILED_CACHED = 4096
_compiled: OrderedDict[tuple[int, str], tuple[ClauseElement, CompiledStatement]] = OrderedDict()


def compiled(statement: ClauseElement, dialect: Dialect) -> CompiledStatement:
    """The statement's compiled form for the dialect (kept while it is among the
    COMPILED_CACHED most recently used)."""
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is not None and found[0] is statement:
        _compiled.move_to_end(key)
        return found[1]
    result = cast(SQLCompiler, statement.compile(dialect=dialect))
    processors = result._bind_processors
    names = tuple(result.positiontup or ())
    columns = getattr(result, "_result_columns", [])
    form = CompiledStatement(
        sql=result.string,
        names=names,
        defaults={
            name: bind.effective_value
            for name, bind in result.binds.items()
            if not bind.required and name in names
        },
        bind_processors={
            name: cast(Processor, processors[name]) for name in names if name in processors
        },
        result_processors=tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type._cached_result_processor(dialect, None)) is not None
        ),
    )
    _compiled[key] = (statement, form)
    if len(_compiled) > COMPILED_CACHED:
        _compiled.popitem(last=False)
    return form


async def fetch(
    connection: Any, statement: ClauseElement, dialect: Dialect, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run a compiled statement on an asyncpg connection; its rows as tuples."""
    form = compiled(statement, dialect)
    return form.rows(await connection.fetch(form.sql, *form.arguments(values)))
