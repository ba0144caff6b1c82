"""The two hot reads, routed around FastAPI's per-request machinery (PostgreSQL only).

For `GET /api/patient_records/{id}` and the record list, walking the included routers and
solving the dependency graph cost about as much worker CPU as the read itself. These two
plain routes sit first in the app and take a request only when it has the exact shape they
serve: GET, a canonical path and query (plain decimal numbers in range, a decodable cursor,
no other or repeated parameter), a bearer token, and a database the one-statement read
serves (`reads.available`). Any other request matches neither of them and reaches the
documented routes of `records.router`, which answer it as always (422, 401, the service
path...). The token is checked as the `/api` router's `get_claims` does, and what follows
is the same `reads` call the documented routes make: both routes answer alike, and the
suite runs every record test through these ones on PostgreSQL.
"""

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from app.auth.dependencies import access_claims
from app.core.errors import InvalidInput
from app.core.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    Page,
    decode_cursor,
)
from app.core.responses import MAX_ID
from app.records import reads

_ONE = re.compile(r"/api/patient_records/([1-9][0-9]{0,18})/?")
_LIST = re.compile(r"/api/patient_records/?")
_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_LIST_PARAMETERS = {"limit", "cursor", "patient_id"}
_ARGS = "hot_read.args"  # the scope key of what `matches` parsed, for the endpoint

Parsed = dict[str, Any] | None


def _number(text: str, highest: int) -> int | None:
    return int(text) if _NUMBER.fullmatch(text) and int(text) <= highest else None


def _bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, read as OAuth2PasswordBearer
    reads it (the first such header)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, token = get_authorization_scheme_param(value.decode("latin-1"))
            return token if scheme.lower() == "bearer" and token else None
    return None


def _one(path: re.Match[str], query: str) -> Parsed:
    record_id = _number(path[1], MAX_ID)
    if query or record_id is None:
        return None
    return {"record_id": record_id}


def _list(_path: re.Match[str], query: str) -> Parsed:
    """`limit`, `cursor` and `patient_id`, each at most once and well formed, nothing else."""
    pairs = parse_qsl(query, keep_blank_values=True)  # as Starlette parses a query
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= _LIST_PARAMETERS:
        return None  # a repeated or unknown parameter: the documented route decides
    limit = _number(given.get("limit", str(DEFAULT_LIMIT)), MAX_LIMIT)
    patient_id = _number(given["patient_id"], MAX_ID) if "patient_id" in given else None
    cursor = given.get("cursor")
    if limit is None or ("patient_id" in given and patient_id is None):
        return None
    if cursor is not None and len(cursor) > MAX_CURSOR_LENGTH:
        return None
    try:
        after_id = None if cursor is None else decode_cursor(cursor)
    except InvalidInput:
        return None
    return {"page": Page(limit=limit, after_id=after_id), "patient_id": patient_id}


class HotRead(Route):
    """A GET route that matches only the requests `parse` accepts, with their parsed values."""

    def __init__(
        self,
        path: str,
        pattern: re.Pattern[str],
        parse: Callable[[re.Match[str], str], Parsed],
        endpoint: Callable[[Request], Any],
    ) -> None:
        super().__init__(path, endpoint, methods=["GET"], include_in_schema=False)
        self.pattern = pattern
        self.parse = parse

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        path = self.pattern.fullmatch(scope["path"])
        if path is None or not reads.available(scope["app"]):
            return Match.NONE, {}
        token = _bearer_token(scope)
        parsed = self.parse(path, scope["query_string"].decode("latin-1"))
        if token is None or parsed is None:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.endpoint, _ARGS: (token, parsed)}


def _claims_and_args(request: Request) -> tuple[Any, dict[str, Any]]:
    token, parsed = request.scope[_ARGS]
    return access_claims(token, request.app.state.signing_key), parsed


async def get_record(request: Request) -> Response:
    claims, parsed = _claims_and_args(request)
    return await reads.get_record(request, claims, parsed["record_id"])


async def list_records(request: Request) -> Response:
    claims, parsed = _claims_and_args(request)
    return await reads.list_records(request, claims, parsed["page"], parsed["patient_id"])


# Their paths are the documented routes' templates: the metrics count both as one route.
ROUTES = [
    HotRead("/api/patient_records/{record_id}", _ONE, _one, get_record),
    HotRead("/api/patient_records/", _LIST, _list, list_records),
]
