"""Answers of the FHIR routes: `application/fhir+json` written once from plain values, the
resource's version as a weak ETag, `If-None-Match` → 304, and `_format` negotiation."""

import hashlib
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from app.core.errors import NotFound
from app.core.responses import MAX_ID
from app.fhir.errors import MEDIA_TYPE, NotAcceptable

JSON_FORMATS = frozenset(
    {"json", "application/json", "application/fhir+json", "application/json+fhir"}
)


class FhirJSONResponse(Response):
    """For the schema: what every FHIR route answers with."""

    media_type = MEDIA_TYPE


def negotiate(request: Request, format_values: list[str] | None = None) -> None:
    """406 unless the answer may be JSON: `_format` (when given) names JSON, and an Accept
    header (when given) takes JSON or anything."""
    formats = format_values if format_values is not None else _formats(request)
    for value in formats:
        if value.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise NotAcceptable()
    accept = request.headers.get("accept")
    if accept and "json" not in accept and "*/*" not in accept:
        raise NotAcceptable()


def _formats(request: Request) -> list[str]:
    if not request.scope["query_string"]:
        return []
    return request.query_params.getlist("_format")


def id_number(value: str) -> int | None:
    """A FHIR id as ours are, a positive integer (None for any other)."""
    if value.isascii() and value.isdigit() and len(value) <= 19 and 1 <= int(value) <= MAX_ID:
        return int(value)
    return None


def resource_id(value: str) -> int:
    """Our resources' ids are positive integers: any other id names nothing (404)."""
    number = id_number(value)
    if number is None:
        raise NotFound("Resource not found")
    return number


def content_version(resource: dict[str, Any]) -> str:
    """A version id for a resource that keeps no history: it changes exactly when what
    the resource shows changes (a weak validator, as its ETag says)."""
    body = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)
    return hashlib.blake2b(body, digest_size=8).hexdigest()


def _matches(if_none_match: str, version: str) -> bool:
    """If-None-Match takes the weak comparison (RFC 9110, 13.1.2): `W/"3"`, `"3"` and a
    bare `3` all name version 3; `*` names any."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip()
        if tag.strip('"') == version:
            return True
    return False


def resource_response(request: Request, resource: dict[str, Any]) -> Response:
    """A resource with its version's ETag; 304 (no body) when the client has that version."""
    version = resource["meta"]["versionId"]
    headers = {"ETag": f'W/"{version}"'}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, version):
        return Response(status_code=304, headers=headers)
    return fhir_response(resource, headers=headers)


def fhir_response(
    content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_UTC_Z)
    return Response(body, status_code, headers, media_type=MEDIA_TYPE)


BASE_PATH = "/fhir/R4"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(request: Request) -> str:
    """`scheme://host[:port]` of this request, as Starlette's `request.url` has it (the
    Host header; behind a trusted proxy, the proxy's scheme), without building the URL."""
    scope = request.scope
    scheme: str = scope.get("scheme", "http")
    for name, value in scope["headers"]:
        if name == b"host":
            return f"{scheme}://{value.decode('latin-1')}"
    server = scope.get("server")
    if not server:
        return f"{scheme}://localhost"
    host, port = server
    return (
        f"{scheme}://{host}" if _DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{host}:{port}"
    )


def base_url(request: Request) -> str:
    """The absolute FHIR base of this request's origin, without a trailing slash."""
    path: str = request.scope["path"]
    return origin(request) + path[: path.index(BASE_PATH) + len(BASE_PATH)]
