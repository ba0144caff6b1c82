"""FHIR search parameters: what each resource type declares, and a request's parameters
read into criteria (core.filters) that the domains' search statements add to their
policies' own conditions. Nothing here decides who sees what.

Parameters repeated are ANDed, a value's commas OR (`\\,` is a literal comma). Unknown
parameters are ignored, unless the request says `Prefer: handling=strict` (then 400); an
unsupported modifier or a malformed value is always a 400 (FHIR search, 3.1.1).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from app.core.errors import InvalidInput
from app.core.filters import Search, like_escape
from app.core.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, Page, decode_cursor
from app.fhir import dates
from app.fhir.errors import BadRequest, UnsupportedMediaType
from app.fhir.responses import base_url, id_number, negotiate
from app.users.models import casefold_key

MAX_VALUE_LENGTH = 1000
MAX_ALTERNATIVES = 20
# Parameters of every search besides those of its type (FHIR's "all resources" ones).
CONTROL = ("_count", "_cursor", "_total", "_format", "_include")
TOTALS = ("none", "estimate", "accurate")
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Param:
    """A search parameter: its FHIR name and type, the modifiers it takes, and how one of
    its values (with a modifier or none) becomes the alternatives of one criterion."""

    name: str
    type: str  # string | token | date | reference
    documentation: str
    alternatives: Callable[["Context", str, str], list[tuple[str, tuple[Any, ...]]] | None]
    field: str
    modifiers: tuple[str, ...] = ()
    definition: str | None = None  # the canonical SearchParameter it implements
    narrows_to: str | None = None  # a reference whose single value the search narrows to


@dataclass(frozen=True, slots=True)
class Context:
    """What reading a value needs to know: this server's base URL and identifier systems."""

    base: str
    systems: dict[str, str]


@dataclass(slots=True)
class Query:
    base: str  # this request's FHIR base URL
    page: Page
    search: Search
    total: bool
    includes: list[str]
    pairs: list[tuple[str, str]]  # the parameters as given (for the Bundle's links)
    references: dict[str, list[set[int]]] = field(default_factory=dict)


def _split(value: str) -> list[str]:
    """A value's alternatives: split on commas, `\\,` `\\|` `\\$` `\\\\` unescaped."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char if char in ",|$\\" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current) + ("\\" if escaped else ""))
    return parts


# Each kind of value, as the alternatives of a criterion: (comparison, values). None means
# "anything": the criterion holds for every row and is left out.
Alternatives = list[tuple[str, tuple[Any, ...]]] | None


def string_value(_context: Context, modifier: str, value: str) -> Alternatives:
    """Starts a word of the name, case-insensitively; `:contains` anywhere; `:exact` the
    whole name as stored (the field `exact_<field>`)."""
    if modifier == "exact":
        return [("eq", (value,))]
    key = like_escape(casefold_key(value))
    if modifier == "contains":
        return [("like", (f"%{key}%",))]
    return [("like", (f"{key}%",)), ("like", (f"% {key}%",))]


def token(system: str | None, normalise: Callable[[str], str] = str) -> Callable[..., Alternatives]:
    """`code`, `system|code`, `|code` (no system: none of ours) or `system|` (any code of
    the system) of one identifier or code system."""

    def parse(context: Context, _modifier: str, value: str) -> Alternatives:
        expected = context.systems.get(system, system) if system else None
        given, bar, code = value.rpartition("|") if "|" in value else (None, "", value)
        if bar and given != expected:
            return []
        if not code:
            return None
        return [("eq", (normalise(code),))]

    return parse


def id_value(_context: Context, _modifier: str, value: str) -> Alternatives:
    number = id_number(value)
    return [] if number is None else [("eq", (number,))]


def reference(target: str) -> Callable[..., Alternatives]:
    """`123`, `Target/123` or this server's absolute `…/Target/123`; `:Target` too."""

    def parse(context: Context, modifier: str, value: str) -> Alternatives:
        if modifier not in ("", target):
            return []
        relative = value.removeprefix(context.base + "/")
        kind, slash, number = relative.rpartition("/")
        if slash and kind != target:
            return []
        found = id_number(number)
        return [] if found is None else [("eq", (found,))]

    return parse


def date_value(kind: str) -> Callable[..., Alternatives]:
    def parse(_context: Context, _modifier: str, value: str) -> Alternatives:
        return [dates.comparison(value, kind)]

    return parse


