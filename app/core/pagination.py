"""Keyset pagination by id: `limit`, an opaque `cursor`, and a `Link: rel="next"` header."""

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Query, Request, Response
from sqlalchemy import BigInteger, ColumnElement, bindparam, literal_column, select, union_all

from app.core.db import AnySelect
from app.core.errors import InvalidInput
from app.core.responses import json_response

T = TypeVar("T")
SelectT = TypeVar("SelectT", bound=AnySelect)
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 64
DEFAULT_LIMIT = 50
_PREFIX = "after:"


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    after_id: int | None

    @property
    def after(self) -> int:
        """The keyset's lower bound (ids and versions start at 1)."""
        return self.after_id or 0


def written(limit: int) -> Any:
    """A LIMIT written into the SQL, not bound: PostgreSQL's generic plan of a prepared
    `LIMIT $n` expects a tenth of the rows, so it would plan each execution afresh, at a
    cost that grows with the table."""
    return literal_column(str(int(limit)))


AFTER = bindparam("after", type_=BigInteger)


def keyset_page(query: SelectT, column: Any, limit: int) -> SelectT:
    """`keyset` for a statement built once per page size: the keyset bound as `after`
    (`Page.after`), the look-ahead row included."""
    return query.where(column > AFTER).order_by(column).limit(written(limit + 1))


def keyset_page_of_cases(
    query: AnySelect, cases: tuple[ColumnElement[bool], ...], column: Any, limit: int
) -> AnySelect:
    """keyset_page of the rows that meet one of `cases`, conditions of which no two ever
    hold together (one per role, say): a page per case, merged. PostgreSQL plans each case
    on its own estimate, where their OR would be guessed to keep 1% of the rows, and a
    staff member's page would sort the whole table."""
    if len(cases) == 1:
        return keyset_page(query.where(cases[0]), column, limit)
    key = column.label("page_key")
    pages = [
        select(keyset_page(query.add_columns(key).where(case), column, limit).subquery())
        for case in cases
    ]
    merged = union_all(*pages).subquery("cases")
    columns = [c for c in merged.c if c.key != "page_key"]
    return select(*columns).order_by(merged.c.page_key).limit(written(limit + 1))


def keyset(query: SelectT, column: Any, page: Page) -> SelectT:
    """One page in `column` order, plus one look-ahead row that tells whether more exist."""
    if page.after_id is not None:
        query = query.where(column > page.after_id)
    return query.order_by(column).limit(written(page.limit + 1))


def encode_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(("query", "cursor"), "Invalid cursor") from None
    value = raw.removeprefix(_PREFIX)
    if value == raw or not value.isdigit() or int(value) >= 2**63:
        raise InvalidInput(("query", "cursor"), "Invalid cursor")
    return int(value)


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="Opaque cursor from the previous page's Link header",
        ),
    ] = None,
) -> Page:
    return Page(limit=limit, after_id=decode_cursor(cursor) if cursor is not None else None)


PageDep = Annotated[Page, Depends(page_params)]


def paginate(
    rows: list[T], page: Page, request: Request, response: Response, last_id: int | None = None
) -> list[T]:
    """Trim the look-ahead row and announce the next page when there is one.

    Repositories fetch `limit + 1` rows; the extra row only says that more exist.
    `last_id` is the id of the last returned item (callers pass it when rows are not
    objects with an `id`).
    """
    if len(rows) <= page.limit:
        return rows
    rows = rows[: page.limit]
    cursor_id = last_id if last_id is not None else rows[-1].id  # type: ignore[attr-defined]
    response.headers["Link"] = next_link(request, cursor_id)
    return rows


def next_link(request: Request, last_id: int) -> str:
    """The Link header value of the page after the one that ends with `last_id`: the path
    and query as given, with the cursor last (what Starlette's `include_query_params`
    makes, without building the request's full URL twice)."""
    query = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    params = [(name, value) for name, value in query if name != "cursor"]
    params.append(("cursor", encode_cursor(last_id)))
    return f'<{request.scope["path"]}?{urlencode(params)}>; rel="next"'


def page_response(
    items: list[Any],
    more: bool,
    request: Request,
    *,
    last_id: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page of plain items as JSON, with the next page's Link when `more` follow.
    `last_id` is the cursor of the last item (its `id` unless given)."""
    headers = dict(headers or {})
    if more:
        cursor = last_id if last_id is not None else items[-1]["id"]
        headers["Link"] = next_link(request, cursor)
    return json_response(items, headers=headers)