def _strict(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(
        part.strip().replace(" ", "") == "handling=strict"
        for part in prefer.replace(",", ";").split(";")
    )


async def pairs_of(request: Request) -> list[tuple[str, str]]:
    """The search's parameters: the query's, and for POST `_search` its form body's."""
    query: bytes = request.scope["query_string"]
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type != FORM and body.strip():
            raise UnsupportedMediaType()
        if body:
            form = await request.form()
            pairs = [
                *pairs,
                *((name, value) for name, value in form.multi_items() if isinstance(value, str)),
            ]
    return list(pairs)


def parse(
    pairs: Sequence[tuple[str, str]],
    request: Request,
    params: Sequence[Param],
    context: Context,
    includes: Sequence[str] = (),
) -> Query:
    """The request's search, or a 400 naming what cannot be searched for."""
    known = {param.name: param for param in params}
    strict = _strict(request)
    search = Search()
    query = Query(context.base, Page(DEFAULT_LIMIT, None), search, False, [], list(pairs))
    formats: list[str] = []
    for name, value in pairs:
        if "\x00" in name or "\x00" in value or len(value) > MAX_VALUE_LENGTH:
            raise BadRequest(f"{name}: not a value this server can search for")
        base, _, modifier = name.partition(":")
        if not value:
            continue  # an empty value is no criterion (FHIR search, 3.1.1.4), nor a setting
        if base in CONTROL and not modifier:
            if base == "_format":
                formats.append(value)
            elif not _control(query, base, value, includes):
                if strict:
                    raise BadRequest(f"{name}={value} is not supported here")
            continue
        param = known.get(base)
        if param is None:
            if strict:
                raise BadRequest(f"Unknown search parameter {name}")
            continue
        if modifier and modifier not in param.modifiers:
            raise BadRequest(f"{base} does not take the modifier :{modifier}")
        _criterion(query, param, modifier, value, context)
    negotiate(request, formats)
    return query


def _control(query: Query, name: str, value: str, includes: Sequence[str]) -> bool:
    """Apply a paging or result parameter; False for an _include this type does not serve."""
    if name == "_count":
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
            raise BadRequest(f"_count must be a whole number from 1 to {MAX_LIMIT}")
        query.page = Page(int(value), query.page.after_id)
    elif name == "_cursor":
        if len(value) > MAX_CURSOR_LENGTH:
            raise BadRequest("Invalid _cursor")
        try:
            query.page = Page(query.page.limit, decode_cursor(value))
        except InvalidInput:
            raise BadRequest("Invalid _cursor") from None
    elif name == "_total":
        if value not in TOTALS:
            raise BadRequest(f"_total must be one of {', '.join(TOTALS)}")
        query.total = value == "accurate"
    elif name == "_include":
        if value not in includes:
            return False
        query.includes.append(value)
    return True


def _criterion(query: Query, param: Param, modifier: str, value: str, context: Context) -> None:
    values = _split(value)
    if len(values) > MAX_ALTERNATIVES:
        raise BadRequest(f"{param.name}: at most {MAX_ALTERNATIVES} values at once")
    alternatives: list[tuple[str, tuple[Any, ...]]] = []
    for one in values:
        try:
            found = param.alternatives(context, modifier, one)
        except ValueError as error:
            raise BadRequest(f"{param.name}: {error}") from None
        if found is None:
            return  # one alternative matches anything: so does the criterion
        alternatives.extend(found)
    if param.narrows_to is not None:
        ids = {bound[0] for _comparison, bound in alternatives}
        query.references.setdefault(param.narrows_to, []).append(ids)
        return
    field_name = f"exact_{param.field}" if modifier == "exact" else param.field
    query.search.add(field_name, alternatives)


def id_param(field_name: str = "id") -> Param:
    return Param(
        "_id",
        "token",
        "The resource's id; several, comma-separated",
        id_value,
        field_name,
        definition="http://hl7.org/fhir/SearchParameter/Resource-id",
    )


def last_updated(field_name: str, documentation: str) -> Param:
    return Param(
        "_lastUpdated",
        "date",
        documentation,
        date_value("instant"),
        field_name,
        definition="http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    )


def name_param(definition: str) -> Param:
    return Param(
        "name",
        "string",
        "Starts a word of the name (case-insensitive); `:contains` anywhere in it; `:exact` "
        "the whole name, as written",
        string_value,
        "name",
        modifiers=("contains", "exact"),
        definition=definition,
    )


async def read(
    request: Request, params: Sequence[Param], systems: dict[str, str], includes: Sequence[str] = ()
) -> Query:
    """The search a GET or POST `_search` request asks for."""
    pairs = await pairs_of(request)
    return parse(pairs, request, params, Context(base_url(request), systems), includes)
